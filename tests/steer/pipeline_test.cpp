// Pipelined drafting and adaptive draft length are scheduling changes: the
// tokens stay those of the plain block loop (draws keyed by position), only
// the passes and exchanges move.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "steer/cloud.h"
#include "common/error.h"
#include "steer/edge.h"
#include "synth.h"

using namespace specsteer;
using namespace specsteer::steer;

namespace {

constexpr int V = synth::Pair::V;

RunResult run(const synth::Pair& w, const Settings& s) {
  auto c = w.cloud();
  InProcessTransport t(*c);
  auto edge = synth::source(V, w.slm);
  return run_edge(*edge, w.personalized, t, w.open(s), [](int32_t) { return false; });
}

Settings base(Method m, bool bonus, int sampling) {
  Settings s;
  s.method = m;
  s.max_new = 48;
  s.seed = 5;
  s.lambda = 0.5;
  s.bonus = bonus;
  if (sampling >= 1) s.sampler.temperature = 0.9;
  if (sampling == 2) {
    s.sampler.top_p = 0.9;
    s.repeat = {.penalty = 1.3, .last_n = 16};
  }
  return s;
}

std::string name(const Settings& s) {
  return std::string(method_name(s.method)) + (s.bonus ? " bonus" : "") + " temp=" +
         std::to_string(s.sampler.temperature) + " top_p=" + std::to_string(s.sampler.top_p) +
         " p_min=" + std::to_string(s.draft_p_min) + " K=" + std::to_string(s.draft);
}

uint64_t ahead_passes(const Schedule& sc) {
  uint64_t n = 0;
  for (const Round& r : sc.rounds) n += r.edge_ahead.size();
  return n;
}

}  // namespace

TEST(Pipeline, DraftingAheadChangesNoTokenAndIsCounted) {
  synth::Pair w;
  uint64_t sent_early = 0, dropped = 0;
  for (Method m : {Method::SpecSteer, Method::Sd})
    for (bool bonus : {false, true})
      for (int sampling : {0, 1, 2})
        for (double p_min : {0.0, 0.5}) {
          Settings s = base(m, bonus, sampling);
          s.draft_p_min = p_min;
          if (p_min > 0) s.draft = 8;
          SCOPED_TRACE(name(s));
          s.pipeline = false;
          const RunResult plain = run(w, s);
          s.pipeline = true;
          const RunResult piped = run(w, s);
          ASSERT_GT(plain.tokens.size(), 10u);
          EXPECT_EQ(piped.tokens, plain.tokens);
          EXPECT_EQ(piped.counters.n_drafted, plain.counters.n_drafted);
          EXPECT_EQ(piped.counters.n_accepted, plain.counters.n_accepted);
          EXPECT_EQ(piped.counters.round_trips, plain.counters.round_trips);
          // Off: nothing drafted ahead. On: every exchange but those that end
          // the generation leaves a block ahead, sent or dropped.
          EXPECT_EQ(plain.counters.blocks_sent_early + plain.counters.blocks_dropped, 0u);
          EXPECT_EQ(ahead_passes(plain.schedule), 0u);
          const auto& c = piped.counters;
          EXPECT_GT(c.blocks_sent_early + c.blocks_dropped, 0u);
          EXPECT_LE(c.blocks_sent_early + c.blocks_dropped, c.round_trips);
          if (bonus) {
            EXPECT_LE(c.blocks_sent_early, c.bonus_tokens) << "kept only where the bonus was guessed";
          } else {
            EXPECT_LE(c.blocks_dropped, c.rejections) << "dropped only on a rejection";
            EXPECT_LE(c.blocks_sent_early, c.round_trips - c.rejections);
          }
          // The schedule holds every pass the edge ran, ahead ones included.
          EXPECT_EQ(piped.schedule.positions_edge(), c.positions_slm_plus);
          EXPECT_GT(ahead_passes(piped.schedule), 0u);
          sent_early += c.blocks_sent_early;
          dropped += c.blocks_dropped;
        }
  EXPECT_GT(sent_early, 0u);
  EXPECT_GT(dropped, 0u);
}

TEST(Pipeline, ABlockBoundaryChangesNoTokenWithoutABonus) {
  // The accept draws (cloud) and the draft and recovery draws (edge) are
  // keyed by position, so without a bonus token every way of cutting the
  // generation into blocks decides the same tokens.
  synth::Pair w;
  for (Method m : {Method::SpecSteer, Method::Sd})
    for (int sampling : {0, 1, 2}) {
      Settings s = base(m, false, sampling);
      SCOPED_TRACE(name(s));
      const RunResult k4 = run(w, s);
      s.draft = 2;
      EXPECT_EQ(run(w, s).tokens, k4.tokens);
      s.draft = 7;
      EXPECT_EQ(run(w, s).tokens, k4.tokens);
      s.draft = 16;
      s.draft_p_min = 0.4;
      const RunResult adaptive = run(w, s);
      EXPECT_EQ(adaptive.tokens, k4.tokens);
      EXPECT_NE(adaptive.counters.round_trips, k4.counters.round_trips);
    }
}

TEST(Pipeline, AdaptiveBlocksEndWhereTheDrafterIsUnsure) {
  synth::Pair w;
  Settings s = base(Method::SpecSteer, false, 0);
  s.max_new = 64;
  s.draft = 12;
  s.draft_min = 2;
  s.draft_p_min = 0.45;
  const RunResult r = run(w, s);
  size_t short_blocks = 0;
  const auto& rounds = r.schedule.rounds;
  ASSERT_GT(rounds.size(), 2u);
  for (size_t i = 0; i + 1 < rounds.size(); ++i) {  // the last block may be cut by the budget
    EXPECT_LE(rounds[i].drafted, 12u);
    EXPECT_GE(rounds[i].drafted, 2u) << "at least --draft-min drafts";
    if (rounds[i].drafted < 12) ++short_blocks;
  }
  EXPECT_GT(short_blocks, 0u);
  // A threshold of 0 drafts K every time; 1 stops each block at draft_min.
  s.draft_p_min = 1.0;
  const RunResult min_only = run(w, s);
  for (size_t i = 0; i + 1 < min_only.schedule.rounds.size(); ++i)
    EXPECT_EQ(min_only.schedule.rounds[i].drafted, 2u);
  EXPECT_EQ(min_only.tokens, r.tokens);
}

TEST(Pipeline, DraftLengthSettingsAreValidated) {
  Settings s;
  s.draft_min = 5;  // > draft (4)
  EXPECT_THROW(validate(s), Error);
  s.draft_min = -1;
  EXPECT_THROW(validate(s), Error);
  s.draft_min = 1;
  s.draft_p_min = 1.5;
  EXPECT_THROW(validate(s), Error);
  s.draft_p_min = std::nan("");
  EXPECT_THROW(validate(s), Error);
  s.draft_p_min = 0.8;
  EXPECT_NO_THROW(validate(s));
}
