// End to end: `specsteer eval` on the shipped LongLaMP-layout sample with the
// fixture models (tiny-qwen3 f32 as LLM, its q8_0 copy as SLM); checks every
// output file's structure and that the numbers agree with each other.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string kGolden = std::string(SPECSTEER_FIXTURES) + "/golden";
const std::string kLlm = kGolden + "/tiny-qwen3-f32/tiny-qwen3-f32.gguf";
const std::string kSlm = kGolden + "/tiny-qwen3-q8_0/tiny-qwen3-q8_0.gguf";
const std::string kData = std::string(SPECSTEER_SOURCE_DIR) + "/data/longlamp-sample/abstract.jsonl";

int run(const std::string& args, std::string* out) {
  std::string cmd = std::string(SPECSTEER_CLI) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return -1;
  std::array<char, 4096> buf{};
  size_t n;
  out->clear();
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out->append(buf.data(), n);
  int st = ::pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> split(const std::string& s, char d) {
  std::vector<std::string> v;
  std::string cur;
  for (char c : s) {
    if (c == d) {
      v.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  v.push_back(cur);
  return v;
}

std::string eval_args(const fs::path& out) {
  // The fixture models have a 256-token context: one retrieved entry, short outputs.
  return "eval --data " + kData + " --task abstract --slm " + kSlm + " --llm " + kLlm +
         " --methods llm,slm,slm+,llm+,sd,lightcosteer,costeer,specsteer --lambda 0.1,1.0 --limit 2 --max-new-tokens 12"
         " --retrieve-k 1 --threads 1 --seed 7 --out " + out.string();
}

}  // namespace

TEST(EvalE2E, AllOutputsConsistentAndResumable) {
  if (!fs::exists(kLlm) || !fs::exists(kSlm)) GTEST_SKIP() << "no fixture models under " << kGolden;
  fs::path out = fs::temp_directory_path() / ("specsteer_eval_e2e_" + std::to_string(::getpid()));
  fs::remove_all(out);
  std::string log;
  ASSERT_EQ(run(eval_args(out), &log), 0) << log;
  // stdout is a pipe here: plain progress lines, no carriage returns.
  EXPECT_NE(log.find("[eval] 18/18 done"), std::string::npos) << log;
  EXPECT_EQ(log.find('\r'), std::string::npos);

  // results.jsonl: 2 records x (7 methods + 2 lambdas) rows, each complete.
  std::vector<json> rows;
  {
    std::ifstream in(out / "results.jsonl");
    std::string line;
    while (std::getline(in, line)) rows.push_back(json::parse(line));
  }
  ASSERT_EQ(rows.size(), 18u);
  std::map<std::string, std::vector<json>> by_setting;  // "method|setting"
  std::set<std::string> records;
  for (const auto& r : rows) {
    records.insert(r["record"].get<std::string>());
    by_setting[r["method"].get<std::string>() + "|" + r["setting"].get<std::string>()].push_back(r);
    const json& c = r["counters"];
    EXPECT_LE(c["n_generated"].get<uint64_t>(), 12u);
    EXPECT_EQ(r["tokens"].size(), c["n_generated"].get<uint64_t>());
    EXPECT_LE(c["n_accepted"].get<uint64_t>(), c["n_drafted"].get<uint64_t>());
    for (const char* k : {"rouge1", "rougeL"})
      for (const char* f : {"precision", "recall", "fmeasure"}) {
        double v = r[k][f].get<double>();
        EXPECT_GE(v, 0.0);
        EXPECT_LE(v, 1.0);
      }
    EXPECT_EQ(r["flops"]["total"].get<uint64_t>(),
              r["flops"]["slm"].get<uint64_t>() + r["flops"]["llm"].get<uint64_t>());
    const std::string m = r["method"];
    // Which models ran: llm only for llm, small model only for slm/slm+.
    if (m == "llm" || m == "llm+") { EXPECT_EQ(r["flops"]["slm"].get<uint64_t>(), 0u); }
    if (m == "slm" || m == "slm+") { EXPECT_EQ(r["flops"]["llm"].get<uint64_t>(), 0u); }
    // llm+ sends the profile to the Generalist (and sd the drafter's
    // probabilities): marked non-private; every other method private.
    EXPECT_EQ(r["private"].get<bool>(), m != "llm+" && m != "sd") << m;
    // The steering methods record their candidate rule (the default, plausible).
    if (m == "specsteer" || m == "lightcosteer") {
      EXPECT_EQ(r["steer_candidates"], "plausible") << m;
      EXPECT_EQ(r["setting"].get<std::string>().find("plausible gamma=0.1") != std::string::npos, true) << m;
    } else {
      EXPECT_FALSE(r.contains("steer_candidates")) << m;
    }
    if (m == "llm" || m == "slm" || m == "slm+" || m == "llm+") {
      EXPECT_EQ(c["round_trips"].get<uint64_t>(), 0u);
      EXPECT_EQ(c["n_drafted"].get<uint64_t>(), 0u);
    } else {
      EXPECT_GT(c["bytes_up"].get<uint64_t>(), 0u) << m;
      EXPECT_GT(c["round_trips"].get<uint64_t>(), 0u) << m;
    }
    if (m == "sd" || m == "specsteer") { EXPECT_GT(c["n_drafted"].get<uint64_t>(), 0u); }
    // Greedy sd is lossless: same tokens as llm on the same record.
  }
  EXPECT_EQ(records.size(), 2u);
  ASSERT_EQ(by_setting.size(), 9u);
  // llm+ reads the personalized prompt: more LLM positions than llm on the same record.
  for (const auto& plus : by_setting["llm+|"])
    for (const auto& llm : by_setting["llm|"])
      if (plus["record"] == llm["record"]) {
        EXPECT_GT(plus["work"]["llm_positions"].get<uint64_t>() - plus["counters"]["n_generated"].get<uint64_t>(),
                  llm["work"]["llm_positions"].get<uint64_t>() - llm["counters"]["n_generated"].get<uint64_t>());
      }
  for (const auto& sd : by_setting["sd|"])
    for (const auto& llm : by_setting["llm|"])
      if (sd["record"] == llm["record"]) { EXPECT_EQ(sd["tokens"], llm["tokens"]) << "greedy sd must equal llm"; }

  // summary.csv: one row per method/setting; totals add up to results.jsonl.
  auto csv_lines = split(slurp(out / "summary.csv"), '\n');
  ASSERT_GE(csv_lines.size(), 2u);
  auto header = split(csv_lines[0], ',');
  ASSERT_GE(header.size(), 7u);
  EXPECT_EQ(std::vector<std::string>(header.begin(), header.begin() + 7),
            (std::vector<std::string>{"method", "lambda", "rouge1", "rougeL", "acceptance_rate", "tok_per_s",
                                      "speedup"}));
  std::map<std::string, size_t> col;
  for (size_t i = 0; i < header.size(); ++i) col[header[i]] = i;
  for (const char* k : {"round_trips_per_token", "bytes_per_token", "flops_per_token", "n_generated", "n_records",
                        "private", "beta", "draft", "steer_candidates"})
    ASSERT_TRUE(col.count(k)) << k;
  size_t n_rows = 0;
  uint64_t gen_total_csv = 0, gen_total_rows = 0;
  for (const auto& r : rows) gen_total_rows += r["counters"]["n_generated"].get<uint64_t>();
  for (size_t i = 1; i < csv_lines.size(); ++i) {
    if (csv_lines[i].empty()) continue;
    auto f = split(csv_lines[i], ',');
    ASSERT_EQ(f.size(), header.size()) << csv_lines[i];
    ++n_rows;
    const std::string m = f[col["method"]];
    const std::string key = m + "|" + f[col["setting"]];
    ASSERT_TRUE(by_setting.count(key)) << key;
    const auto& group = by_setting[key];
    EXPECT_EQ(std::stoul(f[col["n_records"]]), group.size());
    uint64_t gen = 0, drafted = 0, accepted = 0;
    double r1 = 0;
    for (const auto& r : group) {
      gen += r["counters"]["n_generated"].get<uint64_t>();
      drafted += r["counters"]["n_drafted"].get<uint64_t>();
      accepted += r["counters"]["n_accepted"].get<uint64_t>();
      r1 += r["rouge1"]["fmeasure"].get<double>();
    }
    EXPECT_EQ(std::stoull(f[col["n_generated"]]), gen);
    gen_total_csv += gen;
    EXPECT_NEAR(std::stod(f[col["rouge1"]]), 100 * r1 / group.size(), 1e-3);
    if (m == "llm") { EXPECT_DOUBLE_EQ(std::stod(f[col["speedup"]]), 1.0); }
    EXPECT_GT(std::stod(f[col["speedup"]]), 0.0);
    if (m == "sd" || m == "specsteer") {
      double a = std::stod(f[col["acceptance_rate"]]);
      EXPECT_GE(a, 0.0);
      EXPECT_LE(a, 1.0);
      EXPECT_NEAR(a, double(accepted) / double(drafted), 1e-6);
      EXPECT_DOUBLE_EQ(std::stod(f[col["lambda"]].empty() ? "-1" : f[col["lambda"]]),
                       m == "specsteer" ? group[0]["lambda"].get<double>() : -1.0);
    } else {
      EXPECT_TRUE(f[col["acceptance_rate"]].empty()) << m;
    }
    EXPECT_GT(std::stod(f[col["flops_per_token"]]), 0.0);
    EXPECT_EQ(f[col["private"]], m == "llm+" || m == "sd" ? "0" : "1") << m;
  }
  EXPECT_EQ(n_rows, 9u);
  EXPECT_EQ(gen_total_csv, gen_total_rows);

  std::string md = slurp(out / "summary.md");
  EXPECT_NE(md.find("| Method | n | R-1 | R-L |"), std::string::npos);
  for (const char* name : {"| LLM |", "| SLM |", "| SLM+ |", "| LLM+ (profile in the prompt) |", "| Standard SD |",
                           "| LightCoSteer (plausible \xCE\xB3 = 0.1) |", "| CoSteer |",
                           "| SpecSteer (\xCE\xBB = 0.1, plausible \xCE\xB3 = 0.1) |",
                           "| SpecSteer (\xCE\xBB = 1, plausible \xCE\xB3 = 0.1) |"})
    EXPECT_NE(md.find(name), std::string::npos) << name;
  {  // the llm+ row says it is not private
    const size_t at = md.find("| LLM+ (profile in the prompt) |");
    ASSERT_NE(at, std::string::npos);
    const std::string line = md.substr(at, md.find('\n', at) - at);
    EXPECT_NE(line.find("| **no** |"), std::string::npos) << line;
  }
  std::string svg = slurp(out / "tradeoff.svg");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find("Speedup over LLM"), std::string::npos);
  EXPECT_NE(svg.find("LLM+ (profile in the prompt): "), std::string::npos);
  EXPECT_NE(svg.find("[non-private]"), std::string::npos);

  json man = json::parse(slurp(out / "manifest.json"));
  EXPECT_EQ(man["models"]["llm"]["sha256"], "33b36d72b5badcd87e96acef6faf5dae54c972fe37eb895961b9e999a6ef78ba");
  EXPECT_EQ(man["models"]["slm"]["sha256"], "abdbabaaa273b38a481c0e2785ec8623f461d6bedffd6afff8a1980f9d46ac22");
  EXPECT_EQ(man["config"]["seed"], 7);
  EXPECT_EQ(man["data"]["records"], 2);
  EXPECT_TRUE(man["git_revision"].is_string());
  EXPECT_TRUE(man["runs"].back().contains("finished_at"));

  // Resume: a torn last line is dropped and only that row is generated again.
  std::string results = slurp(out / "results.jsonl");
  size_t last_nl = results.rfind('\n', results.size() - 2);
  {
    std::ofstream trunc(out / "results.jsonl", std::ios::binary | std::ios::trunc);
    trunc << results.substr(0, last_nl + 1 + 40);  // keep 40 bytes of the last row
  }
  ASSERT_EQ(run(eval_args(out), &log), 0) << log;
  EXPECT_NE(log.find("1 generations run, 17 already done"), std::string::npos) << log;
  std::string again = slurp(out / "results.jsonl");
  EXPECT_EQ(std::count(again.begin(), again.end(), '\n'), 18);
  // Different settings in the same directory are refused.
  ASSERT_NE(run(eval_args(out) + " --topk 8", &log), 0);
  EXPECT_NE(log.find("different settings (top_k"), std::string::npos) << log;

  // Sweeps (paper tables 9/10) in the same directory: one row per setting;
  // the rows already there (beta 1, K 4, plausible) are resumed, not rerun.
  // sd: K 4 done, K 2 new; lightcosteer: 4 settings, 1 done; specsteer at
  // lambda 0.1: 2 x 2 x 2 settings, 1 done. 2 records each.
  const std::string sweep = "eval --data " + kData + " --task abstract --slm " + kSlm + " --llm " + kLlm +
                            " --methods sd,lightcosteer,specsteer --lambda 0.1 --beta 1,2 --draft 4,2"
                            " --steer-candidates plausible,contrast --limit 2 --max-new-tokens 12 --retrieve-k 1"
                            " --threads 1 --seed 7 --out " + out.string();
  ASSERT_EQ(run(sweep, &log), 0) << log;
  EXPECT_NE(log.find("22 generations run, 6 already done"), std::string::npos) << log;
  std::set<std::string> settings;
  {
    std::ifstream in(out / "results.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      json r = json::parse(line);
      settings.insert(r["method"].get<std::string>() + "|" + r["setting"].get<std::string>());
      if (r["setting"] == "lambda=0.1 beta=2 K=2") {
        EXPECT_EQ(r["beta"], 2.0);
        EXPECT_EQ(r["draft"], 2);
        EXPECT_EQ(r["steer_candidates"], "contrast");
      }
    }
  }
  EXPECT_EQ(settings.size(), 9u + 1 + 3 + 7);
  for (const char* k : {"sd|K=2", "lightcosteer|beta=2", "lightcosteer|beta=2 plausible gamma=0.1",
                        "specsteer|lambda=0.1 beta=2 K=2", "specsteer|lambda=0.1 K=2 plausible gamma=0.1"})
    EXPECT_TRUE(settings.count(k)) << k;
  auto csv2 = split(slurp(out / "summary.csv"), '\n');
  EXPECT_EQ(std::count_if(csv2.begin() + 1, csv2.end(), [](const std::string& l) { return !l.empty(); }), 20);
  std::string md2 = slurp(out / "summary.md");
  EXPECT_NE(md2.find("| SpecSteer (\xCE\xBB = 0.1, \xCE\xB2 = 2, K = 2, contrast) |"), std::string::npos) << md2;
  fs::remove_all(out);
}

TEST(EvalE2E, RougeCommand) {
  std::string fixture = std::string(SPECSTEER_FIXTURES) + "/rouge/cases.jsonl";
  if (!fs::exists(fixture)) GTEST_SKIP();
  std::string out;
  ASSERT_EQ(run("rouge --pairs " + fixture, &out), 0) << out;
  std::istringstream got(out);
  std::ifstream want(fixture);
  std::string g, w;
  int n = 0;
  while (std::getline(want, w)) {
    ASSERT_TRUE(std::getline(got, g));
    json jg = json::parse(g), jw = json::parse(w);
    for (const char* k : {"rouge1", "rougeL"})
      for (const char* f : {"precision", "recall", "fmeasure"})
        EXPECT_NEAR(jg[k][f].get<double>(), jw[k][f].get<double>(), 1e-6) << w;
    ++n;
  }
  EXPECT_EQ(n, 10);
  ASSERT_EQ(run("rouge --reference 'The cat sat' --prediction 'the cat'", &out), 0);
  json j = json::parse(out);
  EXPECT_DOUBLE_EQ(j["rouge1"]["recall"].get<double>(), 2.0 / 3);
  fs::path bad = fs::temp_directory_path() / ("specsteer_bad_pairs_" + std::to_string(::getpid()));
  std::ofstream(bad) << "{\"reference\": \"a\", \"prediction\": \"b\"}\n{oops\n";
  EXPECT_NE(run("rouge --pairs " + bad.string(), &out), 0);
  EXPECT_NE(out.find(bad.string() + ":2"), std::string::npos) << out;
  fs::remove(bad);
}

// MiniLaMP records carry facts and constraints: eval scores every row with
// score.py's rules (tests/eval/exact_test.cpp checks those against score.py)
// and puts the means into summary.md / summary.csv.
TEST(EvalE2E, MiniLampExactChecksReachTheSummary) {
  const std::string mini = std::string(SPECSTEER_SOURCE_DIR) + "/models/minilamp/";
  fs::path out = fs::temp_directory_path() / ("specsteer_eval_exact_" + std::to_string(::getpid()));
  fs::remove_all(out);
  std::string log;
  ASSERT_EQ(run("eval --data " + std::string(SPECSTEER_SOURCE_DIR) + "/data/minilamp/review.jsonl --task review"
                " --slm " + mini + "specialist.gguf --llm " + mini + "generalist.gguf --methods llm,slm+"
                " --limit 3 --max-new-tokens 80 --threads 1 --quiet --out " + out.string(),
                &log),
            0)
      << log;
  std::map<std::string, std::vector<double>> recall;
  {
    std::ifstream in(out / "results.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      json r = json::parse(line);
      ASSERT_TRUE(r.contains("exact")) << line;
      const double f = r["exact"]["fact_recall"].get<double>();
      EXPECT_GE(f, 0.0);
      EXPECT_LE(f, 1.0);
      recall[r["method"].get<std::string>()].push_back(f);
    }
  }
  ASSERT_EQ(recall.size(), 2u);
  auto csv = split(slurp(out / "summary.csv"), '\n');
  auto header = split(csv[0], ',');
  std::map<std::string, size_t> col;
  for (size_t i = 0; i < header.size(); ++i) col[header[i]] = i;
  for (const char* k : {"fact_recall", "cons_items", "cons_strict", "n_exact"}) ASSERT_TRUE(col.count(k)) << k;
  for (size_t i = 1; i < csv.size(); ++i) {
    if (csv[i].empty()) continue;
    auto f = split(csv[i], ',');
    const auto& v = recall[f[col["method"]]];
    double mean = 0;
    for (double x : v) mean += x;
    EXPECT_NEAR(std::stod(f[col["fact_recall"]]), 100 * mean / v.size(), 1e-3);
    EXPECT_EQ(f[col["n_exact"]], "3");
  }
  EXPECT_NE(slurp(out / "summary.md").find("| fact recall | cons. items | cons. strict |"), std::string::npos);
  fs::remove_all(out);
}

// eval --replay-edge/--replay-llm: the summary and the trade-off plot carry
// speedups replayed on other models (here the bundled pair stands in for
// real-shaped ones: the plumbing is the point), every row's, and say so.
TEST(EvalE2E, ReplayedSpeedupsReachTheSummaryAndThePlot) {
  const std::string mini = std::string(SPECSTEER_SOURCE_DIR) + "/models/minilamp/";
  fs::path out = fs::temp_directory_path() / ("specsteer_eval_replay_" + std::to_string(::getpid()));
  fs::remove_all(out);
  std::string log;
  ASSERT_EQ(run("eval --data " + std::string(SPECSTEER_SOURCE_DIR) + "/data/minilamp/review.jsonl --task review"
                " --slm " + mini + "specialist.gguf --llm " + mini + "generalist.gguf --methods llm,slm+,specsteer"
                " --limit 2 --max-new-tokens 40 --threads 1 --quiet --out " + out.string() +
                " --replay-edge " + mini + "specialist-q8_0.gguf --replay-llm " + mini + "generalist-q8_0.gguf",
                &log),
            0)
      << log;
  const std::string md = slurp(out / "summary.md");
  EXPECT_NE(md.find("Speedup (replayed)"), std::string::npos) << md;
  EXPECT_NE(md.find("Speedups replayed (3 rows) on edge specialist-q8_0.gguf and cloud generalist-q8_0.gguf"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| LLM | 2 |"), std::string::npos);
  const std::string svg = slurp(out / "tradeoff.svg");
  EXPECT_NE(svg.find("replayed on real-shaped models"), std::string::npos);
  EXPECT_NE(svg.find("log scale"), std::string::npos);
  // Without both models it is refused by name.
  ASSERT_NE(run("eval --data " + std::string(SPECSTEER_SOURCE_DIR) + "/data/minilamp/review.jsonl --task review"
                " --slm " + mini + "specialist.gguf --llm " + mini + "generalist.gguf --methods llm --limit 1"
                " --threads 1 --quiet --out " + (out / "b").string() + " --replay-edge " + mini +
                "specialist-q8_0.gguf",
                &log),
            0);
  EXPECT_NE(log.find("--replay-llm"), std::string::npos) << log;
  fs::remove_all(out);
}

// eval --bonus: the rows are their own setting ("bonus"), blocks accepted
// whole add a steered token (fewer rounds for the same tokens), and replay
// re-runs those schedules, bonus passes included.
TEST(EvalE2E, BonusTokensAreASettingOfTheirOwnAndReplay) {
  const std::string mini = std::string(SPECSTEER_SOURCE_DIR) + "/models/minilamp/";
  fs::path out = fs::temp_directory_path() / ("specsteer_eval_bonus_" + std::to_string(::getpid()));
  fs::remove_all(out);
  const std::string base = "eval --data " + std::string(SPECSTEER_SOURCE_DIR) +
                           "/data/minilamp/review.jsonl --task review --slm " + mini + "specialist.gguf --llm " + mini +
                           "generalist.gguf --methods specsteer --limit 3 --max-new-tokens 48 --threads 1 --quiet --out " +
                           out.string();
  std::string log;
  ASSERT_EQ(run(base, &log), 0) << log;
  ASSERT_EQ(run(base + " --bonus", &log), 0) << log;
  std::map<std::string, std::array<long, 3>> by_setting;  // tokens, rounds, bonus rounds in the trace
  std::istringstream rows(slurp(out / "results.jsonl"));
  for (std::string line; std::getline(rows, line);) {
    const json r = json::parse(line);
    auto& t = by_setting[r["setting"].get<std::string>()];
    t[0] += r["counters"]["n_generated"].get<long>();
    t[1] += r["counters"]["round_trips"].get<long>();
    for (const json& round : r["trace"]["rounds"]) t[2] += round.value("bonus", false) ? 1 : 0;
  }
  ASSERT_EQ(by_setting.size(), 2u) << "one setting with --bonus, one without";
  const auto plain = by_setting.begin()->first.find("bonus") == std::string::npos ? by_setting.begin()->second
                                                                                   : by_setting.rbegin()->second;
  const auto bonus = by_setting.begin()->first.find("bonus") == std::string::npos ? by_setting.rbegin()->second
                                                                                   : by_setting.begin()->second;
  EXPECT_EQ(plain[2], 0);
  EXPECT_GT(bonus[2], 0) << "MiniLaMP blocks are often accepted whole";
  EXPECT_LT(static_cast<double>(bonus[1]) / bonus[0], static_cast<double>(plain[1]) / plain[0])
      << "a bonus token saves rounds per token";
  EXPECT_NE(slurp(out / "manifest.json").find("\"bonus\": true"), std::string::npos);
  ASSERT_EQ(run("replay --trace " + (out / "results.jsonl").string() + " --edge-model " + mini +
                    "specialist-q8_0.gguf --llm " + mini + "generalist-q8_0.gguf --edge-threads 1 --cloud-threads 1 --json",
                &log),
            0)
      << log;
  const json rep = json::parse(log.substr(log.find('[')));
  ASSERT_EQ(rep.size(), 2u) << log;
  std::set<std::string> labels;
  for (const json& row : rep) labels.insert(row["label"].get<std::string>());
  EXPECT_EQ(labels.count("specsteer lambda=0.5 bonus"), 1u) << log;
  fs::remove_all(out);
}

// A LoRA Specialist in eval: --specialist lora|lora+rag with --lora; the
// combination is checked before anything runs, and the title says which.
TEST(EvalE2E, LoraSpecialist) {
  const std::string lora = kGolden + "/lora/tiny-qwen3-f32-lora.gguf";
  const std::string base = kGolden + "/tiny-qwen3-f32/tiny-qwen3-f32.gguf";
  if (!fs::exists(lora)) GTEST_SKIP() << "fixtures absent";
  fs::path out = fs::temp_directory_path() / ("specsteer_eval_lora_" + std::to_string(::getpid()));
  fs::remove_all(out);
  const std::string common = "eval --data " + kData + " --task abstract --slm " + base + " --llm " + base +
                             " --methods slm+,specsteer --limit 1 --max-new-tokens 8 --retrieve-k 1 --threads 1";
  std::string log;
  EXPECT_NE(run(common + " --specialist lora --out " + out.string(), &log), 0);
  EXPECT_NE(log.find("needs --lora"), std::string::npos) << log;
  EXPECT_NE(run(common + " --lora " + lora + " --out " + out.string(), &log), 0);
  EXPECT_NE(log.find("--specialist lora"), std::string::npos) << log;
  EXPECT_NE(run(common + " --specialist lorax --lora " + lora + " --out " + out.string(), &log), 0);
  ASSERT_EQ(run(common + " --specialist lora --lora " + lora + ":0.5 --quiet --out " + out.string(), &log), 0) << log;
  EXPECT_NE(slurp(out / "summary.md").find("Specialist lora"), std::string::npos);
  const json manifest = json::parse(slurp(out / "manifest.json"));
  EXPECT_EQ(manifest["fingerprint"]["specialist"], "lora");
  EXPECT_EQ(manifest["fingerprint"]["lora"][0]["scale"], 0.5);
  // Resuming with another adapter scale is another run.
  EXPECT_NE(run(common + " --specialist lora --lora " + lora + ":1 --quiet --out " + out.string(), &log), 0);
  fs::remove_all(out);
}

// --lora-dir: each record's user gets DIR/<user>.gguf; a user without one is named.
TEST(EvalE2E, PerUserLoraDirectory) {
  const std::string lora = kGolden + "/lora/tiny-qwen3-f32-lora.gguf";
  const std::string base = kGolden + "/tiny-qwen3-f32/tiny-qwen3-f32.gguf";
  if (!fs::exists(lora)) GTEST_SKIP() << "fixtures absent";
  const fs::path root = fs::temp_directory_path() / ("specsteer_eval_loradir_" + std::to_string(::getpid()));
  fs::remove_all(root);
  const fs::path adapters = root / "adapters", out = root / "out";
  fs::create_directories(adapters);
  std::ifstream first(kData);
  std::string line;
  std::getline(first, line);
  const std::string user = json::parse(line)["name"];
  const std::string common = "eval --data " + kData + " --task abstract --slm " + base + " --llm " + base +
                             " --methods slm+ --limit 1 --max-new-tokens 4 --retrieve-k 1 --threads 1 --quiet" +
                             " --specialist lora --lora-dir " + adapters.string();
  std::string log;
  EXPECT_NE(run(common + " --out " + out.string(), &log), 0);
  EXPECT_NE(log.find("no adapter for user '" + user + "'"), std::string::npos) << log;
  fs::copy_file(lora, adapters / (user + ".gguf"));
  fs::remove_all(out);
  ASSERT_EQ(run(common + " --out " + out.string(), &log), 0) << log;
  const json manifest = json::parse(slurp(out / "manifest.json"));
  EXPECT_EQ(manifest["fingerprint"]["lora_dir"], fs::absolute(adapters).lexically_normal().string());
  EXPECT_NE(run("eval --data " + kData + " --task abstract --slm " + base + " --llm " + base +
                    " --methods slm+ --limit 1 --specialist lora --lora-dir " + (root / "none").string() +
                    " --out " + (root / "o2").string(),
                &log),
            0);
  EXPECT_NE(log.find("is not a directory"), std::string::npos) << log;
  fs::remove_all(root);
}

// Wrong --task for the data names the task the records look like; sweep
// values are refused up front with steer::validate's words.
TEST(EvalE2E, WrongTaskAndBadSweepValuesAreNamed) {
  const std::string mini = std::string(SPECSTEER_SOURCE_DIR) + "/models/minilamp/";
  const fs::path out = fs::temp_directory_path() / ("specsteer_eval_task_" + std::to_string(::getpid()));
  const std::string base = "eval --data " + std::string(SPECSTEER_SOURCE_DIR) + "/data/minilamp/review.jsonl --slm " +
                           mini + "specialist.gguf --llm " + mini + "generalist.gguf --limit 1 -t 1 --out " +
                           out.string();
  std::string log;
  EXPECT_NE(run(base + " --task writing", &log), 0);
  EXPECT_NE(log.find("as --task review records do"), std::string::npos) << log;
  EXPECT_NE(run(base + " --task review --beta -1", &log), 0);
  EXPECT_NE(log.find("beta must be a finite number >= 0"), std::string::npos) << log;
  EXPECT_NE(run(base + " --task review --lambda 0", &log), 0);
  EXPECT_NE(log.find("lambda must be a finite number > 0"), std::string::npos) << log;
  fs::remove_all(out);
}
