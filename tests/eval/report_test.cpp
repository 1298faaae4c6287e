#include "eval/report.h"

#include <gtest/gtest.h>

#include <regex>

using namespace specsteer::eval;

namespace {

ResultRow row(const std::string& rec, const std::string& method, std::optional<double> lambda, double r1,
              double rl, uint64_t gen, double secs, uint64_t drafted, uint64_t accepted) {
  ResultRow r;
  r.record_id = rec;
  r.method = method;
  r.lambda = lambda;
  if (lambda) r.setting = "lambda=" + std::to_string(*lambda);
  r.rouge.rouge1.fmeasure = r1;
  r.rouge.rougeL.fmeasure = rl;
  r.c.n_generated = gen;
  r.c.seconds = secs;
  r.c.n_drafted = drafted;
  r.c.n_accepted = accepted;
  r.c.round_trips = drafted ? drafted / 4 : 0;
  r.c.bytes_up = 10 * gen;
  r.c.bytes_down = 5 * gen;
  r.c.slm_flops = 100 * gen;
  r.c.llm_flops = 1000 * gen;
  return r;
}

std::vector<ResultRow> rows() {
  return {
      row("a", "specsteer", 0.5, 0.30, 0.20, 10, 0.5, 12, 9),
      row("a", "llm", std::nullopt, 0.40, 0.20, 10, 1.0, 0, 0),
      row("b", "llm", std::nullopt, 0.20, 0.10, 30, 3.0, 0, 0),  // llm: 40 tok / 4 s = 10 tok/s
      row("b", "specsteer", 0.5, 0.50, 0.30, 30, 1.5, 36, 21),   // 40 tok / 2 s = 20 tok/s
      row("a", "specsteer", 0.1, 0.10, 0.10, 10, 0.25, 12, 12),
      row("a", "sd", std::nullopt, 0.40, 0.20, 10, 0.8, 8, 4),
  };
}

}  // namespace

TEST(Report, SummarizeHandComputed) {
  auto s = summarize(rows());
  ASSERT_EQ(s.size(), 4u);
  // Fixed order: llm, sd, specsteer lambda 0.5 then 0.1 (strict first, as table 10).
  EXPECT_EQ(s[0].method, "llm");
  EXPECT_EQ(s[1].method, "sd");
  EXPECT_EQ(s[2].method, "specsteer");
  EXPECT_DOUBLE_EQ(*s[2].lambda, 0.5);
  EXPECT_DOUBLE_EQ(*s[3].lambda, 0.1);
  const SummaryRow& llm = s[0];
  EXPECT_EQ(llm.n, 2u);
  EXPECT_NEAR(llm.rouge1, 30.0, 1e-9);  // mean(0.4, 0.2) x 100
  EXPECT_NEAR(llm.rougeL, 15.0, 1e-9);
  EXPECT_FALSE(llm.acceptance_rate.has_value());
  EXPECT_DOUBLE_EQ(llm.tok_per_s, 10.0);
  EXPECT_DOUBLE_EQ(*llm.speedup, 1.0);
  const SummaryRow& ss = s[2];
  EXPECT_NEAR(ss.rouge1, 40.0, 1e-9);
  EXPECT_DOUBLE_EQ(*ss.acceptance_rate, 30.0 / 48.0);  // pooled over records
  EXPECT_DOUBLE_EQ(ss.tok_per_s, 20.0);
  EXPECT_DOUBLE_EQ(*ss.speedup, 2.0);
  EXPECT_DOUBLE_EQ(ss.round_trips_per_token, (3.0 + 9.0) / 40.0);
  EXPECT_DOUBLE_EQ(ss.bytes_per_token, 15.0);
  EXPECT_DOUBLE_EQ(ss.flops_per_token, 1100.0);
  EXPECT_DOUBLE_EQ(ss.total_flops, 44000.0);
  EXPECT_DOUBLE_EQ(*s[1].acceptance_rate, 0.5);
  EXPECT_DOUBLE_EQ(*s[1].speedup, (10 / 0.8) / 10.0);
}

TEST(Report, CsvHeaderAndRows) {
  std::string csv = summary_csv(summarize(rows()));
  EXPECT_EQ(csv.rfind("method,lambda,rouge1,rougeL,acceptance_rate,tok_per_s,speedup,", 0), 0u);
  EXPECT_NE(csv.find("round_trips_per_token,bytes_per_token,flops_per_token"), std::string::npos);
  EXPECT_NE(csv.find("\nllm,,30.0000,15.0000,,10.0000,1.0000,"), std::string::npos) << csv;
  EXPECT_NE(csv.find("\nspecsteer,0.5,40.0000,25.0000,0.625000,20.0000,2.0000,"), std::string::npos) << csv;
  size_t lines = std::count(csv.begin(), csv.end(), '\n');
  EXPECT_EQ(lines, 5u);
}

TEST(Report, MarkdownTable) {
  std::string md = summary_markdown(summarize(rows()), "Abstract: tiny pair", {"note one"});
  EXPECT_NE(md.find("# Abstract: tiny pair"), std::string::npos);
  EXPECT_NE(md.find("| LLM | 2 | 30.00 | 15.00 | - | 10.00 | 1.00\xC3\x97 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| SpecSteer (\xCE\xBB = 0.5) | 2 | 40.00 | 25.00 | 62.50 |"), std::string::npos) << md;
  EXPECT_NE(md.find("note one"), std::string::npos);
}

TEST(Report, SvgHasAxesLegendAndOneMarkerPerRow) {
  auto s = summarize(rows());
  std::string svg = tradeoff_svg(s, "T & <x>");
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find("T &amp; &lt;x&gt;"), std::string::npos);
  EXPECT_NE(svg.find("ROUGE-L F1"), std::string::npos);
  EXPECT_NE(svg.find("Speedup over LLM"), std::string::npos);
  EXPECT_NE(svg.find("SpecSteer (\xCE\xBB = 0.1): 10.00, \xCE\xB1 100%, 4.00\xC3\x97"), std::string::npos) << svg;
  EXPECT_NE(svg.find("<polyline"), std::string::npos);  // specsteer's lambdas joined
  // Every coordinate must be finite.
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

TEST(Report, SvgWithoutLlmFallsBackToTokensPerSecond) {
  auto s = summarize({row("a", "slm", std::nullopt, 0.1, 0.1, 5, 1, 0, 0)});
  std::string svg = tradeoff_svg(s, "only slm");
  EXPECT_NE(svg.find("Generated tokens/s"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  std::string empty = tradeoff_svg({}, "nothing");
  EXPECT_NE(empty.find("</svg>"), std::string::npos);
}

// Issue 14: sweeps get one row per setting with the setting named, llm+ (and
// sd) are marked non-private everywhere, exact checks are averaged per row.
TEST(Report, SweepsPrivacyAndExactChecks) {
  std::vector<ResultRow> rs = rows();
  for (auto& r : rs)
    if (r.method == "sd") r.keeps_profile_on_device = false;
  auto plus = row("a", "llm+", std::nullopt, 0.5, 0.4, 10, 1.0, 0, 0);
  plus.keeps_profile_on_device = false;
  plus.exact = ExactScores{1.0, 0.5, false};
  rs.push_back(plus);
  auto plus_b = row("b", "llm+", std::nullopt, 0.5, 0.4, 10, 1.0, 0, 0);
  plus_b.keeps_profile_on_device = false;
  plus_b.exact = ExactScores{0.5, 1.0, true};
  rs.push_back(plus_b);
  auto swept = row("a", "specsteer", 0.5, 0.3, 0.3, 10, 0.5, 12, 6);
  swept.setting = "lambda=0.5 beta=2 K=8";
  swept.beta = 2;
  swept.draft_k = 8;
  swept.steer_candidates = "contrast";
  rs.push_back(swept);
  auto s = summarize(rs);
  ASSERT_EQ(s.size(), 6u);
  EXPECT_EQ(s[1].method, "llm+");  // after llm, before sd
  EXPECT_FALSE(s[1].keeps_profile_on_device);
  EXPECT_EQ(s[1].n_exact, 2u);
  EXPECT_DOUBLE_EQ(s[1].fact_recall, 75.0);
  EXPECT_DOUBLE_EQ(s[1].cons_items, 75.0);
  EXPECT_DOUBLE_EQ(s[1].cons_strict, 50.0);
  EXPECT_EQ(s[0].n_exact, 0u);
  const std::string md = summary_markdown(s, "t");
  EXPECT_NE(md.find("| fact recall | cons. items | cons. strict |"), std::string::npos) << md;
  EXPECT_NE(md.find("| LLM+ (profile in the prompt) | 2 | 50.00 | 40.00 | 75.00 | 75.00 | 50.00 |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| LLM | 2 | 30.00 | 15.00 | - | - | - |"), std::string::npos) << md;
  EXPECT_NE(md.find("| SpecSteer (\xCE\xBB = 0.5, \xCE\xB2 = 2, K = 8, contrast) | 1 |"), std::string::npos) << md;
  // The private column: "**no**" exactly on llm+ and sd.
  size_t no = 0;
  for (size_t at = md.find("| **no** |"); at != std::string::npos; at = md.find("| **no** |", at + 1)) ++no;
  EXPECT_EQ(no, 2u);
  const std::string csv = summary_csv(s);
  EXPECT_NE(csv.find("setting,private,beta,draft,steer_candidates,plausibility,fact_recall,cons_items,cons_strict,"
                     "n_exact\n"),
            std::string::npos);
  EXPECT_NE(csv.find(",0,1,0,,,75.0000,75.0000,50.0000,2\n"), std::string::npos) << csv;  // llm+
  EXPECT_NE(csv.find("lambda=0.5 beta=2 K=8,1,2,8,contrast,,,,,0\n"), std::string::npos) << csv;
  const std::string svg = tradeoff_svg(s, "t");
  EXPECT_NE(svg.find("[non-private]"), std::string::npos);
  EXPECT_NE(svg.find("fill=\"white\" stroke="), std::string::npos);  // hollow marker
}
