// specsteer and sd as Algorithm 1's three steps per block:
//   draft   SLM+ drafts up to K tokens on the personalized prompt (edge);
//   verify  the cloud scores them in one pass per model and accepts by Eq. 7
//           (sd: min(1, p/q)) up to the first rejection (cloud, one exchange);
//   recover the edge samples the rejected position's token from the steering
//           vector + beta*h_SLM+ (Eq. 8; sd: the residual), or the bonus
//           token after a block accepted whole.
// Pipelined (Settings::pipeline), the edge drafts block n+1 while the cloud
// verifies block n, assuming block n is accepted whole; the verdict keeps it
// (sent at once) or drops it (the cache rolls back). The draws are keyed by
// position (EdgeDraws), so the tokens are the same either way.
#include <algorithm>
#include <cmath>
#include <future>
#include <limits>
#include <optional>
#include <string>

#include "steer/edge_session.h"
#include "steer/formulas.h"

namespace specsteer::steer {

namespace {

// A block in the making: the tokens decided since the last exchange (sent as
// `committed`), the drafts, and the SLM+ row each draft was drawn from.
struct Draft {
  DraftBlock block;
  // rows[i] predicted drafts[i]; one more (rows[drafts.size()]) once the
  // last draft has been evaluated: the next row if the block is accepted whole.
  std::vector<std::vector<float>> rows;
  size_t start = 0;  // the generation position of drafts[0]
  size_t limit = 0;  // K within the token budget
  bool done = false;
};

// Softmax probability of the most likely id (temperature 1): how sure SLM+ is.
double top_probability(std::span<const float> row) {
  const float mx = *std::max_element(row.begin(), row.end());
  double sum = 0;
  for (float v : row) sum += std::exp(static_cast<double>(v) - mx);
  return 1.0 / sum;
}

class BlockLoop {
 public:
  explicit BlockLoop(EdgeLoop& e) : e_(e), s_(e.s), c_(e.counters()), sd_(e.s.method == Method::Sd) {}

  void run() {
    std::optional<Draft> ahead;  // the next block, drafted while the cloud verified this one
    while (e_.gen().size() < e_.max_new()) {
      if (stop_requested(e_.progress, e_.r)) break;
      Round& rd = e_.begin_round();
      Draft cur = ahead ? std::move(*ahead) : start_block();
      ahead.reset();
      draft(cur, e_.gen());
      const Verdict v = verify(cur, rd, ahead);
      if (!settle(cur, v, ahead)) break;
    }
  }

 private:
  // A new block from the decided tokens: the first draft comes from `next`.
  Draft start_block() {
    e_.feed();
    Draft d;
    d.block.committed = e_.unsent;
    d.rows.push_back(e_.next);
    d.start = e_.gen().size();
    d.limit = std::min(static_cast<size_t>(s_.draft), e_.max_new() - d.start);
    return d;
  }

  // Step 1: SLM+ drafts until the block is done. `before` is the generation
  // the block follows (the decided tokens, or those assumed when drafting ahead).
  void draft(Draft& d, std::span<const int32_t> before) {
    Stopwatch sw;
    const double forward_before = c_.t_edge_forward_s;
    while (draft_one(d, before)) {
    }
    c_.t_draft_s += sw.seconds();
    c_.t_edge_sample_s += sw.seconds() - (c_.t_edge_forward_s - forward_before);
  }

  // One draft; false once the block is done: K (or the budget) reached, an
  // end-of-generation draft, or (adaptive) SLM+ unsure of the next one.
  bool draft_one(Draft& d, std::span<const int32_t> before) {
    const size_t i = d.block.drafts.size();
    if (d.done || i >= d.limit) return d.done = true, false;
    if (i > 0 && d.rows.size() == i) {
      const int32_t prev[1] = {d.block.drafts.back()};
      d.rows.push_back(e_.edge_eval(prev));
    }
    const std::span<const float> row = e_.penalize(d.rows[i], before, d.block.drafts);
    const size_t at_least = static_cast<size_t>(std::max(1, s_.draft_min));
    if (s_.draft_p_min > 0 && i >= at_least && top_probability(row) < s_.draft_p_min) return d.done = true, false;
    const auto q = sampling::make_distribution(row, s_.sampler);
    const int32_t y = s_.sampler.greedy() ? q.ids[0] : sampling::sample(q, e_.draws.draft(d.start + i));
    d.block.drafts.push_back(y);
    // A drawn token has q > 0; keep it > 0 after rounding to f32.
    if (sd_) d.block.draft_probs.push_back(std::max(static_cast<float>(q.prob(y)), std::numeric_limits<float>::min()));
    if (e_.is_eog(y)) d.done = true;
    return !d.done;
  }

  // The row after the block's last draft (evaluated once).
  const std::vector<float>& row_after(Draft& d) {
    if (d.rows.size() == d.block.drafts.size()) {
      const int32_t last[1] = {d.block.drafts.back()};
      d.rows.push_back(e_.edge_eval(last));
    }
    return d.rows.back();
  }

  // Step 2: the cloud verifies the block. Pipelined, the edge meanwhile
  // drafts the next block into `ahead` (the exchange runs on another thread;
  // it reads `cur` and the decided tokens, which stay as they are until it ends).
  Verdict verify(Draft& cur, Round& rd, std::optional<Draft>& ahead) {
    auto exchange = [&] {
      return e_.cloud.exchange<Verdict>(cur.block, e_.gen(), e_.cloud_generated, &c_.t_cloud_s, &c_.t_codec_s);
    };
    Verdict v;
    if (!s_.pipeline) {
      v = exchange();
    } else {
      std::future<Verdict> verdict = std::async(std::launch::async, exchange);
      Stopwatch sw;
      e_.passes = &rd.edge_ahead;
      // (Only the edge's fields: the exchange's thread writes the cloud's.)
      const double forward = c_.t_edge_forward_s, sample = c_.t_edge_sample_s, drafting = c_.t_draft_s;
      try {
        ahead = draft_ahead(cur);
      } catch (...) {
        verdict.wait();  // the exchange reads `cur`: let it end first
        throw;
      }
      e_.passes = &rd.edge;
      // Hidden behind the exchange: not part of the decode breakdown's terms.
      c_.t_edge_forward_s = forward;
      c_.t_edge_sample_s = sample;
      c_.t_draft_s = drafting;
      c_.t_ahead_s += sw.seconds();
      v = verdict.get();
    }
    e_.unsent.clear();
    ++c_.round_trips;
    const size_t n = cur.block.drafts.size();
    if (v.n_accepted > n || (v.rejected && v.n_accepted == n) || (!v.rejected && v.n_accepted != n))
      throw CloudProtocolError("protocol: Verdict.n_accepted " + std::to_string(v.n_accepted) +
                               " inconsistent with " + std::to_string(n) + " drafts");
    rd.drafted = static_cast<uint32_t>(n);
    rd.accepted = v.n_accepted;
    // The cloud sent a steering vector / residual: on rejection, or for a bonus token.
    rd.recovery = v.rejected;
    rd.bonus = !v.rejected && s_.bonus;
    const size_t C = cur.block.committed.size();
    e_.cloud_passes(rd, C + n);
    // The cloud keeps committed + accepted drafts (all of them when none was rejected).
    e_.cloud_generated += static_cast<uint32_t>(C + v.n_accepted);
    c_.n_drafted += n;
    c_.n_accepted += v.n_accepted;
    return v;
  }

  // The next block as it will be if `cur` is accepted whole: after its
  // drafts (and the bonus token, guessed as the draw SLM+ alone would make
  // with the bonus's own uniform). Nothing when that would end the generation.
  std::optional<Draft> draft_ahead(Draft& cur) {
    const auto& drafts = cur.block.drafts;
    if (drafts.empty() || e_.is_eog(drafts.back())) return std::nullopt;
    const size_t after = cur.start + drafts.size() + (s_.bonus ? 1 : 0);
    if (after >= e_.max_new()) return std::nullopt;
    std::vector<int32_t> assumed(e_.gen());
    assumed.insert(assumed.end(), drafts.begin(), drafts.end());
    Draft a;
    a.rows.push_back(row_after(cur));
    if (s_.bonus) {
      const auto q = sampling::make_distribution(e_.penalize(a.rows[0], assumed), s_.sampler);
      const int32_t guess = s_.sampler.greedy() ? q.ids[0] : sampling::sample(q, e_.draws.recover(after - 1));
      if (e_.is_eog(guess)) return std::nullopt;
      a.block.committed = {guess};
      assumed.push_back(guess);
      a.rows[0] = e_.edge_eval(a.block.committed);
    }
    a.start = after;
    a.limit = std::min(static_cast<size_t>(s_.draft), e_.max_new() - after);
    draft(a, assumed);
    return a;
  }

  // Step 3 and the bookkeeping after a verdict: the accepted drafts are
  // decided; on rejection the edge rolls back and recovers the position's
  // token; after a block accepted whole, the bonus token (if asked) and the
  // block drafted ahead goes on or is dropped. False when the generation ends.
  bool settle(Draft& cur, const Verdict& v, std::optional<Draft>& ahead) {
    auto& gen = e_.gen();
    for (size_t i = 0; i < v.n_accepted; ++i) {
      if (e_.is_eog(cur.block.drafts[i])) {
        e_.r.stop_reason = "eog";
        return false;
      }
      gen.push_back(cur.block.drafts[i]);
    }
    if (v.rejected) {
      ++c_.rejections;
      drop(ahead);
      // The cache holds prompt + agreed prefix + drafts (+ drafts ahead): keep the agreed prefix.
      e_.src.truncate(e_.base + gen.size());
      e_.next = cur.rows[v.n_accepted];
      e_.unevaluated.clear();
      e_.observe(v);
      return e_.commit(timed_recover(v, /*bonus=*/false));
    }
    if (gen.size() >= e_.max_new()) return false;
    if (cur.rows.size() > cur.block.drafts.size()) {
      e_.next = cur.rows.back();  // evaluated ahead
      e_.unevaluated.clear();
    } else {
      e_.unevaluated = {cur.block.drafts.back()};
    }
    if (!s_.bonus) {
      if (e_.observer) {
        e_.feed();
        e_.observe(v);
      }
      if (ahead) ++c_.blocks_sent_early;
      return true;
    }
    e_.feed();
    e_.observe(v);
    const int32_t t = timed_recover(v, /*bonus=*/true);
    ++c_.bonus_tokens;
    if (ahead && ahead->block.committed.front() == t) {
      // The guess was right: the bonus token is already in the cache.
      ++c_.blocks_sent_early;
      gen.push_back(t);
      e_.unsent = {t};
      e_.unevaluated.clear();
      return gen.size() < e_.max_new();
    }
    if (ahead) {
      drop(ahead);
      e_.src.truncate(e_.base + gen.size());
    }
    return e_.commit(t);
  }

  void drop(std::optional<Draft>& ahead) {
    if (!ahead) return;
    ++c_.blocks_dropped;
    ahead.reset();
  }

  int32_t timed_recover(const Verdict& v, bool bonus) {
    Stopwatch sw;
    const int32_t t = recover(v, bonus);
    c_.t_recover_s += sw.seconds();
    c_.t_edge_sample_s += sw.seconds();
    return t;
  }

  // The recovery token at the position after the agreed prefix: Eq. 8 from
  // the steering vector and beta*h_SLM+ (specsteer), or the residual
  // norm(max(0, P - Q)) on rejection / P itself for a bonus (sd).
  int32_t recover(const Verdict& v, bool bonus) {
    const auto& gen = e_.gen();
    const double u = e_.draws.recover(gen.size());
    if (!sd_) {
      const auto d = recovery_distribution(v.steer, e_.penalize(e_.next, gen), s_.beta, s_.sampler);
      return s_.sampler.greedy() ? d.ids[0] : sampling::sample(d, u);
    }
    if (v.target.empty())
      throw CloudProtocolError(std::string("protocol: sd ") + (bonus ? "bonus Verdict" : "Verdict rejected") +
                               " without a target distribution");
    std::vector<double> p(static_cast<size_t>(e_.V), 0.0);
    for (const auto& t : v.target) p[static_cast<size_t>(t.id)] += t.value;
    if (s_.sampler.greedy()) return sampling::argmax(std::span<const double>(p));
    if (bonus) return sampling::sample(sampling::from_weights(p), u);
    const auto q = sampling::make_distribution(e_.penalize(e_.next, gen), s_.sampler).dense(e_.V);
    sampling::Distribution res;
    try {
      res = sd_residual(p, q);
    } catch (const Error&) {
      res = sampling::from_weights(p);  // P == Q up to float rounding
    }
    return sampling::sample(res, u);
  }

  EdgeLoop& e_;
  const Settings& s_;
  Counters& c_;
  const bool sd_;
};

}  // namespace

void run_block_loop(EdgeLoop& e) { BlockLoop(e).run(); }

}  // namespace specsteer::steer
