#include "steer/generate.h"

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
  std::string why;
  if (!vocab_compatible(*m.llm_tok, *m.slm_tok, &why))
    throw Error("models: LLM '" + llm_path + "' and SLM '" + slm_path +
                "' cannot pair: their vocabularies differ (" + why + ")");
  return m;
}

namespace {

std::vector<int32_t> prompt_ids(const Tokenizer& tok, const std::string& text, bool chat) {
  const bool fmt = chat && tok.chat_format() != ChatFormat::None;
  // parse_special only for the chat wrapper's own control tokens.
  return tok.encode(fmt ? tok.format_chat(text) : text, true, fmt);
}

}  // namespace

PromptIds prepare_prompts(const Models& models, const GenerateRequest& req) {
  PromptIds p;
  p.x_llm = prompt_ids(*models.llm_tok, req.x, req.chat);
  p.x_slm = prompt_ids(*models.slm_tok, req.x, req.chat);
  p.personalized = prompt_ids(*models.slm_tok, req.personalized, req.chat);
  return p;
}

GenerationResult generate(const Models& models, const GenerateRequest& req, Trace* trace) {
  if (!models.llm || !models.slm || !models.llm_tok || !models.slm_tok)
    throw Error("generate: models are not loaded");
  const Settings& s = req.settings;
  validate(s);
  const Tokenizer& lt = *models.llm_tok;
  const Tokenizer& st = *models.slm_tok;
  EogFn is_eog = [&](int32_t t) {
    return (t < lt.n_vocab() && lt.is_eog(t)) || (t < st.n_vocab() && st.is_eog(t));
  };

  RunResult run;
  const Tokenizer* out_tok = &st;
  switch (s.method) {
    case Method::Llm: {
      auto src = make_sequence_source(models.llm);
      run = run_local(*src, prompt_ids(lt, req.x, req.chat), s, is_eog);
      run.counters.positions_llm = src->positions_evaluated();
      out_tok = &lt;
      break;
    }
    case Method::Slm: {
      auto src = make_sequence_source(models.slm);
      run = run_local(*src, prompt_ids(st, req.x, req.chat), s, is_eog);
      run.counters.positions_slm_minus = src->positions_evaluated();
      break;
    }
    case Method::SlmPlus: {
      auto src = make_sequence_source(models.slm);
      run = run_local(*src, prompt_ids(st, req.personalized, req.chat), s, is_eog);
      run.counters.positions_slm_plus = src->positions_evaluated();
      break;
    }
    default: {
      auto cloud = CloudService::from_models(models.llm, models.slm);
      InProcessTransport transport(*cloud, trace != nullptr);
      PromptIds p = prepare_prompts(models, req);
      SessionOpen open;
      open.llm = identity_of(*models.llm);
      open.slm = identity_of(*models.slm);
      open.x_llm = std::move(p.x_llm);
      open.x_slm = std::move(p.x_slm);
      open.settings = s;
      auto edge = make_sequence_source(models.slm);
      run = run_edge(*edge, p.personalized, transport, open, is_eog);
      if (trace)
        for (const auto& rec : transport.records()) (rec.uplink ? trace->uplink : trace->downlink).push_back(rec.bytes);
      break;
    }
  }
  GenerationResult out;
  Utf8Stream utf8;
  for (int32_t t : run.tokens) out.text += utf8.push(out_tok->token_bytes(t));
  out.text += utf8.finish();
  out.tokens = std::move(run.tokens);
  out.stop_reason = std::move(run.stop_reason);
  out.counters = run.counters;
  return out;
}

}  // namespace specsteer::steer
