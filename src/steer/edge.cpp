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
#include "steer/edge_session.h"
#include "steer/reply_check.h"

namespace specsteer::steer {

SessionAccept CloudSession::open() {
  for (int attempt = 0;; ++attempt) {
    try {
      accept_ = call<SessionAccept>(t_, open_, lim_, c_, nullptr);
      return accept_;
    } catch (const TransportError& e) {
      retry_or_throw(e, attempt);
    }
  }
}

void CloudSession::reopen(std::span<const int32_t> agreed) {
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

std::span<const float> Penalizer::operator()(std::span<const float> row, std::span<const int32_t> decided,
                                             std::span<const int32_t> drafted) {
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

namespace {
// Fallback after a cloud failure: SLM+ alone decodes the rest, exactly as
// `slm+` would from the personalized prompt + the tokens generated so far.
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
    std::vector<float> next(prefill_row.begin(), prefill_row.begin() + V);
    c.t_prefill_s = total.seconds();

    EdgeLoop loop{src, cloud, s, r, is_eog, observer, progress, personalized.size(), stride, V, byte_level,
                  Penalizer(s.repeat, personalized), EdgeDraws(s.seed), std::move(next), {}, {}, 0, nullptr};
    r.stop_reason = "length";
    if (s.method == Method::LightCoSteer || s.method == Method::CoSteer)
      run_step_loop(loop);
    else
      run_block_loop(loop);
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
