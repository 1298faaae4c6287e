#include "steer/generate.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "common/error.h"
#include "steer/cloud.h"
#include "steer/edge.h"

namespace specsteer::steer {

Models Models::load(const std::string& llm_path, const std::string& slm_path, const LoadOptions& opts) {
  Models m;
  m.llm = Model::load(llm_path, opts);
  m.slm = Model::load(slm_path, opts);
  m.llm_tok = Tokenizer::from_gguf(m.llm->file());
  m.slm_tok = Tokenizer::from_gguf(m.slm->file());
  m.byte_level = !vocab_compatible(*m.llm_tok, *m.slm_tok, &m.byte_level_why);
  if (m.byte_level) m.bytes = std::make_shared<const BytePair>(m.llm_tok, m.slm_tok);
  return m;
}

void Models::pair_through_bytes() {
  if (!llm_tok || !slm_tok) throw Error("models: pairing through bytes needs both models");
  byte_level = true;
  if (!bytes) bytes = std::make_shared<const BytePair>(llm_tok, slm_tok);
}

Models Models::load_edge(const std::string& slm_path, const LoadOptions& opts) {
  Models m;
  m.slm = Model::load(slm_path, opts);
  m.slm_tok = Tokenizer::from_gguf(m.slm->file());
  return m;
}

namespace {

// SLM+'s prompt: the conversation with the private context in its first user turn.
std::vector<int32_t> personalized_ids(const Tokenizer& tok, const GenerateRequest& req) {
  if (req.history.empty()) return prompt_ids(tok, req.personalized, req.chat, req.system);
  std::vector<ChatTurn> turns = req.history;
  turns.front().text = req.personalized;  // the first user turn, with the private context
  return prompt_ids(tok, req.x, req.chat, req.system, turns);
}

void check_history(const std::vector<ChatTurn>& history) {
  for (size_t i = 0; i < history.size(); ++i) {
    const char* want = i % 2 == 0 ? "user" : "assistant";
    if (history[i].role != want)
      throw Error("generate: history turn " + std::to_string(i) + " has role '" + history[i].role + "', expected '" +
                  want + "' (turns alternate user, assistant, ...; x is the user turn after them)");
  }
  if (history.size() % 2 != 0) throw Error("generate: the history must end with an assistant turn (x is the next user turn)");
}

// The history as the models without private context read it.
std::vector<ChatTurn> shared_history(const GenerateRequest& req) {
  std::vector<ChatTurn> out = req.history;
  for (size_t i : req.withhold) {
    if (i >= out.size()) throw Error("generate: withheld turn " + std::to_string(i) + " is past the history");
    out[i].text.clear();
  }
  return out;
}

}  // namespace

PromptIds prepare_prompts(const Models& models, const GenerateRequest& req) {
  PromptIds p;
  const auto history = shared_history(req);
  if (models.llm_tok) p.x_llm = prompt_ids(*models.llm_tok, req.x, req.chat, req.system, history);
  p.x_slm = prompt_ids(*models.slm_tok, req.x, req.chat, req.system, history);
  p.personalized = personalized_ids(*models.slm_tok, req);
  return p;
}

namespace {

// Records every request and reply that crosses a transport (the encoded
// messages), whichever transport it is: the in-process cloud or the network.
class RecordingTransport final : public Transport {
 public:
  RecordingTransport(Transport& inner, Trace& trace) : inner_(inner), trace_(trace) {}
  std::vector<uint8_t> exchange(std::span<const uint8_t> request) override {
    trace_.uplink.emplace_back(request.begin(), request.end());
    try {
      std::vector<uint8_t> reply = inner_.exchange(request);
      trace_.downlink.push_back(reply);
      return reply;
    } catch (...) {
      trace_.downlink.emplace_back();  // no reply: the lists stay aligned
      throw;
    }
  }
  std::optional<WireBytes> wire_bytes() const override { return inner_.wire_bytes(); }
  bool reopen() override { return inner_.reopen(); }

 private:
  Transport& inner_;
  Trace& trace_;
};

}  // namespace

GenerationResult generate(const Models& models, const GenerateRequest& req, Trace* trace) {
  if (!models.slm || !models.slm_tok) throw Error("generate: the small model is not loaded");
  const Settings& s = req.settings;
  validate(s);
  // x is the task: refused when empty, as eval refuses an empty input.
  if (req.x.empty()) throw Error("generate: the input x is empty");
  check_history(req.history);
  const bool have_llm = models.llm && models.llm_tok;
  // The LLM runs here for `llm` and for a cloud method without a remote cloud.
  if (!have_llm && (s.method == Method::Llm || s.method == Method::LlmPlus || (uses_cloud(s.method) && !req.cloud)))
    throw Error("generate: method '" + std::string(method_name(s.method)) +
                "' needs the LLM here (--llm) or, for a cloud method, a remote cloud (--cloud)");
  if (have_llm && models.byte_level && !runs_across_vocabularies(s.method))
    throw Error("generate: method '" + std::string(method_name(s.method)) +
                "' needs the LLM and SLM to share a vocabulary, and they pair through bytes (" +
                (models.byte_level_why.empty() ? std::string("asked for") : models.byte_level_why) +
                "); only specsteer runs that way");
  const Tokenizer& st = *models.slm_tok;
  const Tokenizer* lt = have_llm ? models.llm_tok.get() : nullptr;
  // The cloud's EOG ids come in SessionAccept too (run_edge adds them). A
  // run decides ids of one model (the LLM's for llm/llm+); the other's EOG
  // ids count too when they mean the same tokens (a shared vocabulary).
  const bool llm_local = s.method == Method::Llm || s.method == Method::LlmPlus;
  const Tokenizer* own = llm_local ? lt : &st;
  const Tokenizer* other = models.byte_level ? nullptr : llm_local ? &st : lt;
  EogFn is_eog = [own, other](int32_t t) {
    return (own && t < own->n_vocab() && own->is_eog(t)) || (other && t < other->n_vocab() && other->is_eog(t));
  };

  // Refuse up front what would overflow a KV cache mid-generation: a prompt,
  // the new tokens and one draft block of slack.
  auto fits = [&](const std::vector<int32_t>& ids, const Model& model, const char* what) {
    const size_t need = ids.size() + static_cast<size_t>(s.max_new) + static_cast<size_t>(s.draft) + 1;
    const size_t have = static_cast<size_t>(model.config().n_ctx_train);
    if (need > have)
      throw Error(std::string("generate: the ") + what + " (" + std::to_string(ids.size()) + " tokens) + -n " +
                  std::to_string(s.max_new) + " + K " + std::to_string(s.draft) + " exceeds the context of " +
                  model.path() + " (" + std::to_string(have) + ")");
  };

  RunResult run;
  const Tokenizer* out_tok = s.method == Method::Llm || s.method == Method::LlmPlus ? lt : &st;
  // The decided text, grown token by token (decided tokens are final). It
  // is passed on as it completes valid UTF-8, except that with stop strings
  // the bytes that could begin one are held back; the text ends before the
  // first stop string, and finding one stops the run.
  Utf8Stream stream;
  std::string text;
  size_t decoded = 0, released = 0;
  std::optional<size_t> stop_at;
  size_t longest_stop = 0;
  for (const auto& st_str : req.stop) {
    if (st_str.empty()) throw Error("generate: a stop string is empty");
    longest_stop = std::max(longest_stop, st_str.size());
  }
  auto release = [&](int32_t id, size_t upto) {
    if (!req.on_token) return;
    req.on_token(id, std::string_view(text).substr(released, upto - released));
    released = upto;
  };
  auto decode_upto = [&](std::span<const int32_t> decided) {
    for (; decoded < decided.size() && !stop_at; ++decoded) {
      const int32_t t = decided[decoded];
      const size_t before = text.size();
      text += stream.push(out_tok->token_bytes(t));
      for (const auto& st_str : req.stop) {
        // A new match ends in the new bytes: search from just before them.
        const size_t from = before >= st_str.size() ? before - st_str.size() + 1 : 0;
        const size_t at = text.find(st_str, from);
        if (at != std::string::npos && (!stop_at || at < *stop_at)) stop_at = at;
      }
      size_t upto = stop_at ? *stop_at : text.size() - std::min(text.size(), longest_stop ? longest_stop - 1 : 0);
      while (upto > released && upto < text.size() && (static_cast<uint8_t>(text[upto]) & 0xC0) == 0x80) --upto;
      release(t, std::max(upto, released));
    }
  };
  const ProgressFn progress = [&](std::span<const int32_t> decided) {
    decode_upto(decided);
    return !stop_at && !(req.cancel && req.cancel->load());
  };
  // The local baselines: one model, one prompt, plain decoding; its work
  // goes to that model's counters.
  auto run_alone = [&](const std::shared_ptr<const Model>& model, const std::vector<int32_t>& ids, const char* what,
                       uint64_t& positions, uint64_t& attention, const std::vector<LoraRef>& lora = {}) {
    auto src = make_sequence_source(model, {.lora = lora}, nullptr, req.edge_cache);
    fits(ids, *model, what);
    run = run_local(*src, ids, s, is_eog, progress);
    positions = src->positions_evaluated();
    attention = src->attention_work();
  };
  // run_local records its passes as the edge's; a local baseline on another
  // model moves them (and their time) to that model.
  auto move_local_passes = [&](uint32_t& prompt, std::vector<EvalSpan> Round::*spans, double* forward_s) {
    Schedule& sc = run.schedule;
    prompt = std::exchange(sc.edge_prompt, 0);
    for (Round& r : sc.rounds) r.*spans = std::exchange(r.edge, {});
    if (forward_s) *forward_s = std::exchange(run.counters.t_edge_forward_s, 0.0);
  };
  switch (s.method) {
    case Method::Llm:
      run_alone(models.llm, prompt_ids(*lt, req.x, req.chat, req.system, shared_history(req)), "prompt x",
                run.counters.positions_llm, run.counters.attention_llm);
      move_local_passes(run.schedule.llm_prompt, &Round::llm, &run.counters.t_cloud_llm_s);
      break;
    case Method::LlmPlus:  // LLM-RAG: the Generalist reads the profile, so it leaves the device
      run_alone(models.llm, personalized_ids(*lt, req), "personalized prompt", run.counters.positions_llm,
                run.counters.attention_llm);
      move_local_passes(run.schedule.llm_prompt, &Round::llm, &run.counters.t_cloud_llm_s);
      break;
    case Method::Slm:
      run_alone(models.slm, prompt_ids(st, req.x, req.chat, req.system, shared_history(req)), "prompt x",
                run.counters.positions_slm_minus, run.counters.attention_slm_minus);
      move_local_passes(run.schedule.slm_prompt, &Round::slm, nullptr);
      break;
    case Method::SlmPlus:
      run_alone(models.slm, personalized_ids(st, req), "personalized prompt", run.counters.positions_slm_plus,
                run.counters.attention_slm_plus, req.edge_lora);
      break;
    default: {
      std::unique_ptr<CloudService> cloud;
      std::unique_ptr<InProcessTransport> local;
      if (!req.cloud) {
        // A pair flagged by hand without its tables gets them here (once per call).
        auto bytes = !models.byte_level ? nullptr
                     : models.bytes     ? models.bytes
                                        : std::make_shared<const BytePair>(models.llm_tok, models.slm_tok);
        cloud = CloudService::from_models(models.llm, models.slm, {}, models.llm_tok, models.slm_tok, std::move(bytes));
        local = std::make_unique<InProcessTransport>(*cloud);
      }
      Transport& link = req.cloud ? *req.cloud : *local;
      std::optional<RecordingTransport> recording;
      if (trace) recording.emplace(link, *trace);
      Transport& transport = recording ? static_cast<Transport&>(*recording) : link;
      PromptIds p = prepare_prompts(models, req);
      // x's fit on the cloud's models is the cloud's check (it refuses the open).
      if (have_llm) fits(p.x_llm, *models.llm, "prompt x");
      fits(p.x_slm, *models.slm, "prompt x");
      fits(p.personalized, *models.slm, "personalized prompt");
      SessionOpen open;
      // The edge's own SLM is the same file as the cloud's SLM-; the LLM is
      // named only when this edge holds it (else the cloud's pairs with it).
      open.llm = cloud ? cloud->llm_identity() : have_llm ? identity_of(*models.llm) : ModelIdentity{};
      open.slm = cloud ? cloud->slm_identity() : identity_of(*models.slm);
      // x goes as text: the cloud tokenizes it for its models.
      open.x_text = req.x;
      open.chat = req.chat;
      open.system = req.system;
      open.history = shared_history(req);
      open.cache_user = req.cache_user;
      open.cache_conversation = req.cache_conversation;
      open.settings = s;
      // The private adapters apply to SLM+ only; the cloud's SLM- is the base model.
      auto edge = make_sequence_source(models.slm, {.lora = req.edge_lora}, nullptr, req.edge_cache);
      run = run_edge(*edge, p.personalized, transport, open, is_eog, {},
                     CloudFailurePolicy{req.on_cloud_failure, req.cloud_retries}, progress);
      break;
    }
  }
  decode_upto(run.tokens);
  if (stop_at) {
    text.resize(*stop_at);
    run.stop_reason = "stop";
  } else {
    text += stream.finish();
  }
  if (text.size() > released) release(-1, text.size());
  GenerationResult out;
  out.text = std::move(text);
  out.tokens = std::move(run.tokens);
  out.stop_reason = std::move(run.stop_reason);
  out.counters = run.counters;
  out.cloud_failed_at = run.cloud_failed_at;
  out.cloud_failed_at_open = run.cloud_failed_at_open;
  out.cloud_error = std::move(run.cloud_error);
  out.schedule = std::move(run.schedule);
  out.schedule.method = std::string(method_name(s.method));
  return out;
}

}  // namespace specsteer::steer
