#pragma once
// What the edge's loops share within run_edge (internal to steer/): the
// exchange of one message, the cloud session with its resumption, the rows
// the edge samples from, the edge's position-keyed draws, and EdgeLoop, the
// state of one generation (decided tokens, what each side's cache holds).
// block_loop.cpp runs specsteer/sd on it, step_loop.cpp lightcosteer/costeer.
#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"
#include "common/timer.h"
#include "sampling/sampling.h"
#include "steer/edge.h"

namespace specsteer::steer {

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

  SessionAccept open();

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
  void reopen(std::span<const int32_t> agreed);

  Transport& t_;
  const SessionOpen& open_;
  DecodeLimits& lim_;
  Counters& c_;
  int retries_left_;
  SessionAccept accept_;
  bool lost_ = false;
};

// The row the edge samples from: the model's row itself, or with a repeat
// penalty (Settings::repeat) a penalized copy over the last tokens of the
// prompt, then the decided, then the drafted ids. The span it returns lives
// until the next call.
class Penalizer {
 public:
  Penalizer(const sampling::RepeatPenalty& rp, std::span<const int32_t> prompt) : rp_(rp), prompt_(prompt) {}
  std::span<const float> operator()(std::span<const float> row, std::span<const int32_t> decided,
                                    std::span<const int32_t> drafted = {});

 private:
  sampling::RepeatPenalty rp_;
  std::span<const int32_t> prompt_;
  std::vector<int32_t> window_;
  std::vector<float> row_;
};

// The edge's random draws, keyed like the cloud's accept draws by the
// token's position in the generation: drafting ahead, a block boundary
// placed elsewhere (adaptive K) or a resumed session changes no draw.
// Streams: 1 the local methods and the fallback, 2 the cloud's accept
// draws, 3 drafts, 4 recovery (distinct streams: independent draws).
class EdgeDraws {
 public:
  explicit EdgeDraws(uint64_t seed) : draft_(seed, 3), recover_(seed, 4) {}
  double draft(size_t pos) const { return draft_.uniform_at(pos); }    // a draft at `pos`
  double recover(size_t pos) const { return recover_.uniform_at(pos); }  // a recovery/bonus/steered token

 private:
  sampling::Rng draft_, recover_;
};

// The last n values of the last row of `rows` (rows of `stride` values).
inline std::vector<float> last_row(std::span<const float> rows, int stride, int n) {
  const size_t s = static_cast<size_t>(stride);
  return std::vector<float>(rows.end() - s, rows.end() - s + n);
}

// True (and the run marked "cancelled") when the progress callback asks to stop.
inline bool stop_requested(const ProgressFn& progress, RunResult& r) {
  if (!progress || progress(r.tokens)) return false;
  r.stop_reason = "cancelled";
  return true;
}

// One generation on the edge once the session is open: the decided tokens
// (r.tokens), the SLM+ cache and its next-token row, what the cloud holds.
struct EdgeLoop {
  LogitSource& src;
  CloudSession& cloud;
  const Settings& s;
  RunResult& r;
  const EogFn& is_eog;
  const RoundObserver& observer;
  const ProgressFn& progress;
  size_t base;      // the personalized prompt's length: where the generated part of the edge cache starts
  int stride;       // SLM+ row length
  int V;            // the id range both sides share
  bool byte_level;  // the LLM's passes are not the edge's to schedule (another vocabulary)
  Penalizer penalize;
  EdgeDraws draws;
  std::vector<float> next;           // SLM+ row after the evaluated cache (valid when `unevaluated` is empty)
  std::vector<int32_t> unevaluated;  // decided, not yet in the edge cache
  std::vector<int32_t> unsent;       // decided, not yet known to the cloud
  uint32_t cloud_generated = 0;      // generated tokens the cloud's caches hold after x (its rollback point)
  std::vector<EvalSpan>* passes = nullptr;  // where edge passes are recorded (this round's edge or edge_ahead)

  Counters& counters() { return r.counters; }
  std::vector<int32_t>& gen() { return r.tokens; }
  size_t max_new() const { return static_cast<size_t>(s.max_new); }

  // A new round in the schedule; the edge's passes are recorded in it.
  Round& begin_round() {
    r.schedule.rounds.emplace_back();
    passes = &r.schedule.rounds.back().edge;
    return r.schedule.rounds.back();
  }
  // One SLM+ forward pass appending `toks`: its last row (V values), timed
  // and recorded.
  std::vector<float> edge_eval(std::span<const int32_t> toks) {
    passes->push_back({static_cast<uint32_t>(src.size()), static_cast<uint32_t>(toks.size())});
    Stopwatch sw;
    std::vector<float> row = last_row(src.eval_last(toks), stride, V);
    counters().t_edge_forward_s += sw.seconds();
    return row;
  }
  // Evaluates the decided tokens not yet in the cache: `next` is current after it.
  void feed() {
    if (unevaluated.empty()) return;
    Stopwatch sw;
    next = edge_eval(unevaluated);
    unevaluated.clear();
    counters().t_draft_s += sw.seconds();
  }
  // Appends a decided token; false when it ends the generation.
  bool commit(int32_t t) {
    if (is_eog(t)) {
      r.stop_reason = "eog";
      return false;
    }
    gen().push_back(t);
    unevaluated = {t};
    unsent = {t};
    return gen().size() < max_new();
  }
  // The cloud's passes for `rows` new tokens after what it holds (schedule only).
  void cloud_passes(Round& rd, size_t rows) {
    if (rows == 0) return;
    const Schedule& sc = r.schedule;
    if (!byte_level) rd.llm.push_back({sc.llm_prompt + cloud_generated, static_cast<uint32_t>(rows)});
    if (sc.slm_prompt) rd.slm.push_back({sc.slm_prompt + cloud_generated, static_cast<uint32_t>(rows)});
  }
  // The test hook after a verdict: the agreed part of the edge cache and its row.
  void observe(const Verdict& v) {
    if (observer) observer(std::span<const int32_t>(src.tokens()).first(base + gen().size()), next, v);
  }
};

// specsteer and sd: draft K, verify, recover (block_loop.cpp).
void run_block_loop(EdgeLoop& e);
// lightcosteer and costeer: one exchange and one steered token per step (step_loop.cpp).
void run_step_loop(EdgeLoop& e);

}  // namespace specsteer::steer
