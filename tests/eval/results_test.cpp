#include "eval/results.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "common/error.h"

using namespace specsteer;
using namespace specsteer::eval;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("specsteer_eval_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

ResultRow sample(const std::string& rec, const std::string& method, std::optional<double> lambda) {
  ResultRow r;
  r.record_id = rec;
  r.user_id = "u1";
  r.method = method;
  r.lambda = lambda;
  r.setting = lambda ? "lambda=" + std::to_string(*lambda) : "";
  r.beta = 1.0;
  r.draft_k = 4;
  r.prediction = "the cat sat";
  r.reference = "the cat sat on the mat";
  r.tokens = {1, 2, 3};
  r.rouge = rouge(r.reference, r.prediction);
  r.c.n_generated = 3;
  r.c.n_drafted = 4;
  r.c.n_accepted = 3;
  r.c.round_trips = 1;
  r.c.bytes_up = 20;
  r.c.bytes_down = 40;
  r.c.seconds = 0.5;
  r.c.slm_positions = 10;
  r.c.llm_positions = 6;
  r.c.slm_flops = 1000;
  r.c.llm_flops = 5000;
  return r;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST(Results, RowRoundTripsThroughJson) {
  ResultRow r = sample("r1", "specsteer", 0.5);
  ResultRow back = row_from_json(to_json(r), "test");
  EXPECT_EQ(back.record_id, "r1");
  EXPECT_EQ(back.method, "specsteer");
  EXPECT_EQ(back.setting, r.setting);
  ASSERT_TRUE(back.lambda.has_value());
  EXPECT_DOUBLE_EQ(*back.lambda, 0.5);
  EXPECT_EQ(back.tokens, r.tokens);
  EXPECT_DOUBLE_EQ(back.rouge.rougeL.fmeasure, r.rouge.rougeL.fmeasure);
  EXPECT_EQ(back.c.bytes_down, 40u);
  EXPECT_EQ(back.c.llm_flops, 5000u);
  auto j = to_json(r);
  EXPECT_DOUBLE_EQ(j["counters"]["acceptance_rate"].get<double>(), 0.75);
  EXPECT_EQ(j["flops"]["total"].get<uint64_t>(), 6000u);
  EXPECT_FALSE(row_from_json(to_json(sample("r", "llm", std::nullopt)), "t").lambda.has_value());
}

TEST(Results, MissingFieldNamesItAndWhere) {
  auto j = to_json(sample("r1", "llm", std::nullopt));
  j["counters"].erase("bytes_up");
  try {
    row_from_json(j, "results.jsonl:7");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("results.jsonl:7"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("bytes_up"), std::string::npos);
  }
}

TEST(Results, ResumeSkipsFinishedRowsAndDropsTornLine) {
  fs::path d = temp_dir("resume");
  fs::path f = d / "results.jsonl";
  {
    ResultsLog log(f.string());
    EXPECT_TRUE(log.rows().empty());
    log.append(sample("r1", "llm", std::nullopt));
    log.append(sample("r1", "specsteer", 0.5));
    EXPECT_TRUE(log.done({"r1", "llm", ""}));
  }
  std::string whole = slurp(f);
  // Simulate Ctrl-C in the middle of the third write.
  std::string third = to_json(sample("r2", "llm", std::nullopt)).dump() + "\n";
  {
    std::ofstream out(f, std::ios::app | std::ios::binary);
    out << third.substr(0, third.size() / 2);
  }
  {
    ResultsLog log(f.string());
    EXPECT_EQ(log.rows().size(), 2u);
    EXPECT_EQ(log.dropped_torn_bytes(), third.size() / 2);
    EXPECT_EQ(slurp(f), whole);  // file truncated back to whole lines
    EXPECT_TRUE(log.done({"r1", "specsteer", sample("r1", "specsteer", 0.5).setting}));
    EXPECT_FALSE(log.done({"r2", "llm", ""}));
    log.append(sample("r2", "llm", std::nullopt));
  }
  ResultsLog again(f.string());
  EXPECT_EQ(again.rows().size(), 3u);
  EXPECT_EQ(again.dropped_torn_bytes(), 0u);
  fs::remove_all(d);
}

TEST(Results, CorruptMiddleLineIsAnErrorWithLineNumber) {
  fs::path d = temp_dir("corrupt");
  fs::path f = d / "results.jsonl";
  {
    std::ofstream out(f);
    out << to_json(sample("r1", "llm", std::nullopt)).dump() << "\n{not json\n"
        << to_json(sample("r2", "llm", std::nullopt)).dump() << "\n";
  }
  try {
    ResultsLog log(f.string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("results.jsonl:2"), std::string::npos) << e.what();
  }
  fs::remove_all(d);
}

TEST(Results, InvalidUtf8PredictionStillWritesAValidLine) {
  fs::path d = temp_dir("utf8");
  fs::path f = d / "results.jsonl";
  ResultRow r = sample("r1", "slm", std::nullopt);
  r.prediction = "abc\xE2\x82";  // generation stopped inside a character
  {
    ResultsLog log(f.string());
    log.append(r);
  }
  ResultsLog log(f.string());
  ASSERT_EQ(log.rows().size(), 1u);
  EXPECT_EQ(log.rows()[0].prediction.substr(0, 3), "abc");
  fs::remove_all(d);
}
