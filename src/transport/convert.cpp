#include "transport/convert.h"

#include <climits>
#include <string>

#include "common/error.h"

namespace specsteer::transport {

namespace {

template <typename Repeated>
std::vector<int32_t> ids(const Repeated& r) {
  return std::vector<int32_t>(r.begin(), r.end());
}

template <typename Repeated>
void put(Repeated* out, const std::vector<int32_t>& v) {
  out->Add(v.begin(), v.end());
}

std::vector<steer::IdValue> pairs(const google::protobuf::RepeatedPtrField<v1::IdValue>& r) {
  std::vector<steer::IdValue> out;
  out.reserve(static_cast<size_t>(r.size()));
  for (const auto& p : r) out.push_back({p.id(), p.value()});
  return out;
}

void put_pairs(google::protobuf::RepeatedPtrField<v1::IdValue>* out, const std::vector<steer::IdValue>& v) {
  out->Reserve(static_cast<int>(v.size()));
  for (const auto& p : v) {
    auto* e = out->Add();
    e->set_id(p.id);
    e->set_value(p.value);
  }
}

int to_int(uint32_t v, const char* field) {
  if (v > static_cast<uint32_t>(INT_MAX)) throw Error(std::string("protocol: Settings.") + field + " is too large");
  return static_cast<int>(v);
}

steer::ModelIdentity identity(const v1::ModelIdentity& m) {
  return {m.name(), m.arch(), m.n_vocab(), m.fingerprint()};
}

void put_identity(v1::ModelIdentity* out, const steer::ModelIdentity& m) {
  out->set_name(m.name);
  out->set_arch(m.arch);
  out->set_n_vocab(m.n_vocab);
  out->set_fingerprint(m.fingerprint);
}

steer::Settings settings(const v1::Settings& p) {
  steer::Settings s;
  const int method = static_cast<int>(p.method());
  if (method < 0 || method > static_cast<int>(steer::Method::LlmPlus))
    throw Error("protocol: Settings.method " + std::to_string(method) + " is not a known method");
  s.method = static_cast<steer::Method>(method);
  s.lambda = p.lambda();
  s.beta = p.beta();
  s.draft = to_int(p.draft(), "draft");
  s.top_k = to_int(p.top_k(), "top_k");
  s.max_new = to_int(p.max_new(), "max_new");
  s.seed = p.seed();
  s.sampler.temperature = p.temperature();
  s.sampler.top_k = to_int(p.sampler_top_k(), "sampler_top_k");
  s.sampler.top_p = p.top_p();
  s.sampler.min_p = p.min_p();
  s.bonus = p.bonus();
  s.costeer.iterations = to_int(p.costeer_iterations(), "costeer_iterations");
  s.costeer.a = p.costeer_a();
  s.costeer.b = p.costeer_b();
  s.costeer.L = p.costeer_l();
  s.costeer.eta = p.costeer_eta();
  // Absent in messages from edges that predate the field: CONTRAST (0), the
  // rule those edges ran.
  const int cand = static_cast<int>(p.steer_candidates());
  if (cand < 0 || cand > static_cast<int>(steer::SteerCandidates::Plausible))
    throw Error("protocol: Settings.steer_candidates " + std::to_string(cand) + " is not a known rule");
  s.steer_candidates = static_cast<steer::SteerCandidates>(cand);
  s.plausibility = p.plausibility();
  return s;
}

void put_settings(v1::Settings* p, const steer::Settings& s) {
  p->set_method(static_cast<v1::Settings::Method>(s.method));
  p->set_lambda(s.lambda);
  p->set_beta(s.beta);
  p->set_draft(static_cast<uint32_t>(s.draft));
  p->set_top_k(static_cast<uint32_t>(s.top_k));
  p->set_max_new(static_cast<uint32_t>(s.max_new));
  p->set_seed(s.seed);
  p->set_temperature(s.sampler.temperature);
  p->set_sampler_top_k(static_cast<uint32_t>(s.sampler.top_k));
  p->set_top_p(s.sampler.top_p);
  p->set_min_p(s.sampler.min_p);
  p->set_bonus(s.bonus);
  p->set_costeer_iterations(static_cast<uint32_t>(s.costeer.iterations));
  p->set_costeer_a(s.costeer.a);
  p->set_costeer_b(s.costeer.b);
  p->set_costeer_l(s.costeer.L);
  p->set_costeer_eta(s.costeer.eta);
  p->set_steer_candidates(static_cast<v1::Settings::SteerCandidates>(s.steer_candidates));
  p->set_plausibility(s.plausibility);
}

// Re-checks a converted message with steer's decoder (ranges, lengths,
// finiteness, settings), so both transports enforce one set of rules.
steer::Message validated(const steer::Message& m, const steer::DecodeLimits& limits) {
  return steer::decode(steer::encode(m), limits);
}

}  // namespace

v1::EdgeMessage to_proto_uplink(const steer::Message& m) {
  v1::EdgeMessage out;
  if (const auto* o = std::get_if<steer::SessionOpen>(&m)) {
    auto* p = out.mutable_open();
    p->set_version(o->version);
    put_identity(p->mutable_llm(), o->llm);
    put_identity(p->mutable_slm(), o->slm);
    p->set_x_text(o->x_text);
    p->set_chat(o->chat);
    p->set_system(o->system);
    put(p->mutable_x_llm(), o->x_llm);
    if (o->x_slm != o->x_llm) put(p->mutable_x_slm(), o->x_slm);
    put_settings(p->mutable_settings(), o->settings);
    put(p->mutable_resume(), o->resume);
    for (const ChatTurn& t : o->history) {
      auto* h = p->add_history();
      h->set_role(t.role);
      h->set_text(t.text);
    }
    p->set_cache_user(o->cache_user);
    p->set_cache_conversation(o->cache_conversation);
  } else if (const auto* b = std::get_if<steer::DraftBlock>(&m)) {
    auto* p = out.mutable_draft();
    p->set_session(b->session);
    put(p->mutable_committed(), b->committed);
    put(p->mutable_drafts(), b->drafts);
    p->mutable_draft_probs()->Add(b->draft_probs.begin(), b->draft_probs.end());
  } else if (const auto* r = std::get_if<steer::StepRequest>(&m)) {
    auto* p = out.mutable_step();
    p->set_session(r->session);
    put(p->mutable_committed(), r->committed);
  } else if (const auto* c = std::get_if<steer::Close>(&m)) {
    out.mutable_close()->set_session(c->session);
  } else {
    throw Error(std::string("transport: ") + steer::message_name(m) + " is not an edge-to-cloud message");
  }
  return out;
}

v1::CloudMessage to_proto_downlink(const steer::Message& m) {
  v1::CloudMessage out;
  if (const auto* a = std::get_if<steer::SessionAccept>(&m)) {
    auto* p = out.mutable_accept();
    p->set_session(a->session);
    p->set_n_vocab(a->n_vocab);
    p->set_version(a->version);
    put_identity(p->mutable_llm(), a->llm);
    p->set_x_llm_tokens(a->x_llm_tokens);
    p->set_x_slm_tokens(a->x_slm_tokens);
    put(p->mutable_eog(), a->eog);
    p->set_n_ctx(a->n_ctx);
    p->set_byte_level(a->byte_level);
    p->set_x_llm_cached(a->x_llm_cached);
    p->set_x_slm_cached(a->x_slm_cached);
  } else if (const auto* v = std::get_if<steer::Verdict>(&m)) {
    auto* p = out.mutable_verdict();
    p->set_n_accepted(v->n_accepted);
    p->set_rejected(v->rejected);
    put_pairs(p->mutable_steer(), v->steer);
    put_pairs(p->mutable_target(), v->target);
  } else if (const auto* r = std::get_if<steer::StepReply>(&m)) {
    auto* p = out.mutable_step_reply();
    put_pairs(p->mutable_steer(), r->steer);
    p->mutable_llm_logprobs()->Add(r->llm_logprobs.begin(), r->llm_logprobs.end());
    p->mutable_slm_logprobs()->Add(r->slm_logprobs.begin(), r->slm_logprobs.end());
  } else if (const auto* c = std::get_if<steer::CloseAck>(&m)) {
    auto* p = out.mutable_close_ack();
    p->set_positions_llm(c->positions_llm);
    p->set_positions_slm(c->positions_slm);
    p->set_attention_llm(c->attention_llm);
    p->set_attention_slm(c->attention_slm);
    p->set_us_llm(c->us_llm);
    p->set_us_slm(c->us_slm);
    p->set_us_steer(c->us_steer);
  } else {
    throw Error(std::string("transport: ") + steer::message_name(m) + " is not a cloud-to-edge message");
  }
  return out;
}

steer::Message from_proto(const v1::EdgeMessage& m, const steer::DecodeLimits& limits) {
  switch (m.msg_case()) {
    case v1::EdgeMessage::kOpen: {
      const auto& p = m.open();
      steer::SessionOpen o;
      o.version = p.version();
      o.llm = identity(p.llm());
      o.slm = identity(p.slm());
      o.x_text = p.x_text();
      o.chat = p.chat();
      o.system = p.system();
      o.x_llm = ids(p.x_llm());
      o.x_slm = p.x_slm().empty() ? o.x_llm : ids(p.x_slm());
      o.settings = settings(p.settings());
      o.resume = ids(p.resume());
      if (static_cast<uint64_t>(p.history_size()) > limits.max_turns)
        throw Error("protocol: SessionOpen.history: " + std::to_string(p.history_size()) + " turns exceed the limit " +
                    std::to_string(limits.max_turns));
      for (const auto& h : p.history()) o.history.push_back({h.role(), h.text()});
      o.cache_user = p.cache_user();
      o.cache_conversation = p.cache_conversation();
      return validated(o, limits);
    }
    case v1::EdgeMessage::kDraft: {
      const auto& p = m.draft();
      steer::DraftBlock b;
      b.session = p.session();
      b.committed = ids(p.committed());
      b.drafts = ids(p.drafts());
      b.draft_probs.assign(p.draft_probs().begin(), p.draft_probs().end());
      return validated(b, limits);
    }
    case v1::EdgeMessage::kStep: {
      const auto& p = m.step();
      return validated(steer::StepRequest{p.session(), ids(p.committed())}, limits);
    }
    case v1::EdgeMessage::kClose:
      return steer::Close{m.close().session()};
    case v1::EdgeMessage::MSG_NOT_SET:
      break;
  }
  throw Error("protocol: EdgeMessage carries no message");
}

steer::Message from_proto(const v1::CloudMessage& m, const steer::DecodeLimits& limits) {
  switch (m.msg_case()) {
    case v1::CloudMessage::kAccept: {
      const auto& p = m.accept();
      steer::SessionAccept a;
      a.version = p.version();
      a.session = p.session();
      a.n_vocab = p.n_vocab();
      a.llm = identity(p.llm());
      a.x_llm_tokens = p.x_llm_tokens();
      a.x_slm_tokens = p.x_slm_tokens();
      a.eog = ids(p.eog());
      a.n_ctx = p.n_ctx();
      a.byte_level = p.byte_level();
      a.x_llm_cached = p.x_llm_cached();
      a.x_slm_cached = p.x_slm_cached();
      return validated(a, limits);
    }
    case v1::CloudMessage::kVerdict: {
      const auto& p = m.verdict();
      steer::Verdict v;
      v.n_accepted = p.n_accepted();
      v.rejected = p.rejected();
      v.steer = pairs(p.steer());
      v.target = pairs(p.target());
      return validated(v, limits);
    }
    case v1::CloudMessage::kStepReply: {
      const auto& p = m.step_reply();
      steer::StepReply r;
      r.steer = pairs(p.steer());
      r.llm_logprobs.assign(p.llm_logprobs().begin(), p.llm_logprobs().end());
      r.slm_logprobs.assign(p.slm_logprobs().begin(), p.slm_logprobs().end());
      return validated(r, limits);
    }
    case v1::CloudMessage::kCloseAck:
      return steer::CloseAck{m.close_ack().positions_llm(), m.close_ack().positions_slm(),
                             m.close_ack().attention_llm(), m.close_ack().attention_slm(),
                             m.close_ack().us_llm(),        m.close_ack().us_slm(),
                             m.close_ack().us_steer()};
    case v1::CloudMessage::MSG_NOT_SET:
      break;
  }
  throw Error("protocol: CloudMessage carries no message");
}

}  // namespace specsteer::transport
