#include "steer/reply_check.h"

#include <algorithm>
#include <cmath>

namespace specsteer::steer {
namespace {

[[noreturn]] void violation(const std::string& what) { throw CloudProtocolError("protocol: " + what); }

// Unique ids in [0, n_vocab), finite values, at most `max_entries`.
void check_pairs(const std::vector<IdValue>& pairs, size_t max_entries, uint32_t n_vocab, const char* field,
                 const char* why_max) {
  if (pairs.size() > max_entries)
    violation(std::string(field) + " has " + std::to_string(pairs.size()) + " entries, more than the " +
              std::to_string(max_entries) + " " + why_max);
  std::vector<int32_t> ids;
  ids.reserve(pairs.size());
  for (const auto& p : pairs) {
    if (p.id < 0 || (n_vocab && static_cast<uint32_t>(p.id) >= n_vocab))
      violation(std::string(field) + " id " + std::to_string(p.id) + " is outside the vocabulary of " +
                std::to_string(n_vocab));
    if (!std::isfinite(p.value))
      violation(std::string(field) + " value of id " + std::to_string(p.id) + " is not finite");
    ids.push_back(p.id);
  }
  std::sort(ids.begin(), ids.end());
  if (const auto dup = std::adjacent_find(ids.begin(), ids.end()); dup != ids.end())
    violation(std::string(field) + " holds id " + std::to_string(*dup) + " more than once");
}

void check_finite(const std::vector<float>& v, const char* field) {
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i])) violation(std::string(field) + "[" + std::to_string(i) + "] is not finite");
}

}  // namespace

uint32_t expected_shared_vocab(const SessionOpen& open) {
  if (open.llm.n_vocab == 0 || open.slm.n_vocab == 0) return 0;
  return std::min(open.llm.n_vocab, open.slm.n_vocab);
}

void check_reply(const SessionOpen& open, const Message& request, const Message& reply, uint32_t accepted_vocab) {
  const Settings& s = open.settings;
  const uint32_t V = accepted_vocab ? accepted_vocab : expected_shared_vocab(open);
  const size_t k = static_cast<size_t>(s.top_k);
  const std::string asked = message_name(request);
  auto expect = [&](const char* want) {
    violation("expected " + std::string(want) + " in reply to " + asked + ", got " + message_name(reply));
  };
  if (const auto* e = std::get_if<ErrorReply>(&reply)) {
    if (std::holds_alternative<SessionOpen>(request)) return;  // a refused session: the caller reports it
    violation("the cloud reported an error in reply to " + asked + ": " + e->message);
  }
  if (std::holds_alternative<SessionOpen>(request)) {
    const auto* a = std::get_if<SessionAccept>(&reply);
    if (!a) expect("SessionAccept");
    if (a->byte_level) {
      // A Generalist of another vocabulary: every id is the edge model's.
      if (open.slm.n_vocab && a->n_vocab != open.slm.n_vocab)
        violation("SessionAccept.n_vocab " + std::to_string(a->n_vocab) +
                  " of a byte-level session differs from the edge model's " + std::to_string(open.slm.n_vocab));
      if (!runs_across_vocabularies(open.settings.method))
        violation("SessionAccept.byte_level for method '" + std::string(method_name(open.settings.method)) +
                  "', which needs a shared vocabulary");
    } else if (V && a->n_vocab != V)
      violation("SessionAccept.n_vocab " + std::to_string(a->n_vocab) + " differs from the edge models' " +
                std::to_string(V));
    // An edge that named no LLM learns it here: the shared range is the
    // smaller vocabulary of its own model and the LLM the cloud announces.
    if (open.llm.n_vocab == 0) {
      const uint32_t shared = open.slm.n_vocab ? std::min(open.slm.n_vocab, a->llm.n_vocab) : a->llm.n_vocab;
      if (a->llm.n_vocab == 0 || (!a->byte_level && a->n_vocab != shared))
        violation("SessionAccept.n_vocab " + std::to_string(a->n_vocab) + " is not the smaller of the edge model's " +
                  std::to_string(open.slm.n_vocab) + " and the announced LLM's " + std::to_string(a->llm.n_vocab));
    } else if (a->llm.n_vocab != open.llm.n_vocab || a->llm.fingerprint != open.llm.fingerprint ||
               a->llm.arch != open.llm.arch) {
      violation("SessionAccept.llm '" + a->llm.name + "' is not the LLM the edge asked for ('" + open.llm.name + "')");
    }
    // The edge's schedule of the cloud's passes starts after x.
    if (a->x_llm_tokens == 0 || a->x_slm_tokens == 0)
      violation("SessionAccept.x_llm_tokens/x_slm_tokens must be > 0");
    if (open.x_text.empty() &&
        (a->x_llm_tokens != open.x_llm.size() || a->x_slm_tokens != open.x_slm.size()))
      violation("SessionAccept x lengths (" + std::to_string(a->x_llm_tokens) + ", " +
                std::to_string(a->x_slm_tokens) + ") differ from the ids the edge sent (" +
                std::to_string(open.x_llm.size()) + ", " + std::to_string(open.x_slm.size()) + ")");
    for (int32_t id : a->eog)
      if (id < 0 || static_cast<uint32_t>(id) >= a->n_vocab)
        violation("SessionAccept.eog id " + std::to_string(id) + " is outside the shared vocabulary");
  } else if (const auto* b = std::get_if<DraftBlock>(&request)) {
    const auto* v = std::get_if<Verdict>(&reply);
    if (!v) expect("Verdict");
    const size_t n = b->drafts.size();
    if (v->n_accepted > n || v->rejected != (v->n_accepted < n))
      violation("Verdict.n_accepted " + std::to_string(v->n_accepted) +
                (v->rejected ? " (rejected)" : " (all accepted)") + " inconsistent with " + std::to_string(n) +
                " drafts");
    check_pairs(v->steer, k, V, "Verdict.steer", "requested (top_k)");
    check_pairs(v->target, V ? V : v->target.size(), V, "Verdict.target", "ids of the vocabulary");
    // sd samples from the target: probabilities, not all zero.
    double mass = 0;
    for (const auto& p : v->target) {
      if (p.value < 0 || p.value > 1.001f)
        violation("Verdict.target probability of id " + std::to_string(p.id) + " is " + std::to_string(p.value));
      mass += p.value;
    }
    if (!v->target.empty() && !(mass > 0)) violation("Verdict.target has no probability mass");
  } else if (std::holds_alternative<StepRequest>(request)) {
    const auto* r = std::get_if<StepReply>(&reply);
    if (!r) expect("StepReply");
    check_pairs(r->steer, k, V, "StepReply.steer", "requested (top_k)");
    if (s.method == Method::CoSteer) {
      for (const auto* lp : {&r->llm_logprobs, &r->slm_logprobs})
        if (V && lp->size() != V)
          violation("costeer StepReply carries " + std::to_string(lp->size()) + " log-probabilities, expected " +
                    std::to_string(V));
    } else if (!r->llm_logprobs.empty() || !r->slm_logprobs.empty()) {
      violation("StepReply carries full-vocabulary log-probabilities, which only costeer asks for");
    }
    check_finite(r->llm_logprobs, "StepReply.llm_logprobs");
    check_finite(r->slm_logprobs, "StepReply.slm_logprobs");
  } else if (std::holds_alternative<Close>(request)) {
    if (!std::holds_alternative<CloseAck>(reply)) expect("CloseAck");
  } else {
    violation("the edge never sends " + asked);
  }
}

std::vector<uint8_t> CheckedTransport::exchange(std::span<const uint8_t> request) {
  if (!broken_.empty()) throw CloudProtocolError(broken_);
  const Message req = decode(request);  // the edge's own encoding
  std::vector<uint8_t> raw = cloud_.exchange(request);
  try {
    DecodeLimits lim;
    lim.n_vocab = accepted_vocab_;
    Message reply;
    try {
      reply = decode(raw, lim);
    } catch (const Error& e) {
      throw CloudProtocolError(std::string("malformed reply: ") + e.what());
    }
    check_reply(open_, req, reply, accepted_vocab_);
    if (const auto* a = std::get_if<SessionAccept>(&reply)) accepted_vocab_ = a->n_vocab;
  } catch (const CloudProtocolError& e) {
    broken_ = e.what();
    throw;
  }
  return raw;
}

}  // namespace specsteer::steer
