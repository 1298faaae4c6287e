// Schedules as JSON (results.jsonl "trace") and their replay on models.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "eval/replay.h"
#include "eval/schedule_json.h"
#include "steer/generate.h"

using namespace specsteer;
using namespace specsteer::eval;
using nlohmann::json;

namespace {

std::string bundled(const char* name) { return std::string(SPECSTEER_SOURCE_DIR) + "/models/minilamp/" + name; }

const steer::Models& minilamp() {
  static steer::Models m =
      steer::Models::load(bundled("generalist.gguf"), bundled("specialist.gguf"), {.n_threads = 1});
  return m;
}

steer::GenerationResult run(steer::Method m, double lambda = 0.5) {
  steer::GenerateRequest r;
  r.x = "Write a review of the product: a cast iron pan.";
  r.personalized = "Past review: the lid did not fit and the price was poor.\n\n" + r.x;
  r.settings.method = m;
  r.settings.lambda = lambda;
  r.settings.max_new = 32;
  r.settings.seed = 11;
  return steer::generate(minilamp(), r);
}

}  // namespace

TEST(ScheduleJson, RoundTrips) {
  for (auto m : {steer::Method::SpecSteer, steer::Method::Sd, steer::Method::LightCoSteer, steer::Method::Llm}) {
    const auto g = run(m, 2.0);
    const json j = schedule_to_json(g.schedule);
    EXPECT_EQ(schedule_from_json(json::parse(j.dump()), "t"), g.schedule);
  }
}

TEST(ScheduleJson, MalformedIsRefusedWithTheField) {
  const json good = schedule_to_json(run(steer::Method::SpecSteer).schedule);
  auto expect_error = [&](json j, const std::string& needle) {
    try {
      schedule_from_json(j, "row 3 trace");
      ADD_FAILURE() << "accepted " << j.dump().substr(0, 200);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  json j = good;
  j.erase("tokens");
  expect_error(j, "'tokens'");
  j = good;
  j["rounds"][0]["llm"] = json::array({json::array({-1, 2})});
  expect_error(j, "rounds[0].llm[0] pos");
  j = good;
  j["rounds"][0]["edge"] = json::array({json::array({5, 0})});
  expect_error(j, "at least one row");
  j = good;
  j["rounds"][0]["k"] = 2;
  j["rounds"][0]["acc"] = 3;
  expect_error(j, "acc 3 > k 2");
  j = good;
  j["prompt"]["llm"] = 1ull << 40;
  expect_error(j, "prompt.llm");
  expect_error(json::array(), "JSON object");
}

TEST(Replay, RunsTheRecordedSchedule) {
  const auto g = run(steer::Method::SpecSteer, 1.0);
  ReplayModels m{minilamp().slm, minilamp().llm, minilamp().slm};
  ReplayParams p;
  const ReplayTimes t = replay_schedule(g.schedule, m, p);
  EXPECT_EQ(t.tokens, g.tokens.size());
  EXPECT_EQ(t.rounds, g.counters.round_trips);
  EXPECT_EQ(t.drafted, g.counters.n_drafted);
  EXPECT_EQ(t.accepted, g.counters.n_accepted);
  EXPECT_GT(t.edge_forward_s, 0.0);
  EXPECT_GT(t.cloud_llm_s, 0.0);
  EXPECT_GT(t.cloud_slm_s, 0.0);

  // One role at a time needs only that role's models.
  p.role = ReplayRole::Edge;
  const ReplayTimes e = replay_schedule(g.schedule, {minilamp().slm, nullptr, nullptr}, p);
  EXPECT_GT(e.edge_s(), 0.0);
  EXPECT_EQ(e.cloud_s(), 0.0);
  p.role = ReplayRole::Cloud;
  EXPECT_THROW(replay_schedule(g.schedule, {minilamp().slm, nullptr, nullptr}, p), Error);

  const auto alone = time_llm_alone(minilamp().llm, g.schedule.llm_prompt, g.tokens.size(), p);
  ASSERT_EQ(alone.size(), g.tokens.size() + 1);
  for (size_t i = 1; i < alone.size(); ++i) EXPECT_GE(alone[i], alone[i - 1]);
}

TEST(Replay, InconsistentScheduleIsAnError) {
  steer::Schedule s = run(steer::Method::SpecSteer).schedule;
  ASSERT_FALSE(s.rounds.empty());
  s.rounds[0].llm[0].pos += 5;  // a pass beyond the end of the cache
  try {
    replay_schedule(s, {minilamp().slm, minilamp().llm, minilamp().slm}, {});
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("inconsistent schedule"), std::string::npos) << e.what();
  }
  s = run(steer::Method::Llm).schedule;
  EXPECT_THROW(replay_schedule(s, {minilamp().slm, minilamp().llm, minilamp().slm}, {}), Error);
}

TEST(Replay, ReadsTracesAndFormsOneRowPerMethodAndRtt) {
  const auto dir = std::filesystem::temp_directory_path() / ("replay-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = (dir / "results.jsonl").string();
  {
    std::ofstream out(path);
    int rec = 0;
    for (double lambda : {0.5, 1.0}) {
      for (auto m : {steer::Method::SpecSteer, steer::Method::Sd, steer::Method::Llm}) {
        const auto g = run(m, lambda);
        json row = {{"record", "r" + std::to_string(rec)},
                    {"method", std::string(steer::method_name(m))},
                    {"lambda", m == steer::Method::SpecSteer ? json(lambda) : json(nullptr)},
                    {"trace", schedule_to_json(g.schedule)}};
        out << row.dump() << "\n";
      }
      ++rec;
    }
    out << "{\"record\": \"old row without a trace\"}\n";
  }
  const auto all = read_traces(path, {}, {}, 0);
  EXPECT_EQ(all.size(), 4u);  // llm rows and rows without traces are skipped
  const auto only = read_traces(path, {"specsteer"}, {1.0}, 0);
  ASSERT_EQ(only.size(), 1u);
  EXPECT_EQ(only[0].label, "specsteer lambda=1");
  EXPECT_EQ(read_traces(path, {}, {}, 1).size(), 2u);  // --limit counts records
  EXPECT_THROW(read_traces(path, {"costeer"}, {}, 0), Error);

  ReplayModels m{minilamp().slm, minilamp().llm, minilamp().slm};
  const auto rows = replay_traces(all, m, {}, {0, 50});
  ASSERT_EQ(rows.size(), 3u * 2u);  // specsteer 0.5, sd, specsteer 1 at two rtts
  for (const auto& r : rows) {
    EXPECT_GT(r.t_total_s, 0.0);
    EXPECT_GT(r.t_llm_alone_s, 0.0);
    EXPECT_GT(r.speedup(), 0.0);
    if (r.rtt_ms == 50) {
      // open + one exchange per round, against the LLM alone's one request
      EXPECT_NEAR(r.t_network_s, 0.05 * static_cast<double>(r.records + r.t.exchanges), 1e-9);
    }
  }
  EXPECT_THROW(replay_traces(all, m, {}, {-1}), Error);
  std::filesystem::remove_all(dir);
}

TEST(Replay, CrossTokenizerRunsAreMarkedAndRefused) {
  // The bundled Specialist with its own BPE: the Generalist's passes follow
  // its own tokenization, which the schedule cannot hold.
  static const steer::Models cross =
      steer::Models::load(bundled("generalist.gguf"), bundled("specialist-x896.gguf"), {.n_threads = 1});
  ASSERT_TRUE(cross.byte_level);
  steer::GenerateRequest r;
  r.x = "Write a review of the product: a cast iron pan.";
  r.personalized = "Past review: the lid did not fit and the price was poor.\n\n" + r.x;
  r.settings.max_new = 24;
  const auto g = steer::generate(cross, r);
  EXPECT_TRUE(g.schedule.byte_level);
  for (const auto& round : g.schedule.rounds) EXPECT_TRUE(round.llm.empty());
  EXPECT_GT(g.counters.positions_llm, 0u);  // the cloud's own count still has them
  const json j = schedule_to_json(g.schedule);
  EXPECT_EQ(j["byte_level"], true);
  EXPECT_EQ(schedule_from_json(json::parse(j.dump()), "t"), g.schedule);
  const auto dir = std::filesystem::temp_directory_path() / ("replay-cross-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = (dir / "results.jsonl").string();
  std::ofstream(path) << json({{"record", "r"}, {"method", "specsteer"}, {"trace", j}}).dump() << "\n";
  try {
    read_traces(path, {}, {}, 0);
    ADD_FAILURE() << "a cross-tokenizer schedule was replayed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cross-tokenizer"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}
