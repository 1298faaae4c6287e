#include "steer/edge.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <future>
#include <limits>
#include <string>
#include <thread>

#include "common/error.h"
#include "common/timer.h"
#include "steer/formulas.h"
#include "steer/reply_check.h"

namespace specsteer::steer {

namespace {

// Sends one message, decodes the reply, and turns an ErrorReply into Error
// (a refused SessionOpen) or CloudProtocolError (a failure mid-session).
// Adds the exchange's wall time to *t_wait and encoding + decoding to
// *t_codec when given (the decode phase's breakdown).
template <typename Reply>
Reply call(Transport& t, const Message& m, const DecodeLimits& lim, Counters& c, double* t_wait,
           double* t_codec = nullptr) {
  Stopwatch enc;
  const std::vector<uint8_t> req = encode(m);
  double codec = enc.seconds();
  Stopwatch sw;
  const std::vector<uint8_t> raw = t.exchange(req);
  if (t_wait) *t_wait += sw.seconds();
  c.bytes_up += req.size();
  c.bytes_down += raw.size();
  Stopwatch dec;
  Message reply = decode(raw, lim);
  codec += dec.seconds();
  if (t_codec) *t_codec += codec;
  if (auto* e = std::get_if<ErrorReply>(&reply)) {
    const std::string why = "cloud refused " + std::string(message_name(m)) + ": " + e->message;
    if (std::holds_alternative<SessionOpen>(m)) throw Error(why);
    throw CloudProtocolError(why);
  }
  if (auto* r = std::get_if<Reply>(&reply)) return std::move(*r);
  throw CloudProtocolError(std::string("protocol: expected a reply to ") + message_name(m) + ", got " +
                           message_name(reply));
}

// The edge's view of its cloud session across failures: a resumable
// TransportError (an outage, not a refusal) makes the next exchange first open
// a new session whose resume point is the tokens the lost one had agreed on,
// then repeat the request with the new session id. Retries are bounded by
// the policy; the first open retries the same way.
class CloudSession {
 public:
  CloudSession(Transport& t, const SessionOpen& open, DecodeLimits& lim, Counters& c, int retries)
      : t_(t), open_(open), lim_(lim), c_(c), retries_left_(std::max(0, retries)) {}

  SessionAccept open() {
    for (int attempt = 0;; ++attempt) {
      try {
        accept_ = call<SessionAccept>(t_, open_, lim_, c_, nullptr);
        return accept_;
      } catch (const TransportError& e) {
        retry_or_throw(e, attempt);
      }
    }
  }

  // One request/reply of the session. `decided` holds the generated tokens;
  // the first `agreed` of them are in the cloud's caches (the resume point).
  template <typename Reply, typename Msg>
  Reply exchange(Msg m, std::span<const int32_t> decided, size_t agreed, double* wait, double* codec) {
    for (int attempt = 0;; ++attempt) {
      try {
        if (lost_) reopen(decided.first(agreed));
        m.session = accept_.session;
        return call<Reply>(t_, m, lim_, c_, wait, codec);
      } catch (const TransportError& e) {
        lost_ = true;
        retry_or_throw(e, attempt);
      }
    }
  }

  uint64_t id() const { return accept_.session; }

 private:
  // Waits (50 ms, 100 ms, ... 1 s) and returns when another attempt may go;
  // rethrows when the failure is not an outage or the retries are spent.
  void retry_or_throw(const TransportError& e, int attempt) {
    if (!e.resumable() || retries_left_ <= 0 || !t_.reopen()) throw;
    --retries_left_;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(1000, 50 << std::min(attempt, 5))));
  }

  void reopen(std::span<const int32_t> agreed) {
    Stopwatch sw;
    SessionOpen o = open_;
    o.resume.assign(agreed.begin(), agreed.end());
    const SessionAccept a = call<SessionAccept>(t_, o, lim_, c_, nullptr);
    // Another replica must run the same models on the same terms.
    if (a.n_vocab != accept_.n_vocab || !(a.llm == accept_.llm) || a.x_llm_tokens != accept_.x_llm_tokens ||
        a.x_slm_tokens != accept_.x_slm_tokens || a.eog != accept_.eog || a.byte_level != accept_.byte_level)
      throw CloudProtocolError("protocol: the resumed session's SessionAccept differs from the first one's "
                               "(another LLM, vocabulary, x length or EOG ids)");
    accept_.session = a.session;
    lost_ = false;
    ++c_.resumed;
    c_.resume_tokens += agreed.size();
    c_.t_resume_s += sw.seconds();
  }

  Transport& t_;
  const SessionOpen& open_;
  DecodeLimits& lim_;
  Counters& c_;
  int retries_left_;
  SessionAccept accept_;
  bool lost_ = false;
};

std::vector<float> last_row(std::span<const float> rows, int stride, int n) {
  const size_t s = static_cast<size_t>(stride);
  return std::vector<float>(rows.end() - s, rows.end() - s + n);
}

// The row the edge samples from: the model's row itself, or with a repeat
// penalty (Settings::repeat) a penalized copy over the last tokens of the
// prompt, then the decided, then the drafted ids. The span it returns lives
// until the next call.
class Penalizer {
 public:
  Penalizer(const sampling::RepeatPenalty& rp, std::span<const int32_t> prompt) : rp_(rp), prompt_(prompt) {}
  std::span<const float> operator()(std::span<const float> row, std::span<const int32_t> decided,
                                    std::span<const int32_t> drafted = {}) {
    if (!rp_.active()) return row;
    const size_t total = prompt_.size() + decided.size() + drafted.size();
    size_t skip = rp_.last_n < 0 ? 0 : total - std::min(total, static_cast<size_t>(rp_.last_n));
    window_.clear();
    for (const std::span<const int32_t> part : {prompt_, decided, drafted}) {
      if (skip >= part.size()) {
        skip -= part.size();
        continue;
      }
      window_.insert(window_.end(), part.begin() + static_cast<std::ptrdiff_t>(skip), part.end());
      skip = 0;
    }
    row_.assign(row.begin(), row.end());
    sampling::apply_repeat_penalty(row_, window_, rp_);
    return row_;
  }

 private:
  sampling::RepeatPenalty rp_;
  std::span<const int32_t> prompt_;
  std::vector<int32_t> window_;
  std::vector<float> row_;
};

// Fallback after a cloud failure: SLM+ alone decodes the rest, exactly as
// `slm+` would from the personalized prompt + the tokens generated so far.
// True (and the run marked "cancelled") when the observer asks to stop.
bool stop_requested(const ProgressFn& progress, RunResult& r) {
  if (!progress || progress(r.tokens)) return false;
  r.stop_reason = "cancelled";
  return true;
}

void continue_locally(LogitSource& src, std::span<const int32_t> personalized, RunResult& r, const Settings& s,
                      sampling::Rng& rng, const EogFn& is_eog, const ProgressFn& progress) {
  Counters& c = r.counters;
  std::vector<EvalSpan>& spans = r.schedule.fallback;
  Stopwatch sw;
  std::vector<int32_t> all(personalized.begin(), personalized.end());
  all.insert(all.end(), r.tokens.begin(), r.tokens.end());
  // Reuse the cached prefix (it may also hold drafts of the lost block).
  const auto& cached = src.tokens();
  size_t keep = 0;
  while (keep < cached.size() && keep + 1 < all.size() && cached[keep] == all[keep]) ++keep;
  const bool prefill = src.size() == 0;
  src.truncate(keep);
  const int V = src.n_vocab();
  if (prefill) r.schedule.edge_prompt = static_cast<uint32_t>(all.size());
  else spans.push_back({static_cast<uint32_t>(keep), static_cast<uint32_t>(all.size() - keep)});
  std::vector<float> next = last_row(src.eval_last(std::span<const int32_t>(all).subspan(keep)), V, V);
  (prefill ? c.t_prefill_s : c.t_draft_s) += sw.seconds();
  if (!prefill) c.t_edge_forward_s += sw.seconds();
  r.stop_reason = "length";
  Penalizer penalize(s.repeat, personalized);
  const size_t max_new = static_cast<size_t>(s.max_new);
  while (r.tokens.size() < max_new) {
    if (stop_requested(progress, r)) break;
    const int32_t t = sampling::sample(penalize(next, r.tokens), s.sampler, rng);
    if (is_eog(t)) {
      r.stop_reason = "eog";
      break;
    }
    r.tokens.push_back(t);
    if (r.tokens.size() == max_new) break;
    Stopwatch step;
    const int32_t one[1] = {t};
    spans.push_back({static_cast<uint32_t>(src.size()), 1});
    next = last_row(src.eval_last(one), V, V);
    c.t_draft_s += step.seconds();
    c.t_edge_forward_s += step.seconds();
  }
}

// Whatever of the decode phase the named terms do not cover.
void finish_breakdown(Counters& c) {
  const double named = c.t_edge_forward_s + c.t_edge_sample_s + c.t_cloud_llm_s + c.t_cloud_slm_s +
                       c.t_cloud_steer_s + c.t_codec_s + c.t_transport_s;
  c.t_other_s = std::max(0.0, c.t_total_s - c.t_prefill_s - named);
}

}  // namespace

RunResult run_local(LogitSource& src, std::span<const int32_t> prompt, const Settings& s, const EogFn& is_eog,
                    const ProgressFn& progress) {
  validate(s);
  if (prompt.empty()) throw Error("generate: the prompt is empty");
  RunResult r;
  Counters& c = r.counters;
  Stopwatch total;
  sampling::Rng rng(s.seed, 1);
  const int V = src.n_vocab();
  std::vector<float> next = last_row(src.eval_last(prompt), V, V);
  c.t_prefill_s = total.seconds();
  c.edge_cached_tokens = src.reused_tokens();
  r.schedule.edge_prompt = static_cast<uint32_t>(prompt.size());
  r.stop_reason = "length";
  Penalizer penalize(s.repeat, prompt);
  while (r.tokens.size() < static_cast<size_t>(s.max_new)) {
    if (stop_requested(progress, r)) break;
    Stopwatch ss;
    const int32_t t = sampling::sample(penalize(next, r.tokens), s.sampler, rng);
    c.t_edge_sample_s += ss.seconds();
    if (is_eog(t)) {
      r.stop_reason = "eog";
      break;
    }
    r.tokens.push_back(t);
    if (r.tokens.size() == static_cast<size_t>(s.max_new)) break;
    Stopwatch sw;
    const int32_t one[1] = {t};
    Round step;
    step.edge.push_back({static_cast<uint32_t>(src.size()), 1});
    r.schedule.rounds.push_back(std::move(step));
    next = last_row(src.eval_last(one), V, V);
    c.t_draft_s += sw.seconds();
    c.t_edge_forward_s += sw.seconds();
  }
  c.n_generated = r.tokens.size();
  r.schedule.tokens = r.tokens.size();
  c.t_total_s = total.seconds();
  finish_breakdown(c);
  return r;
}

RunResult run_edge(LogitSource& src, std::span<const int32_t> personalized, Transport& cloud_link,
                   const SessionOpen& open, const EogFn& edge_is_eog, const RoundObserver& observer,
                   CloudFailurePolicy on_failure, const ProgressFn& progress) {
  // Every reply is checked against what was asked; a violation is a cloud failure.
  CheckedTransport transport(cloud_link, open);
  const Settings& s = open.settings;
  validate(s);
  if (!uses_cloud(s.method)) throw Error("edge: method '" + std::string(method_name(s.method)) + "' runs locally");
  if (personalized.empty()) throw Error("generate: the personalized prompt is empty");
  RunResult r;
  Counters& c = r.counters;
  Stopwatch total;
  sampling::Rng rng(s.seed, 1);
  const int stride = src.n_vocab();
  // Network transports count protobuf + framing bytes: report those.
  auto wire_counters = [&] {
    if (const auto w = transport.wire_bytes()) {
      c.bytes_up = w->up;
      c.bytes_down = w->down;
    }
  };

  // End of generation: the edge's own model's ids, and the cloud's models'
  // (SessionAccept.eog: an edge without the LLM learns them there).
  std::vector<int32_t> cloud_eog;
  const EogFn is_eog = [&](int32_t t) {
    return edge_is_eog(t) || std::binary_search(cloud_eog.begin(), cloud_eog.end(), t);
  };

  Schedule& sched = r.schedule;
  sched.method = std::string(method_name(s.method));
  sched.edge_prompt = static_cast<uint32_t>(personalized.size());
  double close_s = 0;  // the Close exchange (the rounds' exchanges are c.t_cloud_s)
  bool opened = false;    // SessionAccept received
  bool finished = false;  // all tokens decided; only the close remains
  try {
    DecodeLimits lim;
    CloudSession cloud(transport, open, lim, c, on_failure.retries);
    // The cloud prefills x while the edge prefills its personalized prompt: on
    // two machines the prefills overlap (in one process they take turns on the
    // shared pool). std::async's future waits for the open on every exit path.
    std::future<SessionAccept> opening = std::async(std::launch::async, [&] { return cloud.open(); });
    std::vector<float> prefill_row;
    std::exception_ptr prefill_error;  // raised once the session exists, so the Closer ends it
    try {
      prefill_row = last_row(src.eval_last(personalized), stride, stride);
    } catch (...) {
      prefill_error = std::current_exception();
    }
    const auto accept_msg = opening.get();
    opened = true;
    c.edge_cached_tokens = src.reused_tokens();
    c.cloud_cached_tokens = accept_msg.x_llm_cached;
    // The cloud tokenized x (sent as text, or checked the ids sent): its
    // passes start after x as each of its models reads it.
    sched.llm_prompt = accept_msg.x_llm_tokens;
    if (s.method != Method::Sd) sched.slm_prompt = accept_msg.x_slm_tokens;
    cloud_eog = accept_msg.eog;
    std::sort(cloud_eog.begin(), cloud_eog.end());
    // A Generalist of another vocabulary reads the text in its own tokens,
    // which the edge does not know: its passes are left out of the schedule.
    const bool byte_level = accept_msg.byte_level;
    sched.byte_level = byte_level;
    const int V = std::min<int>(stride, static_cast<int>(accept_msg.n_vocab));
    lim.n_vocab = static_cast<uint32_t>(V);

    // Closes the cloud session on every exit path (errors included).
    // (A lost session is not reopened to be closed.)
    struct Closer {
      Transport& t;
      const CloudSession& session;
      Counters& c;
      const DecodeLimits& lim;
      bool done = false;
      double* wait = nullptr;
      CloseAck close() {
        done = true;
        return call<CloseAck>(t, Close{session.id()}, lim, c, wait, &c.t_codec_s);
      }
      ~Closer() {
        if (!done) try {
            close();
          } catch (...) {
          }
      }
    } closer{transport, cloud, c, lim, false, &close_s};

    if (prefill_error) std::rethrow_exception(prefill_error);
    const size_t base = personalized.size();
    std::vector<float> next(prefill_row.begin(), prefill_row.begin() + V);
    c.t_prefill_s = total.seconds();

    std::vector<int32_t>& gen = r.tokens;
    Penalizer penalize(s.repeat, personalized);
    std::vector<int32_t> unevaluated;  // decided, not yet in the edge cache
    std::vector<int32_t> unsent;       // decided, not yet known to the cloud
    const size_t max_new = static_cast<size_t>(s.max_new);
    r.stop_reason = "length";
    // One edge forward pass, timed and recorded in the current round.
    auto edge_eval = [&](std::span<const int32_t> toks) {
      sched.rounds.back().edge.push_back({static_cast<uint32_t>(src.size()), static_cast<uint32_t>(toks.size())});
      Stopwatch sw;
      std::vector<float> row = last_row(src.eval_last(toks), stride, V);
      c.t_edge_forward_s += sw.seconds();
      return row;
    };
    // Generated tokens the cloud's caches hold after x (its rollback point).
    uint32_t cloud_generated = 0;
    auto cloud_pass = [&](Round& rd, size_t rows) {
      if (rows == 0) return;
      if (!byte_level) rd.llm.push_back({sched.llm_prompt + cloud_generated, static_cast<uint32_t>(rows)});
      if (sched.slm_prompt) rd.slm.push_back({sched.slm_prompt + cloud_generated, static_cast<uint32_t>(rows)});
    };
    auto feed = [&] {
      if (unevaluated.empty()) return;
      Stopwatch sw;
      next = edge_eval(unevaluated);
      unevaluated.clear();
      c.t_draft_s += sw.seconds();
    };
    // Appends a decided token; false when it ends the generation.
    auto commit = [&](int32_t t) {
      if (is_eog(t)) {
        r.stop_reason = "eog";
        return false;
      }
      gen.push_back(t);
      unevaluated = {t};
      unsent = {t};
      return gen.size() < max_new;
    };

    if (s.method == Method::LightCoSteer || s.method == Method::CoSteer) {
      while (gen.size() < max_new) {
        if (stop_requested(progress, r)) break;
        sched.rounds.emplace_back();
        Round& rd = sched.rounds.back();
        rd.recovery = true;
        const auto reply = cloud.exchange<StepReply>(StepRequest{0, unsent}, gen, cloud_generated, &c.t_cloud_s,
                                                     &c.t_codec_s);
        cloud_pass(rd, unsent.size());
        cloud_generated += static_cast<uint32_t>(unsent.size());
        unsent.clear();
        ++c.round_trips;
        feed();
        Stopwatch sw;
        sampling::Distribution d;
        if (s.method == Method::LightCoSteer) {
          d = recovery_distribution(reply.steer, penalize(next, gen), s.beta, s.sampler);
        } else {
          if (reply.llm_logprobs.size() != static_cast<size_t>(V))
            throw CloudProtocolError("protocol: costeer StepReply carries " +
                                     std::to_string(reply.llm_logprobs.size()) + " log-probabilities, expected " +
                                     std::to_string(V));
          const auto player = costeer_player(reply.llm_logprobs, reply.slm_logprobs, penalize(next, gen), s.costeer);
          std::vector<int32_t> ids(player.size());
          for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
          d = sampling::make_distribution(ids, player, s.sampler);
        }
        const int32_t t = s.sampler.greedy() ? d.ids[0] : sampling::sample(d, rng.uniform());
        c.t_recover_s += sw.seconds();
        c.t_edge_sample_s += sw.seconds();
        if (!commit(t)) break;
      }
    } else {
      const bool sd = s.method == Method::Sd;
      std::vector<std::vector<float>> rows;  // rows[i] predicted draft i
      while (gen.size() < max_new) {
        if (stop_requested(progress, r)) break;
        sched.rounds.emplace_back();
        feed();
        const size_t budget = max_new - gen.size();
        const size_t D = std::min(static_cast<size_t>(s.draft), budget);
        DraftBlock block;
        block.committed = unsent;
        rows.clear();
        Stopwatch sw;
        const double forward_before = c.t_edge_forward_s;
        for (size_t i = 0; i < D; ++i) {
          if (i > 0) {
            const int32_t prev[1] = {block.drafts.back()};
            rows.push_back(edge_eval(prev));
          } else {
            rows.push_back(next);
          }
          const auto q = sampling::make_distribution(penalize(rows.back(), gen, block.drafts), s.sampler);
          const int32_t d = s.sampler.greedy() ? q.ids[0] : sampling::sample(q, rng.uniform());
          block.drafts.push_back(d);
          // A drawn token has q > 0; keep it > 0 after rounding to f32.
        if (sd) block.draft_probs.push_back(std::max(static_cast<float>(q.prob(d)), std::numeric_limits<float>::min()));
          if (is_eog(d)) break;
        }
        c.t_draft_s += sw.seconds();
        c.t_edge_sample_s += sw.seconds() - (c.t_edge_forward_s - forward_before);
        const auto v = cloud.exchange<Verdict>(block, gen, cloud_generated, &c.t_cloud_s, &c.t_codec_s);
        unsent.clear();
        ++c.round_trips;
        const size_t n = block.drafts.size();
        if (v.n_accepted > n || (v.rejected && v.n_accepted == n) || (!v.rejected && v.n_accepted != n))
          throw CloudProtocolError("protocol: Verdict.n_accepted " + std::to_string(v.n_accepted) +
                                   " inconsistent with " + std::to_string(n) + " drafts");
        {
          Round& rd = sched.rounds.back();
          rd.drafted = static_cast<uint32_t>(n);
          rd.accepted = v.n_accepted;
          // The cloud sent a steering vector / residual: on rejection, or for a bonus token.
          rd.recovery = v.rejected;
          rd.bonus = !v.rejected && s.bonus;
          const size_t C = block.committed.size();
          cloud_pass(rd, C + n);
          // The cloud keeps committed + accepted drafts (all of them when none was rejected).
          cloud_generated += static_cast<uint32_t>(C + v.n_accepted);
        }
        c.n_drafted += n;
        c.n_accepted += v.n_accepted;
        bool eog = false;
        for (size_t i = 0; i < v.n_accepted; ++i) {
          if (is_eog(block.drafts[i])) {
            eog = true;
            break;
          }
          gen.push_back(block.drafts[i]);
        }
        if (eog) {
          r.stop_reason = "eog";
          break;
        }
        if (v.rejected) {
          ++c.rejections;
          // Cache holds prompt + agreed prefix + drafts[0..n-2]; keep the agreed prefix.
          src.truncate(base + gen.size());
          next = rows[v.n_accepted];
          if (observer) observer(src, next, v);
          Stopwatch rs;
          int32_t t;
          if (sd) {
            if (v.target.empty())
              throw CloudProtocolError("protocol: sd Verdict rejected without a target distribution");
            std::vector<double> p(static_cast<size_t>(V), 0.0);
            for (const auto& e : v.target) p[static_cast<size_t>(e.id)] += e.value;
            const auto q = sampling::make_distribution(penalize(next, gen), s.sampler).dense(V);
            sampling::Distribution res;
            try {
              res = sd_residual(p, q);
            } catch (const Error&) {
              res = sampling::from_weights(p);  // P == Q up to float rounding
            }
            t = s.sampler.greedy() ? sampling::argmax(std::span<const double>(p))
                                   : sampling::sample(res, rng.uniform());
          } else {
            const auto d = recovery_distribution(v.steer, penalize(next, gen), s.beta, s.sampler);
            t = s.sampler.greedy() ? d.ids[0] : sampling::sample(d, rng.uniform());
          }
          c.t_recover_s += rs.seconds();
          c.t_edge_sample_s += rs.seconds();
          if (!commit(t)) break;
        } else {
          unevaluated = {block.drafts.back()};
          if (gen.size() >= max_new) break;
          if (!s.bonus) {
            if (observer) {
              feed();
              observer(src, next, v);
            }
            continue;
          }
          feed();
          if (observer) observer(src, next, v);
          Stopwatch rs;
          int32_t t;
          if (sd) {
            if (v.target.empty()) throw CloudProtocolError("protocol: sd bonus Verdict without a target distribution");
            std::vector<double> p(static_cast<size_t>(V), 0.0);
            for (const auto& e : v.target) p[static_cast<size_t>(e.id)] += e.value;
            const auto d = sampling::from_weights(p);
            t = s.sampler.greedy() ? sampling::argmax(std::span<const double>(p)) : sampling::sample(d, rng.uniform());
          } else {
            const auto d = recovery_distribution(v.steer, penalize(next, gen), s.beta, s.sampler);
            t = s.sampler.greedy() ? d.ids[0] : sampling::sample(d, rng.uniform());
          }
          c.t_recover_s += rs.seconds();
          c.t_edge_sample_s += rs.seconds();
          ++c.bonus_tokens;
          if (!commit(t)) break;
        }
      }
    }
    finished = true;
    const CloseAck ack = closer.close();
    c.positions_llm = ack.positions_llm;
    c.positions_slm_minus = ack.positions_slm;
    c.attention_llm = ack.attention_llm;
    c.attention_slm_minus = ack.attention_slm;
    c.t_cloud_llm_s = static_cast<double>(ack.us_llm) * 1e-6;
    c.t_cloud_slm_s = static_cast<double>(ack.us_slm) * 1e-6;
    c.t_cloud_steer_s = static_cast<double>(ack.us_steer) * 1e-6;
  } catch (const TransportError& e) {
    // The cloud is gone: keep every token decided so far (they are agreed or
    // locally decided), drop the block in flight. A lost CloseAck after the
    // last token only loses the cloud's position counts.
    if (!finished) {
      r.cloud_failed_at = r.tokens.size();
      r.cloud_error = e.what();
      // By default a cloud that never opened the session is an error (a wrong
      // address or mismatched models should not pass for a cloud answer);
      // only an explicit Fallback turns it into a device-only generation.
      const bool at_open = !opened;
      r.cloud_failed_at_open = at_open;
      if (on_failure.then == CloudFailure::Fail || (on_failure.then == CloudFailure::FallbackAfterOpen && at_open))
        r.stop_reason = "cloud_error";
      else
        continue_locally(src, personalized, r, s, rng, is_eog, progress);
    }
  }
  wire_counters();
  c.positions_slm_plus = src.positions_evaluated();
  c.attention_slm_plus = src.attention_work();
  c.n_generated = r.tokens.size();
  sched.tokens = r.tokens.size();
  c.t_total_s = total.seconds();
  // The cloud's own clock splits the exchanges; what it did not compute was
  // spent on the wire, in queues or in its codec. Without a CloseAck (cloud
  // lost) the cloud terms are unknown and the whole wait counts as transport.
  c.t_transport_s =
      std::max(0.0, c.t_cloud_s + close_s - c.t_cloud_llm_s - c.t_cloud_slm_s - c.t_cloud_steer_s);
  finish_breakdown(c);
  return r;
}

}  // namespace specsteer::steer
