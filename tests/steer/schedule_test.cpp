// The per-round schedule a generation records (steer/schedule.h) against
// what the models really evaluated, and the decode-time breakdown, on the
// bundled MiniLaMP pair (always in the repository).
#include <gtest/gtest.h>

#include <string>

#include "steer/generate.h"

using namespace specsteer;
using namespace specsteer::steer;

namespace {

const Models& minilamp() {
  static Models m = Models::load(std::string(SPECSTEER_SOURCE_DIR) + "/models/minilamp/generalist.gguf",
                                 std::string(SPECSTEER_SOURCE_DIR) + "/models/minilamp/specialist.gguf",
                                 {.n_threads = 1});
  return m;
}

GenerateRequest request(Method m, double lambda, uint64_t seed) {
  GenerateRequest r;
  r.x = "Write a review of the product: a stainless kettle.";
  r.personalized = "Past review: the blender was loud and the price was poor.\n\n" + r.x;
  r.settings.method = m;
  r.settings.lambda = lambda;
  r.settings.max_new = 48;
  r.settings.seed = seed;
  return r;
}

void expect_schedule_matches(const GenerationResult& g, Method m) {
  const Schedule& s = g.schedule;
  const Counters& c = g.counters;
  EXPECT_EQ(s.method, std::string(method_name(m)));
  EXPECT_EQ(s.tokens, g.tokens.size());
  // Every position the models evaluated appears in the schedule, prompts included.
  EXPECT_EQ(s.positions_llm(), c.positions_llm);
  EXPECT_EQ(s.positions_slm(), c.positions_slm_minus);
  EXPECT_EQ(s.positions_edge(), c.positions_slm_plus);
  if (uses_cloud(m)) {
    EXPECT_EQ(s.exchanges(), c.round_trips);
    uint64_t drafted = 0, accepted = 0, recoveries = 0;
    for (const Round& r : s.rounds) {
      drafted += r.drafted;
      accepted += r.accepted;
      recoveries += r.recovery && r.drafted ? 1 : 0;
      EXPECT_LE(r.accepted, r.drafted);
    }
    EXPECT_EQ(drafted, c.n_drafted);
    EXPECT_EQ(accepted, c.n_accepted);
    // A rejection the edge never acted on (an accepted draft ended the text) is still cloud work.
    EXPECT_LE(c.rejections, recoveries);
    EXPECT_LE(recoveries, c.rejections + 1);
  }
  // The breakdown's terms cover the decode phase (other_s is the remainder,
  // never negative); the cloud's own clock is reported for cloud methods.
  const double named = c.t_edge_forward_s + c.t_edge_sample_s + c.t_cloud_llm_s + c.t_cloud_slm_s +
                       c.t_cloud_steer_s + c.t_codec_s + c.t_transport_s + c.t_other_s;
  EXPECT_GE(c.t_other_s, 0.0);
  EXPECT_GE(named, (c.t_total_s - c.t_prefill_s) * 0.999);
  if (m == Method::SpecSteer || m == Method::LightCoSteer) {
    EXPECT_GT(c.t_cloud_llm_s, 0.0);
    EXPECT_GT(c.t_cloud_slm_s, 0.0);
    EXPECT_GT(c.t_edge_forward_s, 0.0);
  }
  if (m == Method::Llm || m == Method::LlmPlus) {
    EXPECT_GT(c.t_cloud_llm_s, 0.0);
  }
}

}  // namespace

TEST(Schedule, CountsEveryPassOfEveryMethod) {
  for (Method m : {Method::Llm, Method::Slm, Method::SlmPlus, Method::LlmPlus, Method::Sd, Method::LightCoSteer,
                   Method::CoSteer, Method::SpecSteer})
    for (uint64_t seed : {1u, 2u}) {
      SCOPED_TRACE(std::string(method_name(m)) + " seed " + std::to_string(seed));
      expect_schedule_matches(generate(minilamp(), request(m, 0.5, seed)), m);
    }
}

TEST(Schedule, RejectionsRollBackThePasses) {
  // A high lambda rejects often: later passes start before the end of
  // earlier ones (KV rollback), and the counts still agree.
  const auto g = generate(minilamp(), request(Method::SpecSteer, 4.0, 3));
  expect_schedule_matches(g, Method::SpecSteer);
  ASSERT_GT(g.counters.rejections, 0u);
  bool rolled_back = false;
  uint32_t end = g.schedule.llm_prompt;
  for (const Round& r : g.schedule.rounds)
    for (const EvalSpan& s : r.llm) {
      rolled_back |= s.pos < end;
      EXPECT_LE(s.pos, end);  // never a pass past the cache's end
      end = s.pos + s.rows;
    }
  EXPECT_TRUE(rolled_back);
}

TEST(Schedule, SameSeedSameSchedule) {
  const auto a = generate(minilamp(), request(Method::SpecSteer, 0.5, 5));
  const auto b = generate(minilamp(), request(Method::SpecSteer, 0.5, 5));
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.schedule, b.schedule);
}
