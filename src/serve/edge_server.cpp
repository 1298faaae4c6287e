#include "serve/edge_server.h"

#include <httplib.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <ctime>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/error.h"
#include "common/secret.h"
#include "personalize/personalize.h"
#include "profile/profile.h"
#include "serve/chat_page.h"
#include "serve/wire_log.h"
#include "steer/conversation.h"

namespace specsteer::serve {

namespace {

using json = nlohmann::json;

// A failure the client caused or can act on, in OpenAI's error shape.
struct HttpError : Error {
  HttpError(int status_, std::string type_, std::string code_, std::string param_, const std::string& message)
      : Error(message), status(status_), type(std::move(type_)), code(std::move(code_)), param(std::move(param_)) {}
  int status;
  std::string type, code, param;
};

HttpError bad_request(const std::string& param, const std::string& message) {
  return HttpError(400, "invalid_request_error", "invalid_value", param, message);
}

json error_json(const std::string& type, const std::string& code, const std::string& param,
                const std::string& message) {
  return {{"error",
           {{"message", message},
            {"type", type},
            {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", code.empty() ? json(nullptr) : json(code)}}}};
}

json error_json(const HttpError& e) { return error_json(e.type, e.code, e.param, e.what()); }

void send_error(httplib::Response& res, const HttpError& e) {
  res.status = e.status;
  res.set_content(error_json(e).dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

// Typed field readers: a wrong type is a 400 naming the field.
const json* find(const json& obj, const char* name) {
  auto it = obj.find(name);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}
double number(const json& obj, const char* name, double fallback, const std::string& prefix = "") {
  const json* v = find(obj, name);
  if (!v) return fallback;
  if (!v->is_number()) throw bad_request(prefix + name, "'" + prefix + name + "' must be a number");
  const double d = v->get<double>();
  if (!std::isfinite(d)) throw bad_request(prefix + name, "'" + prefix + name + "' must be finite");
  return d;
}
int integer(const json& obj, const char* name, int fallback, const std::string& prefix = "") {
  const json* v = find(obj, name);
  if (!v) return fallback;
  if (!v->is_number_integer() || v->get<int64_t>() < INT32_MIN || v->get<int64_t>() > INT32_MAX)
    throw bad_request(prefix + name, "'" + prefix + name + "' must be an integer");
  return static_cast<int>(v->get<int64_t>());
}
std::string text(const json& obj, const char* name, const std::string& fallback, const std::string& prefix = "") {
  const json* v = find(obj, name);
  if (!v) return fallback;
  if (!v->is_string()) throw bad_request(prefix + name, "'" + prefix + name + "' must be a string");
  return v->get<std::string>();
}

// One parsed request: what to generate and how to answer.
struct Job {
  steer::GenerateRequest req;
  bool chat = true;  // chat.completion vs text_completion
  bool stream = false;
  json profile_entries = json::array();  // the user's entries in SLM+'s prompt (shown to this client only)
  size_t history_turns = 0;  // earlier turns of the conversation
};

}  // namespace

struct EdgeServer::Impl {
  const steer::Models& models;
  EdgeServerOptions o;
  httplib::Server http;
  std::thread thread;
  int port = 0;
  std::mutex generating;  // one generation at a time
  mutable std::mutex stats_mu;
  EdgeServerStats st;
  std::atomic<uint64_t> next_id{1};
  // The last generations' wire logs (GET /v1/wire/{id}), newest last.
  std::mutex wire_mu;
  std::deque<std::pair<std::string, json>> wire_logs;
  std::shared_ptr<PrefixCache> cache;  // the device's prefix cache (null: --cache-ram 0)
  steer::CacheNames cache_names;  // what the cloud may call this device's users and conversations
  steer::SentReplies sent;  // replies the cloud has already seen in full

  Impl(const steer::Models& m, EdgeServerOptions opts) : models(m), o(std::move(opts)) {
    if (o.cache_ram_bytes > 0) cache = std::make_shared<PrefixCache>(o.cache_ram_bytes);
  }



  void log(const std::string& line) const {
    if (o.log) o.log(line);
  }
  EdgeServerStats stats_copy() const {
    std::lock_guard<std::mutex> lock(stats_mu);
    return st;
  }
  void count(uint64_t EdgeServerStats::*field) {
    std::lock_guard<std::mutex> lock(stats_mu);
    ++(st.*field);
  }

  Job parse(const httplib::Request& http_req, bool chat_endpoint) const {
    json body;
    try {
      body = json::parse(http_req.body);
    } catch (const std::exception& e) {
      throw bad_request("", std::string("the request body is not valid JSON: ") + e.what());
    }
    if (!body.is_object()) throw bad_request("", "the request body must be a JSON object");
    Job job;
    job.chat = chat_endpoint;
    steer::GenerateRequest& req = job.req;
    std::string x;
    std::vector<ChatTurn> history;  // the turns before x
    if (chat_endpoint) {
      const json* msgs = find(body, "messages");
      if (!msgs || !msgs->is_array() || msgs->empty())
        throw bad_request("messages", "'messages' must be a non-empty array");
      steer::ChatMessages chat;
      try {
        for (size_t i = 0; i < msgs->size(); ++i) {
          const json& m = (*msgs)[i];
          const std::string at = "messages[" + std::to_string(i) + "]";
          if (!m.is_object()) throw bad_request(at, "each message must be an object");
          // System turns become the chat's system text (the cloud sees it, like x).
          chat.add(i, text(m, "role", "", at + "."), text(m, "content", "", at + "."));
        }
        chat.finish();
      } catch (const steer::MessageError& e) {
        throw bad_request(e.param, e.what());
      }
      req.system = chat.system();
      x = chat.x();
      history = chat.history();
      if (req.system.empty()) req.system = o.system;
      req.chat = o.chat;
    } else {
      const json* p = find(body, "prompt");
      if (p && p->is_array() && p->size() == 1 && (*p)[0].is_string()) x = (*p)[0].get<std::string>();
      else if (p && p->is_string()) x = p->get<std::string>();
      else throw bad_request("prompt", "'prompt' must be a string (or an array of one string)");
      if (x.empty()) throw bad_request("prompt", "'prompt' is empty");
      req.chat = false;  // a completion continues the raw prompt
    }
    if (const json* n = find(body, "n"); n && (!n->is_number_integer() || n->get<int64_t>() != 1))
      throw bad_request("n", "only n = 1 is supported");
    if (const json* s = find(body, "stream")) {
      if (!s->is_boolean()) throw bad_request("stream", "'stream' must be a boolean");
      job.stream = s->get<bool>();
    }

    steer::Settings& s = req.settings;
    s = o.defaults;
    s.max_new = integer(body, "max_tokens", s.max_new);
    s.max_new = integer(body, "max_completion_tokens", s.max_new);
    s.sampler.temperature = number(body, "temperature", s.sampler.temperature);
    s.sampler.top_p = number(body, "top_p", s.sampler.top_p);
    // llama.cpp server's names for the filters OpenAI's API lacks.
    s.sampler.top_k = integer(body, "top_k", s.sampler.top_k);
    s.sampler.min_p = number(body, "min_p", s.sampler.min_p);
    s.repeat.penalty = number(body, "repeat_penalty", s.repeat.penalty);
    s.repeat.last_n = integer(body, "repeat_last_n", s.repeat.last_n);
    for (const char* unsupported : {"frequency_penalty", "presence_penalty"})
      if (number(body, unsupported, 0.0) != 0.0)
        throw bad_request(unsupported, std::string("'") + unsupported +
                                           "' is not supported; use 'repeat_penalty' (llama.cpp's) instead");
    if (const json* seed = find(body, "seed")) {
      if (!seed->is_number_integer() || seed->get<int64_t>() < 0)
        throw bad_request("seed", "'seed' must be a non-negative integer");
      s.seed = seed->get<uint64_t>();
    }
    if (!find(body, "stop")) req.stop = o.stop;
    if (const json* st = find(body, "stop")) {  // a string or up to 4 strings, as OpenAI takes them
      if (st->is_string()) req.stop.push_back(st->get<std::string>());
      else if (st->is_array() && st->size() <= 4 &&
               std::all_of(st->begin(), st->end(), [](const json& e) { return e.is_string(); }))
        for (const auto& e : *st) req.stop.push_back(e.get<std::string>());
      else throw bad_request("stop", "'stop' must be a string or an array of up to 4 strings");
      for (const auto& e : req.stop)
        if (e.empty()) throw bad_request("stop", "'stop' strings must not be empty");
    }
    std::string task = o.task;
    int retrieve_k = o.retrieve_k;
    if (const json* sp = find(body, "specsteer")) {
      if (!sp->is_object()) throw bad_request("specsteer", "'specsteer' must be an object");
      const std::string pre = "specsteer.";
      if (const json* m = find(*sp, "method")) {
        if (!m->is_string()) throw bad_request(pre + "method", "'specsteer.method' must be a string");
        try {
          s.method = steer::parse_method(m->get<std::string>());
        } catch (const Error& e) {
          throw bad_request(pre + "method", e.what());
        }
      }
      s.lambda = number(*sp, "lambda", s.lambda, pre);
      s.beta = number(*sp, "beta", s.beta, pre);
      s.draft = integer(*sp, "K", s.draft, pre);  // the longest block when the server drafts adaptively
      s.draft_min = std::min(s.draft_min, s.draft);
      s.top_k = integer(*sp, "steer_k", s.top_k, pre);
      task = text(*sp, "task", task, pre);
      retrieve_k = integer(*sp, "retrieve_k", retrieve_k, pre);
      if (retrieve_k < 0) throw bad_request(pre + "retrieve_k", "'specsteer.retrieve_k' must be >= 0");
    }
    if (steer::uses_cloud(s.method) || s.method == steer::Method::Llm)
      if (!o.connect && !models.llm)
        throw bad_request("specsteer.method", "method '" + std::string(steer::method_name(s.method)) +
                                                  "' needs a cloud (start the server with --cloud or --llm)");
    try {
      steer::validate(s);
    } catch (const Error& e) {
      throw bad_request("", e.what());
    }

    // `user` picks the profile user when the server has a profile store.
    const std::string user = text(body, "user", "");
    // The profile entries are retrieved for the conversation's first user
    // message, once per conversation: SLM+'s prompt then only grows turn by
    // turn, and the device's cache reuses all of it.
    const std::string first = steer::first_user_message(history, x);
    req.x = first;
    req.personalized = first;
    req.edge_lora = o.lora;
    if (!o.profile_db.empty() && !user.empty()) {
      if (task.empty()) throw bad_request("specsteer.task", "a profile user needs a task (specsteer.task or --task)");
      profile::Task t;
      try {
        t = profile::parse_task(task);
      } catch (const Error& e) {
        throw bad_request("specsteer.task", e.what());
      }
      auto store = profile::Store::open(o.profile_db, profile::Store::Mode::ReadOnly);
      // The user's entries and LoRA adapters (`profile lora`), after the server's --lora.
      try {
        for (const auto& e : personalize::apply(store, user, t, retrieve_k, first, *models.slm, req))
          job.profile_entries.push_back(e.fields);
      } catch (const personalize::UnknownUser& e) {
        throw HttpError(404, "invalid_request_error", "user_not_found", "user", e.what());
      }
    }
    steer::adopt_history(req, std::move(history), x);
    job.history_turns = req.history.size();
    if (o.history_to_cloud == EdgeServerOptions::HistoryToCloud::Verified) sent.withhold_unsent(req);
    // Per user on the device; the cloud gets names it cannot read.
    if (cache) req.edge_cache = {cache, "user:" + user};
    cache_names.name(req, user, first);
    return job;
  }

  json usage_and_stats(const steer::GenerationResult& r, json& specsteer) const {
    const auto& c = r.counters;
    const bool fell_back = r.cloud_failed_at && r.stop_reason != "cloud_error";
    specsteer = {{"method", r.schedule.method},
                 {"cloud_cached_tokens", c.cloud_cached_tokens},
                 {"n_drafted", c.n_drafted},
                 {"n_accepted", c.n_accepted},
                 {"acceptance_rate", c.acceptance_rate()},
                 {"round_trips", c.round_trips},
                 {"pipeline", {{"blocks_sent_early", c.blocks_sent_early}, {"blocks_dropped", c.blocks_dropped}}},
                 {"resumed", c.resumed},
                 {"resume_tokens", c.resume_tokens},
                 {"bytes_up", c.bytes_up},
                 {"bytes_down", c.bytes_down},
                 {"fallback", fell_back}};
    if (r.cloud_failed_at) {
      specsteer["cloud_failed_at_token"] = *r.cloud_failed_at;
      specsteer["cloud_error"] = r.cloud_error;
    }
    return {{"prompt_tokens", r.schedule.edge_prompt},
            {"completion_tokens", r.tokens.size()},
            {"total_tokens", r.schedule.edge_prompt + r.tokens.size()},
            {"prompt_tokens_details", {{"cached_tokens", c.edge_cached_tokens}}}};
  }

  static std::string finish_reason(const steer::GenerationResult& r) {
    return r.stop_reason == "length" ? "length" : "stop";
  }

  // Runs one generation with this server's cloud link; throws HttpError 502
  // when the cloud never opened the session (and fallback was not asked).
  // The wire log of a generation is kept under `wire_id` (cloud methods).
  steer::GenerationResult run(steer::GenerateRequest& req, std::string* wire_id = nullptr) {
    std::lock_guard<std::mutex> lock(generating);
    std::unique_ptr<steer::Transport> link;
    if (o.connect) {
      link = o.connect();
      req.cloud = link.get();
    }
    req.on_cloud_failure = o.on_cloud_failure;
    req.cloud_retries = o.cloud_retries;
    steer::GenerationResult r;
    steer::Trace trace;
    const bool traced = o.wire_logs > 0 && steer::uses_cloud(req.settings.method);
    try {
      r = steer::generate(models, req, traced ? &trace : nullptr);
    } catch (const Error& e) {
      throw HttpError(400, "invalid_request_error", "invalid_value", "", e.what());
    }
    if (traced && wire_id) {
      *wire_id = "wire-" + std::to_string(next_id++);
      json log = wire_log_json(trace, *models.slm_tok);
      log["id"] = *wire_id;
      log["created"] = static_cast<int64_t>(std::time(nullptr));
      log["cloud"] = o.cloud_name;
      std::lock_guard<std::mutex> wl(wire_mu);
      wire_logs.emplace_back(*wire_id, std::move(log));
      while (wire_logs.size() > static_cast<size_t>(o.wire_logs)) wire_logs.pop_front();
    }
    // Every token of this reply crossed to the cloud: as a later turn it is
    // nothing new to the cloud.
    sent.record(req, r);
    if (r.stop_reason == "cloud_error")
      throw HttpError(502, "cloud_error", r.cloud_failed_at_open ? "cloud_unavailable" : "cloud_lost", "",
                      (r.cloud_failed_at_open ? "the cloud did not open the session: " : "the cloud failed: ") +
                          r.cloud_error);
    count(&EdgeServerStats::generations);
    return r;
  }

  void complete(const httplib::Request& http_req, httplib::Response& res, bool chat_endpoint) {
    count(&EdgeServerStats::requests);
    std::shared_ptr<Job> job;
    try {
      job = std::make_shared<Job>(parse(http_req, chat_endpoint));
    } catch (const HttpError& e) {
      count(&EdgeServerStats::errors);
      log(http_req.path + ": " + std::to_string(e.status) + " " + e.what());
      return send_error(res, e);
    } catch (const std::exception& e) {
      count(&EdgeServerStats::errors);
      return send_error(res, HttpError(500, "server_error", "", "", e.what()));
    }
    const std::string id = (chat_endpoint ? "chatcmpl-" : "cmpl-") + std::to_string(next_id++);
    const auto created = static_cast<int64_t>(std::time(nullptr));
    const std::string model = o.model_id;
    if (!job->stream) {
      try {
        std::string wire_id;
        const auto r = run(job->req, &wire_id);
        json sp;
        const json usage = usage_and_stats(r, sp);
        sp["wire_id"] = wire_id.empty() ? json(nullptr) : json(wire_id);
        sp["profile_entries"] = job->profile_entries;
        sp["history_turns"] = job->history_turns;
        sp["withheld_turns"] = job->req.withhold.size();
        json choice = {{"index", 0}, {"finish_reason", finish_reason(r)}};
        if (chat_endpoint) choice["message"] = {{"role", "assistant"}, {"content", r.text}};
        else choice["text"] = r.text;
        const json out = {{"id", id},
                          {"object", chat_endpoint ? "chat.completion" : "text_completion"},
                          {"created", created},
                          {"model", model},
                          {"choices", json::array({choice})},
                          {"usage", usage},
                          {"specsteer", sp}};
        log(http_req.path + ": 200, " + std::to_string(r.tokens.size()) + " tokens" +
            (r.counters.resumed ? ", cloud session resumed " + std::to_string(r.counters.resumed) + "x" : ""));
        res.set_content(out.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
      } catch (const HttpError& e) {
        count(&EdgeServerStats::errors);
        log(http_req.path + ": " + std::to_string(e.status) + " " + e.what());
        send_error(res, e);
      }
      return;
    }
    // Server-sent events: one chunk per piece of decided text, a last chunk
    // with finish_reason, usage and the specsteer counters, then [DONE].
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream", [this, job, id, created, model, chat_endpoint, path = http_req.path](
                                 size_t, httplib::DataSink& sink) {
          auto chunk = [&](const json& delta_or_text, const json& finish) {
            json choice = {{"index", 0}, {"finish_reason", finish}};
            if (chat_endpoint) choice["delta"] = delta_or_text;
            else choice["text"] = delta_or_text;
            return json{{"id", id},
                        {"object", chat_endpoint ? "chat.completion.chunk" : "text_completion"},
                        {"created", created},
                        {"model", model},
                        {"choices", json::array({choice})}};
          };
          auto send = [&](const json& j) {
            const std::string event = "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
            return sink.write(event.data(), event.size());
          };
          std::atomic<bool> cancel{false};
          job->req.cancel = &cancel;
          bool first = true;
          job->req.on_token = [&](int32_t, std::string_view piece) {
            if (cancel || piece.empty()) return;
            json delta = chat_endpoint ? json{{"content", std::string(piece)}} : json(std::string(piece));
            if (chat_endpoint && first) delta["role"] = "assistant";
            first = false;
            // A client that went away cancels its generation.
            if (!send(chunk(delta, nullptr))) cancel = true;
          };
          try {
            std::string wire_id;
            const auto r = run(job->req, &wire_id);
            if (r.stop_reason == "cancelled") {
              count(&EdgeServerStats::cancelled);
              log(path + ": client went away, cancelled after " + std::to_string(r.tokens.size()) + " tokens");
              return false;  // drop the connection
            }
            json sp;
            json last = chunk(chat_endpoint ? json::object() : json(""), finish_reason(r));
            last["usage"] = usage_and_stats(r, sp);
            sp["wire_id"] = wire_id.empty() ? json(nullptr) : json(wire_id);
            sp["profile_entries"] = job->profile_entries;
        sp["history_turns"] = job->history_turns;
        sp["withheld_turns"] = job->req.withhold.size();
            last["specsteer"] = sp;
            send(last);
            log(path + ": 200 (stream), " + std::to_string(r.tokens.size()) + " tokens" +
                (r.counters.resumed ? ", cloud session resumed " + std::to_string(r.counters.resumed) + "x" : ""));
          } catch (const HttpError& e) {
            // Headers are sent: the error travels as an event.
            count(&EdgeServerStats::errors);
            log(path + ": " + std::to_string(e.status) + " " + e.what() + " (stream)");
            send(error_json(e));
          } catch (const std::exception& e) {
            count(&EdgeServerStats::errors);
            log(path + ": 500 " + e.what() + " (stream)");
            send(error_json("server_error", "", "", e.what()));
          }
          const std::string done = "data: [DONE]\n\n";
          sink.write(done.data(), done.size());
          sink.done();
          return true;
        });
  }
};

EdgeServer::EdgeServer(const steer::Models& models, EdgeServerOptions opts)
    : impl_(std::make_unique<Impl>(models, std::move(opts))) {
  auto& m = *impl_;
  if (!models.slm) throw Error("edge serve: the small model is not loaded");
  if (m.o.port < 0 || m.o.port > 65535) throw Error("--port must be in 0..65535, got " + std::to_string(m.o.port));
  // A client that closes its connection must not kill the server: writes to
  // it fail with EPIPE instead of raising SIGPIPE (the library sends without
  // MSG_NOSIGNAL).
  signal(SIGPIPE, SIG_IGN);
  m.http.Post("/v1/chat/completions",
              [&m](const httplib::Request& q, httplib::Response& r) { m.complete(q, r, true); });
  m.http.Post("/v1/completions", [&m](const httplib::Request& q, httplib::Response& r) { m.complete(q, r, false); });
  m.http.Get("/v1/models", [&m](const httplib::Request&, httplib::Response& r) {
    const json out = {{"object", "list"},
                      {"data", json::array({{{"id", m.o.model_id}, {"object", "model"}, {"created", 0},
                                             {"owned_by", "specsteer"}}})}};
    r.set_content(out.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
  });
  // The chat page: one static file built into the binary (no CDN, no build step).
  m.http.Get("/", [](const httplib::Request&, httplib::Response& r) {
    r.set_header("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'");
    r.set_content(kChatPageHtml, "text/html; charset=utf-8");
  });
  // What a generation sent to the cloud (the page's inspector), while kept.
  m.http.Get(R"(/v1/wire/([A-Za-z0-9-]+))", [&m](const httplib::Request& q, httplib::Response& r) {
    const std::string id = q.matches[1];
    std::lock_guard<std::mutex> lock(m.wire_mu);
    for (const auto& [key, log] : m.wire_logs)
      if (key == id) return r.set_content(log.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
    send_error(r, HttpError(404, "invalid_request_error", "not_found", "id",
                            "no wire log '" + id + "' (only the last " + std::to_string(m.o.wire_logs) +
                                " generations of cloud methods are kept)"));
  });
  // The page's choices: profile users (this device's store), methods, defaults.
  m.http.Get("/v1/specsteer/options", [&m](const httplib::Request&, httplib::Response& r) {
    json users = json::array();
    if (!m.o.profile_db.empty())
      for (const auto& u : profile::Store::open(m.o.profile_db, profile::Store::Mode::ReadOnly).users()) users.push_back(u);
    const auto& d = m.o.defaults;
    const json out = {{"model", m.o.model_id},
                      {"users", users},
                      {"task", m.o.task},
                      {"has_cloud", static_cast<bool>(m.o.connect) || static_cast<bool>(m.models.llm)},
                      {"methods", {"specsteer", "slm+", "slm", "llm", "lightcosteer", "costeer", "sd"}},
                      {"defaults",
                       {{"method", std::string(steer::method_name(d.method))},
                        {"lambda", d.lambda},
                        {"max_tokens", d.max_new},
                        {"temperature", d.sampler.temperature}}}};
    r.set_content(out.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
  });
  m.http.Get("/health", [&m](const httplib::Request&, httplib::Response& r) {
    const EdgeServerStats s = m.stats_copy();
    const json out = {{"status", "ok"},        {"model", m.o.model_id},         {"requests", s.requests},
                      {"generations", s.generations}, {"errors", s.errors}, {"cancelled", s.cancelled}};
    r.set_content(out.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
  });
  // The API key gates everything but /health (a liveness probe reveals nothing)
  // and the static chat page, which holds no data and asks for the key.
  m.http.set_pre_routing_handler([&m](const httplib::Request& q, httplib::Response& r) {
    if (m.o.api_key.empty() || q.path == "/health" || (q.path == "/" && q.method == "GET"))
      return httplib::Server::HandlerResponse::Unhandled;
    if (bearer_matches(q.get_header_value("Authorization"), m.o.api_key))
      return httplib::Server::HandlerResponse::Unhandled;
    m.count(&EdgeServerStats::errors);
    m.log(q.method + " " + q.path + ": 401 (missing or wrong API key)");
    r.status = 401;
    r.set_header("WWW-Authenticate", "Bearer");
    r.set_content(error_json("invalid_request_error", "invalid_api_key", "",
                             "Incorrect or missing API key: send it as 'Authorization: Bearer KEY' (--api-key)")
                      .dump(),
                  "application/json");
    return httplib::Server::HandlerResponse::Handled;
  });
  // Unknown routes and library-level failures answer in the same JSON shape.
  m.http.set_error_handler([](const httplib::Request& q, httplib::Response& r) {
    if (!r.body.empty()) return;
    const bool missing = r.status == 404;
    r.set_content(error_json("invalid_request_error", missing ? "not_found" : "", "",
                             missing ? "no route " + q.method + " " + q.path : "request failed (" +
                                                                                   std::to_string(r.status) + ")")
                      .dump(-1, ' ', false, json::error_handler_t::replace),
                  "application/json");
  });
  m.http.set_exception_handler([](const httplib::Request&, httplib::Response& r, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    r.status = 500;
    r.set_content(error_json("server_error", "", "", what).dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
  });
  if (m.o.port == 0) {
    m.port = m.http.bind_to_any_port(m.o.host);
    if (m.port <= 0) throw Error("edge serve: cannot listen on " + m.o.host + " (any port)");
  } else {
    if (!m.http.bind_to_port(m.o.host, m.o.port))
      throw Error("edge serve: cannot listen on " + m.o.host + ":" + std::to_string(m.o.port) +
                  " (in use, or not an address of this machine)");
    m.port = m.o.port;
  }
  m.thread = std::thread([&m] { m.http.listen_after_bind(); });
  m.log("listening on http://" + m.o.host + ":" + std::to_string(m.port) + " (model " + m.o.model_id + ")");
}

EdgeServer::~EdgeServer() { stop(); }

int EdgeServer::port() const { return impl_->port; }

void EdgeServer::stop() {
  auto& m = *impl_;
  if (!m.thread.joinable()) return;
  m.http.stop();
  m.thread.join();
}

EdgeServerStats EdgeServer::stats() const { return impl_->stats_copy(); }

}  // namespace specsteer::serve
