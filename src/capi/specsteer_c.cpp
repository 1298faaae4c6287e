// The C API (include/specsteer.h) over steer::generate(): opaque handles,
// exceptions turned into error strings at the boundary.
#include "specsteer.h"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "model/lora.h"
#include "model/prefix_cache.h"
#include "personalize/personalize.h"
#include "profile/profile.h"
#include "steer/conversation.h"
#include "steer/generate.h"
#ifdef SPECSTEER_HAVE_GRPC
#include "transport/client.h"
#endif

using namespace specsteer;

struct specsteer_edge {
  steer::Models models;
  std::string cloud, auth_token;
  std::optional<profile::Store> profile;
  std::vector<LoraRef> lora;
  std::atomic<bool> cancel{false};
  // SLM+'s prompts kept for the next turn (specsteer_edge_set_cache_ram).
  std::shared_ptr<PrefixCache> cache = std::make_shared<PrefixCache>(256ull << 20);
  steer::SentReplies sent;        // replies the cloud saw in full
  steer::CacheNames cache_names;  // what the cloud may call this edge's users and conversations
};

struct specsteer_result {
  steer::GenerationResult r;
};

namespace {

void set_error(char** error, const std::string& message) {
  if (!error) return;
  *error = static_cast<char*>(std::malloc(message.size() + 1));
  if (*error) std::memcpy(*error, message.c_str(), message.size() + 1);
}

// Runs `body` for a function that returns 0 on success: an exception becomes
// non-zero and *error.
template <typename Body>
int status_of(char** error, Body&& body) {
  try {
    body();
    return 0;
  } catch (const std::exception& e) {
    set_error(error, e.what());
    return 1;
  }
}

}  // namespace

extern "C" {

void specsteer_params_init(specsteer_params* p) {
  if (!p) return;
  const steer::Settings d;
  p->method = "specsteer";
  p->lambda = d.lambda;
  p->beta = d.beta;
  p->draft = d.draft;
  p->draft_min = d.draft_min;
  p->draft_p_min = d.draft_p_min;
  p->pipeline = d.pipeline ? 1 : 0;
  p->steer_k = d.top_k;
  p->n_predict = d.max_new;
  p->seed = d.seed;
  p->temperature = d.sampler.temperature;
  p->top_p = d.sampler.top_p;
  p->chat = 1;
  p->fallback = 0;
  p->top_k = d.sampler.top_k;
  p->min_p = d.sampler.min_p;
  p->repeat_penalty = d.repeat.penalty;
  p->repeat_last_n = d.repeat.last_n;
  p->system = nullptr;
  p->stop = nullptr;
  p->n_stop = 0;
  p->user = nullptr;
  p->task = nullptr;
  p->retrieve_k = 4;
  p->cloud_retries = 2;
}

specsteer_edge* specsteer_edge_load(const char* slm_path, const char* llm_path, const char* cloud,
                                    const char* auth_token, int n_threads, char** error) {
  try {
    if (!slm_path) throw Error("specsteer_edge_load: slm_path is NULL");
    auto edge = std::make_unique<specsteer_edge>();
    edge->models = llm_path ? steer::Models::load(llm_path, slm_path, {.n_threads = n_threads})
                            : steer::Models::load_edge(slm_path, {.n_threads = n_threads});
    if (cloud) {
#ifndef SPECSTEER_HAVE_GRPC
      throw Error("specsteer_edge_load: this build has no network transport");
#endif
      edge->cloud = cloud;
    }
    if (auth_token) edge->auth_token = auth_token;
    return edge.release();
  } catch (const std::exception& e) {
    set_error(error, e.what());
    return nullptr;
  }
}

void specsteer_edge_free(specsteer_edge* edge) { delete edge; }

int specsteer_edge_open_profile(specsteer_edge* edge, const char* db_path, char** error) {
  return status_of(error, [&] {
    if (!edge) throw Error("specsteer_edge_open_profile: edge is NULL");
    if (!db_path) throw Error("specsteer_edge_open_profile: db_path is NULL");
    edge->profile = profile::Store::open(db_path, profile::Store::Mode::ReadOnly);
  });
}

int specsteer_edge_add_lora(specsteer_edge* edge, const char* adapter_path, float scale, char** error) {
  return status_of(error, [&] {
    if (!edge) throw Error("specsteer_edge_add_lora: edge is NULL");
    if (!adapter_path) throw Error("specsteer_edge_add_lora: adapter_path is NULL");
    if (!std::isfinite(scale)) throw Error("specsteer_edge_add_lora: the scale must be finite");
    edge->lora.push_back({LoraAdapter::load(adapter_path, *edge->models.slm), scale});
  });
}

void specsteer_edge_cancel(specsteer_edge* edge) {
  if (edge) edge->cancel = true;
}

}  // extern "C"

namespace {

// One generation of x after `history` (earlier user/assistant turns, oldest
// first; empty for a single prompt).
specsteer_result* generate_turn(specsteer_edge* edge, const std::string& x, std::vector<ChatTurn> history,
                                const std::string& extra_system, const char* private_context,
                                const specsteer_params* params, specsteer_token_callback callback, void* user_data) {
  specsteer_params p;
  specsteer_params_init(&p);
  if (params) p = *params;
  steer::GenerateRequest req;
  // The first user turn carries the private context (entries retrieved for
  // it once per conversation), so SLM+'s prompt only grows turn by turn.
  const std::string first = steer::first_user_message(history, x);
  req.x = first;
  const std::string ctx = private_context ? private_context : "";
  req.personalized = ctx.empty() ? first : ctx + "\n\n" + first;
  req.chat = p.chat != 0;
  req.edge_lora = edge->lora;
  if (p.system) req.system = p.system;
  if (!extra_system.empty()) req.system += (req.system.empty() ? "" : "\n") + extra_system;
  if (p.n_stop > 0 && !p.stop) throw Error("specsteer: params.n_stop > 0 but params.stop is NULL");
  for (size_t i = 0; i < p.n_stop; ++i) {
    if (!p.stop[i] || !*p.stop[i]) throw Error("specsteer: params.stop[" + std::to_string(i) + "] is empty");
    req.stop.emplace_back(p.stop[i]);
  }
  if (p.user) {
    if (!edge->profile) throw Error("specsteer: params.user needs specsteer_edge_open_profile first");
    if (!ctx.empty()) throw Error("specsteer: give private_context or params.user, not both");
    if (!p.task) throw Error("specsteer: params.user needs params.task");
    if (p.retrieve_k < 0) throw Error("specsteer: params.retrieve_k must be >= 0");
    personalize::apply(*edge->profile, p.user, profile::parse_task(p.task), p.retrieve_k, first, *edge->models.slm,
                       req);
  }
  steer::adopt_history(req, std::move(history), x);
  edge->sent.withhold_unsent(req);
  const std::string user = p.user ? p.user : "";
  if (edge->cache) req.edge_cache = {edge->cache, "user:" + user};
  edge->cache_names.name(req, user, first);
  auto& s = req.settings;
  s.method = steer::parse_method(p.method ? p.method : "specsteer");
  s.lambda = p.lambda;
  s.beta = p.beta;
  s.draft = p.draft;
  s.draft_min = p.draft_min;
  s.draft_p_min = p.draft_p_min;
  s.pipeline = p.pipeline != 0;
  s.top_k = p.steer_k;
  s.max_new = p.n_predict;
  s.seed = p.seed;
  s.sampler.temperature = p.temperature;
  s.sampler.top_p = p.top_p;
  s.sampler.top_k = p.top_k;
  s.sampler.min_p = p.min_p;
  s.repeat = {.penalty = p.repeat_penalty, .last_n = p.repeat_last_n};
  steer::validate(s);
  req.on_cloud_failure = p.fallback ? steer::CloudFailure::Fallback : steer::CloudFailure::FallbackAfterOpen;
  if (p.cloud_retries < 0) throw Error("specsteer: params.cloud_retries must be >= 0");
  req.cloud_retries = p.cloud_retries;
  edge->cancel = false;
  req.cancel = &edge->cancel;
  if (callback)
    req.on_token = [&](int32_t, std::string_view piece) {
      if (!piece.empty() && callback(piece.data(), piece.size(), user_data) != 0) edge->cancel = true;
    };
#ifdef SPECSTEER_HAVE_GRPC
  std::unique_ptr<transport::GrpcTransport> link;
  if (!edge->cloud.empty() && steer::uses_cloud(s.method)) {
    transport::ClientOptions co;
    co.target = edge->cloud;
    co.auth_token = edge->auth_token;
    link = std::make_unique<transport::GrpcTransport>(co);
    req.cloud = link.get();
  }
#endif
  auto out = std::make_unique<specsteer_result>();
  out->r = steer::generate(edge->models, req);
  if (out->r.stop_reason == "cloud_error")
    throw Error((out->r.cloud_failed_at_open ? "the cloud did not open the session: " : "the cloud failed: ") +
                out->r.cloud_error);
  edge->sent.record(req, out->r);
  return out.release();
}

}  // namespace

extern "C" {

specsteer_result* specsteer_generate(specsteer_edge* edge, const char* x, const char* private_context,
                                     const specsteer_params* params, specsteer_token_callback callback,
                                     void* user_data, char** error) {
  try {
    if (!edge) throw Error("specsteer_generate: edge is NULL");
    if (!x) throw Error("specsteer_generate: x is NULL");
    return generate_turn(edge, x, {}, "", private_context, params, callback, user_data);
  } catch (const std::exception& e) {
    set_error(error, e.what());
    return nullptr;
  }
}

specsteer_result* specsteer_chat(specsteer_edge* edge, const specsteer_message* messages, size_t n_messages,
                                 const char* private_context, const specsteer_params* params,
                                 specsteer_token_callback callback, void* user_data, char** error) {
  try {
    if (!edge) throw Error("specsteer_chat: edge is NULL");
    if (!messages || n_messages == 0) throw Error("specsteer_chat: no messages");
    steer::ChatMessages chat;
    try {
      for (size_t i = 0; i < n_messages; ++i) {
        if (!messages[i].role || !messages[i].content)
          throw steer::MessageError("messages[" + std::to_string(i) + "]", "a NULL role or content");
        chat.add(i, messages[i].role, messages[i].content);
      }
      chat.finish();
    } catch (const steer::MessageError& e) {
      throw Error("specsteer_chat: " + e.param + ": " + e.what());
    }
    return generate_turn(edge, chat.x(), chat.history(), chat.system(), private_context, params, callback, user_data);
  } catch (const std::exception& e) {
    set_error(error, e.what());
    return nullptr;
  }
}

int specsteer_edge_set_cache_ram(specsteer_edge* edge, uint64_t bytes, char** error) {
  return status_of(error, [&] {
    if (!edge) throw Error("specsteer_edge_set_cache_ram: edge is NULL");
    edge->cache = bytes ? std::make_shared<PrefixCache>(bytes) : nullptr;
  });
}

const char* specsteer_result_text(const specsteer_result* result) { return result ? result->r.text.c_str() : ""; }

void specsteer_result_counters(const specsteer_result* result, specsteer_counters* out) {
  if (!out) return;
  *out = specsteer_counters{};
  if (!result) return;
  const auto& c = result->r.counters;
  out->n_generated = c.n_generated;
  out->n_drafted = c.n_drafted;
  out->n_accepted = c.n_accepted;
  out->round_trips = c.round_trips;
  out->bytes_up = c.bytes_up;
  out->bytes_down = c.bytes_down;
  out->acceptance_rate = c.acceptance_rate();
  out->cancelled = result->r.stop_reason == "cancelled";
  out->fallback = result->r.cloud_failed_at.has_value();
  out->resumed = c.resumed;
  out->resume_tokens = c.resume_tokens;
  out->cached_tokens = c.edge_cached_tokens;
  out->cloud_cached_tokens = c.cloud_cached_tokens;
  out->blocks_sent_early = c.blocks_sent_early;
  out->blocks_dropped = c.blocks_dropped;
}

void specsteer_result_free(specsteer_result* result) { delete result; }

void specsteer_string_free(char* s) { std::free(s); }

}  // extern "C"
