#include "steer/cloud.h"

#include <algorithm>
#include <string>

#include "common/error.h"
#include "common/timer.h"
#include "steer/formulas.h"
#include "steer/transport.h"
#include "tokenizer/tokenizer.h"

namespace specsteer::steer {

std::vector<int32_t> prompt_ids(const Tokenizer& tok, const std::string& text, bool chat, const std::string& system,
                                std::span<const ChatTurn> history) {
  std::vector<ChatTurn> turns(history.begin(), history.end());
  turns.push_back({"user", text});
  const bool fmt = chat && tok.chat_format() != ChatFormat::None;
  // parse_special only for the chat wrapper's own control tokens.
  if (fmt) return tok.encode(tok.format_chat(turns, system), true, true);
  std::string plain = system;
  for (const ChatTurn& t : turns) plain += (plain.empty() ? "" : "\n\n") + t.text;
  return tok.encode(plain, true, false);
}

std::vector<int32_t> shared_eog_ids(const Tokenizer& llm, const Tokenizer& slm) {
  std::vector<int32_t> out;
  const int n = std::min(llm.n_vocab(), slm.n_vocab());
  for (int32_t t = 0; t < n; ++t)
    if (llm.is_eog(t) || slm.is_eog(t)) out.push_back(t);
  return out;
}

void admit_open(SessionOpen& open, const CloudModels& m) {
  using K = OpenRefused::Kind;
  if (open.version != kProtocolVersion) throw OpenRefused(K::Mismatch, version_mismatch("the edge", open.version));
  auto same = [](const ModelIdentity& want, const ModelIdentity& have) {
    return want.n_vocab == have.n_vocab && want.fingerprint == have.fingerprint && want.arch == have.arch;
  };
  if (!same(open.slm, m.slm))
    throw OpenRefused(K::Mismatch, "cloud: the edge's small model '" + open.slm.name + "' differs from the cloud's SLM '" +
                                       m.slm.name + "' (SLM+ and SLM- must be the same model file)");
  // An edge holding only its own model names no LLM: the cloud's LLM pairs
  // with its SLM (the vocabularies were checked when the cloud loaded them).
  if (open.llm.n_vocab != 0 && !same(open.llm, m.llm))
    throw OpenRefused(K::Mismatch,
                      "cloud: the edge expects LLM '" + open.llm.name + "' but this cloud serves '" + m.llm.name + "'");
  if (m.bytes && !runs_across_vocabularies(open.settings.method))
    throw OpenRefused(K::Invalid, "cloud: method '" + std::string(method_name(open.settings.method)) +
                                      "' needs the LLM and SLM to share a vocabulary; this cloud's differ and pair "
                                      "through bytes, which only specsteer supports");
  if (!open.x_text.empty()) {
    if (!m.llm_tok || !m.slm_tok)
      throw OpenRefused(K::Invalid, "cloud: x was sent as text but this cloud has no tokenizers; send token ids");
    try {
      open.x_llm = prompt_ids(*m.llm_tok, open.x_text, open.chat, open.system, open.history);
      open.x_slm = prompt_ids(*m.slm_tok, open.x_text, open.chat, open.system, open.history);
    } catch (const Error& e) {
      throw OpenRefused(K::Invalid, std::string("cloud: cannot tokenize x: ") + e.what());
    }
  }
  if (open.x_llm.empty() || open.x_slm.empty()) throw OpenRefused(K::Invalid, "cloud: SessionOpen.x is empty");
  if (open.x_text.empty() && !open.system.empty())
    throw OpenRefused(K::Invalid, "cloud: SessionOpen.system needs x as text (ids already hold the prompt)");
}

SessionAccept accept_for(const SessionOpen& open, const CloudModels& m, uint64_t session, const Cloud* cloud) {
  SessionAccept a;
  if (cloud) {
    a.x_llm_cached = static_cast<uint32_t>(std::min(cloud->llm_reused(), open.x_llm.size()));
    a.x_slm_cached = static_cast<uint32_t>(std::min(cloud->slm_reused(), open.x_slm.size()));
  }
  a.session = session;
  a.n_vocab = m.shared_vocab();
  a.llm = m.llm;
  a.x_llm_tokens = static_cast<uint32_t>(open.x_llm.size());
  a.x_slm_tokens = static_cast<uint32_t>(open.x_slm.size());
  a.eog = m.eog;
  a.n_ctx = m.n_ctx;
  a.byte_level = m.bytes != nullptr;
  return a;
}

namespace {

// Copies rows [n_rows][stride] keeping the first n columns.
std::vector<float> take_rows(std::span<const float> rows, size_t n_rows, size_t stride, size_t n) {
  std::vector<float> out(n_rows * n);
  for (size_t r = 0; r < n_rows; ++r) std::copy_n(rows.data() + r * stride, n, out.data() + r * n);
  return out;
}

void check_ids(std::span<const int32_t> ids, int n_vocab, const char* what) {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= n_vocab)
      throw Error(std::string("cloud: ") + what + "[" + std::to_string(i) + "] = " + std::to_string(ids[i]) +
                  " is outside the shared vocabulary (" + std::to_string(n_vocab) + ")");
}

std::vector<IdValue> to_pairs(const sampling::Distribution& d) {
  std::vector<IdValue> out(d.ids.size());
  for (size_t i = 0; i < d.ids.size(); ++i) out[i] = {d.ids[i], static_cast<float>(d.probs[i])};
  return out;
}

}  // namespace

Cloud::Cloud(std::unique_ptr<LogitSource> llm, std::unique_ptr<LogitSource> slm_minus, const SessionOpen& open,
             std::shared_ptr<const BytePair> bytes)
    : llm_(std::move(llm)), slm_(std::move(slm_minus)), s_(open.settings), rng_(open.settings.seed, 2),
      bytes_(std::move(bytes)) {
  validate(s_);
  if (!uses_cloud(s_.method))
    throw Error("cloud: method '" + std::string(method_name(s_.method)) + "' does not use the cloud");
  if (bytes_ && !runs_across_vocabularies(s_.method))
    throw Error("cloud: method '" + std::string(method_name(s_.method)) +
                "' needs a shared vocabulary; byte-level pairs run specsteer only");
  n_vocab_ = bytes_ ? slm_->n_vocab() : std::min(llm_->n_vocab(), slm_->n_vocab());
  use_slm_ = s_.method != Method::Sd;
  if (open.x_llm.empty() || open.x_slm.empty()) throw Error("cloud: SessionOpen.x is empty");
  check_ids(open.x_llm, llm_->n_vocab(), "x_llm");
  check_ids(open.x_slm, slm_->n_vocab(), "x_slm");
  // A resumed session starts after the tokens a previous one agreed on:
  // prefilled with x, so its caches equal the lost session's.
  const std::span<const int32_t> resume = open.resume;
  if (resume.size() > static_cast<size_t>(s_.max_new))
    throw Error("cloud: SessionOpen.resume holds " + std::to_string(resume.size()) + " tokens, more than max_new " +
                std::to_string(s_.max_new));
  check_ids(resume, n_vocab_, "resume");
  auto with_resume = [&](const std::vector<int32_t>& x) {
    std::vector<int32_t> all(x);
    all.insert(all.end(), resume.begin(), resume.end());
    return all;
  };
  generated_ = resume.size();
  if (bytes_) {
    slm_next_ = take_rows(slm_->eval_last(with_resume(open.x_slm)), 1, slm_->n_vocab(), n_vocab_);
    // Full rows: the LLM's are over its own vocabulary.
    const auto row = llm_->eval_last(open.x_llm);
    llm_next_.assign(row.end() - llm_->n_vocab(), row.end());
    anchor_ = llm_->size();
    if (!resume.empty()) resume_bytes(resume);
    return;
  }
  llm_next_ = take_rows(llm_->eval_last(with_resume(open.x_llm)), 1, llm_->n_vocab(), n_vocab_);
  if (use_slm_)
    slm_next_ = take_rows(slm_->eval_last(with_resume(open.x_slm)), 1, slm_->n_vocab(), n_vocab_);
}

// An edge may not make the cloud compute more than the session asked for.
void Cloud::check_budget(size_t more) const {
  const size_t limit = static_cast<size_t>(s_.max_new) + static_cast<size_t>(s_.draft) + 1;
  if (generated_ + more > limit)
    throw Error("cloud: session would exceed its token budget (max_new " + std::to_string(s_.max_new) + ")");
}

void Cloud::append(std::span<const int32_t> tokens, std::vector<float>* llm_rows, std::vector<float>* slm_rows) {
  const size_t n = tokens.size();
  Stopwatch sw;
  *llm_rows = take_rows(llm_->eval(tokens), n, llm_->n_vocab(), n_vocab_);
  t_llm_ += sw.seconds();
  if (use_slm_) {
    Stopwatch ss;
    *slm_rows = take_rows(slm_->eval(tokens), n, slm_->n_vocab(), n_vocab_);
    t_slm_ += ss.seconds();
  }
}

namespace {
// Adds the time from construction to destruction to `total`.
struct ScopedTime {
  double& total;
  Stopwatch sw;
  ~ScopedTime() { total += sw.seconds(); }
};
}  // namespace

Verdict Cloud::verify(const DraftBlock& b) {
  ScopedTime timed{t_handling_, {}};
  if (s_.method != Method::SpecSteer && s_.method != Method::Sd)
    throw Error("cloud: DraftBlock in a '" + std::string(method_name(s_.method)) + "' session");
  if (b.drafts.empty() || b.drafts.size() > static_cast<size_t>(s_.draft))
    throw Error("cloud: DraftBlock.drafts has " + std::to_string(b.drafts.size()) + " ids, expected 1.." +
                std::to_string(s_.draft));
  if (b.committed.size() > 1) throw Error("cloud: DraftBlock.committed holds more than one token");
  const bool sd = s_.method == Method::Sd;
  if (sd && b.draft_probs.size() != b.drafts.size())
    throw Error("cloud: sd DraftBlock needs one draft probability per draft");
  if (!sd && !b.draft_probs.empty()) throw Error("cloud: DraftBlock.draft_probs is only for sd");
  check_ids(b.committed, n_vocab_, "committed");
  check_ids(b.drafts, n_vocab_, "drafts");

  check_budget(b.committed.size() + b.drafts.size());
  if (bytes_) return verify_bytes(b);
  const size_t base = llm_->size();
  const size_t C = b.committed.size();
  std::vector<int32_t> toks(b.committed);
  toks.insert(toks.end(), b.drafts.begin(), b.drafts.end());
  std::vector<float> rl, rs;
  append(toks, &rl, &rs);
  const size_t V = static_cast<size_t>(n_vocab_);
  // Row predicting toks[i]: the previous next-row for i == 0, else row i-1.
  auto pred_llm = [&](size_t i) { return i == 0 ? std::span<const float>(llm_next_) : std::span<const float>(rl).subspan((i - 1) * V, V); };
  auto pred_slm = [&](size_t i) { return i == 0 ? std::span<const float>(slm_next_) : std::span<const float>(rs).subspan((i - 1) * V, V); };

  Verdict v;
  for (size_t t = 0; t < b.drafts.size(); ++t) {
    const size_t i = C + t;
    const int32_t y = b.drafts[t];
    double alpha;
    sampling::Distribution target;
    if (sd) {
      target = sampling::make_distribution(pred_llm(i), s_.sampler);
      alpha = sd_accept_prob(target.prob(y), b.draft_probs[t]);
    } else {
      alpha = ratio_accept_prob(pred_llm(i), pred_slm(i), y, s_.lambda);
    }
    // Keyed by the token's position in the generation, so a resumed session
    // (or a block boundary placed elsewhere) draws the same u for it.
    const double u = rng_.uniform_at(generated_ + i);
    if (accept(u, alpha)) {
      ++v.n_accepted;
      continue;
    }
    v.rejected = true;
    if (sd)
      v.target = to_pairs(target);
    else
      v.steer = cloud_steer(pred_llm(i), pred_slm(i), s_);
    // Roll back to x + agreed prefix; its next-token row is the one just tested.
    std::vector<float> nl(pred_llm(i).begin(), pred_llm(i).end());
    llm_->truncate(base + i);
    llm_next_ = std::move(nl);
    if (use_slm_) {
      std::vector<float> ns(pred_slm(i).begin(), pred_slm(i).end());
      slm_->truncate(base + i);
      slm_next_ = std::move(ns);
    }
    generated_ += i;
    return v;
  }
  const size_t last = toks.size() - 1;
  llm_next_.assign(rl.begin() + last * V, rl.begin() + (last + 1) * V);
  if (use_slm_) slm_next_.assign(rs.begin() + last * V, rs.begin() + (last + 1) * V);
  generated_ += toks.size();
  if (s_.bonus) {
    if (sd)
      v.target = to_pairs(sampling::make_distribution(llm_next_, s_.sampler));
    else
      v.steer = cloud_steer(llm_next_, slm_next_, s_);
  }
  return v;
}

StepReply Cloud::step(const StepRequest& req) {
  ScopedTime timed{t_handling_, {}};
  if (s_.method != Method::LightCoSteer && s_.method != Method::CoSteer)
    throw Error("cloud: StepRequest in a '" + std::string(method_name(s_.method)) + "' session");
  if (req.committed.size() > static_cast<size_t>(s_.draft) + 1)
    throw Error("cloud: StepRequest.committed holds too many tokens");
  check_ids(req.committed, n_vocab_, "committed");
  check_budget(req.committed.size());
  if (!req.committed.empty()) {
    std::vector<float> rl, rs;
    append(req.committed, &rl, &rs);
    const size_t V = static_cast<size_t>(n_vocab_);
    llm_next_.assign(rl.end() - V, rl.end());
    slm_next_.assign(rs.end() - V, rs.end());
    generated_ += req.committed.size();
  }
  StepReply r;
  if (s_.method == Method::LightCoSteer) {
    r.steer = cloud_steer(llm_next_, slm_next_, s_);
  } else {
    const auto l = sampling::log_softmax(llm_next_);
    const auto s = sampling::log_softmax(slm_next_);
    r.llm_logprobs.assign(l.begin(), l.end());
    r.slm_logprobs.assign(s.begin(), s.end());
    // A probability below float range would be -inf on the wire: clamp.
    for (float& x : r.llm_logprobs) x = std::max(x, -1e30f);
    for (float& x : r.slm_logprobs) x = std::max(x, -1e30f);
  }
  return r;
}

CloseAck Cloud::stats() const {
  auto us = [](double s) { return static_cast<uint64_t>(std::max(0.0, s) * 1e6 + 0.5); };
  return CloseAck{llm_->positions_evaluated(),
                  use_slm_ ? slm_->positions_evaluated() : 0,
                  llm_->attention_work(),
                  use_slm_ ? slm_->attention_work() : 0,
                  us(t_llm_),
                  us(t_slm_),
                  us(t_handling_ - t_llm_ - t_slm_)};
}

struct CloudService::Entry {
  std::mutex mu;
  std::unique_ptr<Cloud> cloud;
};

CloudService::CloudService(SourceFactory llm, SourceFactory slm, ModelIdentity llm_id, ModelIdentity slm_id)
    : CloudService(std::move(llm), std::move(slm), CloudModels{std::move(llm_id), std::move(slm_id), {}, {}, 0, {}, nullptr}) {}

CloudService::CloudService(SourceFactory llm, SourceFactory slm, CloudModels models)
    : make_llm_(std::move(llm)), make_slm_(std::move(slm)), models_(std::move(models)) {}

const Cloud* CloudService::session(uint64_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second->cloud.get();
}

size_t CloudService::n_sessions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sessions_.size();
}

Message CloudService::dispatch(Message m) {
  auto find = [&](uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) throw Error("cloud: unknown session " + std::to_string(id));
    return it->second;
  };
  if (auto* o = std::get_if<SessionOpen>(&m)) {
    admit_open(*o, models_);
    auto e = std::make_shared<Entry>();
    e->cloud = std::make_unique<Cloud>(make_llm_(), make_slm_(), *o, models_.bytes);
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t id = next_id_++;
    sessions_[id] = std::move(e);
    return accept_for(*o, models_, id, sessions_[id]->cloud.get());
  }
  if (auto* b = std::get_if<DraftBlock>(&m)) {
    auto e = find(b->session);
    std::lock_guard<std::mutex> lock(e->mu);
    return e->cloud->verify(*b);
  }
  if (auto* r = std::get_if<StepRequest>(&m)) {
    auto e = find(r->session);
    std::lock_guard<std::mutex> lock(e->mu);
    return e->cloud->step(*r);
  }
  if (auto* c = std::get_if<Close>(&m)) {
    auto e = find(c->session);
    CloseAck ack;
    {
      std::lock_guard<std::mutex> lock(e->mu);
      ack = e->cloud->stats();
    }
    std::lock_guard<std::mutex> lock(mu_);
    sessions_.erase(c->session);
    return ack;
  }
  throw Error(std::string("cloud: unexpected message ") + message_name(m));
}

std::vector<uint8_t> CloudService::handle(std::span<const uint8_t> request) {
  try {
    DecodeLimits lim;
    lim.n_vocab = std::max(models_.llm.n_vocab, models_.slm.n_vocab);
    return encode(dispatch(decode(request, lim)));
  } catch (const std::exception& e) {
    return encode(ErrorReply{e.what()});
  }
}

std::vector<uint8_t> InProcessTransport::exchange(std::span<const uint8_t> request) {
  std::vector<uint8_t> reply = cloud_.handle(request);
  bytes_up_ += request.size();
  bytes_down_ += reply.size();
  if (record_) {
    records_.push_back({true, std::vector<uint8_t>(request.begin(), request.end())});
    records_.push_back({false, reply});
  }
  return reply;
}

}  // namespace specsteer::steer
