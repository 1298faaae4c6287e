// eval's MiniLaMP exact checks against tools/minilamp/score.py: the fixture's
// expected scores were written by score.py itself (tests/eval/gen_exact_fixture.py).
#include "eval/exact.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>

#include "common/error.h"

using namespace specsteer;
using namespace specsteer::eval;
using nlohmann::json;

namespace {
const std::string kDir = std::string(SPECSTEER_SOURCE_DIR) + "/tests/eval/data/minilamp_exact";

std::vector<json> lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<json> out;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}
}  // namespace

TEST(Exact, EqualsScorePyOnFixture) {
  std::map<std::string, ExactChecks> checks;
  for (const json& r : lines(kDir + "/records.jsonl")) {
    auto c = exact_checks_from_record(r, r["id"].get<std::string>());
    ASSERT_TRUE(c.has_value());
    checks[r["id"].get<std::string>()] = *c;
  }
  ASSERT_EQ(checks.size(), 8u);
  const auto expected = lines(kDir + "/expected.jsonl");
  ASSERT_EQ(expected.size(), 80u);
  size_t strict = 0, partial = 0;
  for (const json& e : expected) {
    const std::string id = e["record"].get<std::string>();
    SCOPED_TRACE(id + " case " + std::to_string(e["case"].get<int>()));
    const ExactScores s = score_exact(checks.at(id), e["prediction"].get<std::string>());
    EXPECT_DOUBLE_EQ(s.fact_recall, e["fact_recall"].get<double>());
    EXPECT_DOUBLE_EQ(s.cons_items, e["cons_items"].get<double>());
    EXPECT_EQ(s.cons_strict, e["cons_strict"].get<bool>());
    strict += s.cons_strict;
    partial += s.cons_items > 0 && s.cons_items < 1;
  }
  // The fixture exercises both outcomes of every check.
  EXPECT_GT(strict, 0u);
  EXPECT_GT(partial, 0u);
}

TEST(Exact, WordBoundariesAsScorePy) {
  EXPECT_TRUE(contains_word("My cat Poppy.", "Poppy"));
  EXPECT_TRUE(contains_word("Poppy", "Poppy"));
  EXPECT_TRUE(contains_word("(Poppy)", "Poppy"));
  EXPECT_TRUE(contains_word("Poppy2 and Poppy", "Poppy"));  // digits are not letters; later hits count
  EXPECT_FALSE(contains_word("Poppyseed", "Poppy"));
  EXPECT_FALSE(contains_word("xPoppy", "Poppy"));
  EXPECT_TRUE(contains_word("Poppyseed Poppy", "Poppy"));
  EXPECT_FALSE(contains_word("", "Poppy"));
}

TEST(Exact, RecordsWithoutChecksAndMalformedOnes) {
  EXPECT_FALSE(exact_checks_from_record(json{{"id", "x"}, {"output", "y"}}, "r").has_value());
  auto bad = [](const json& j) {
    try {
      exact_checks_from_record(j, "data.jsonl: line 3");
      return std::string();
    } catch (const Error& e) {
      return std::string(e.what());
    }
  };
  EXPECT_NE(bad(json{{"facts", {"a"}}}).find("constraints"), std::string::npos);
  EXPECT_NE(bad(json{{"facts", json::array()}, {"constraints", {{"made", json::array()}, {"missed", {"x"}}}}})
                .find("facts"),
            std::string::npos);
  json c = {{"liked", 9}, {"disliked", 0}};
  c["verdicts"] = json::array({json::array({"sound", "great"})});
  const std::string e = bad(json{{"facts", {"a"}}, {"constraints", c}});
  EXPECT_NE(e.find("liked"), std::string::npos) << e;
  // eval's record reader hands numbers over as their text.
  json text_counts = {{"facts", {"a"}}, {"constraints", {{"liked", "1"}, {"disliked", "0"}}}};
  text_counts["constraints"]["verdicts"] = json::array({json::array({"sound", "great"})});
  auto checks = exact_checks_from_record(text_counts, "r");
  ASSERT_TRUE(checks.has_value());
  EXPECT_EQ(checks->liked, 1);
  EXPECT_TRUE(score_exact(*checks, "a. The sound was great. I liked one and disliked zero.").cons_strict);
  text_counts["constraints"]["liked"] = "one";
  EXPECT_NE(bad(text_counts).find("liked"), std::string::npos);
  EXPECT_EQ(e.rfind("data.jsonl: line 3", 0), 0u) << e;
}
