// The engine's command-line contracts (run, logits, bench, demo) on the real
// binary, checked against llama.cpp's golden data where it exists.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "cli_runner.h"

namespace {

namespace fs = std::filesystem;
using specsteer::testing::q;
using specsteer::testing::run_cli;

std::string golden(const std::string& name, const std::string& ext) {
  return std::string(SPECSTEER_FIXTURES) + "/golden/" + name + "/" + name + ext;
}

nlohmann::json golden_meta(const std::string& name) {
  std::ifstream f(golden(name, ".json"));
  return nlohmann::json::parse(f);
}

TEST(EngineCli, LogitsMatchGolden) {
  const std::string name = "tiny-llama3-f32";
  if (!fs::exists(golden(name, ".gguf"))) GTEST_SKIP() << "fixtures absent";
  const auto meta = golden_meta(name);
  const int n_vocab = meta["n_vocab"];
  std::ifstream gf(golden(name, ".logits.f32"), std::ios::binary);
  std::vector<float> all(3 * static_cast<size_t>(n_vocab));
  gf.read(reinterpret_cast<char*>(all.data()), static_cast<std::streamsize>(all.size() * 4));
  for (int i = 0; i < 3; ++i) {
    const std::string prompt = meta["prompts"][i]["text"];
    const auto out = (fs::path(::testing::TempDir()) / ("logits" + std::to_string(i) + ".f32")).string();
    auto r = run_cli("logits --kv-type f32 -m " + q(golden(name, ".gguf")) + " -p " + q(prompt) + " --out " + q(out));
    ASSERT_EQ(r.rc, 0) << r.out;
    ASSERT_EQ(fs::file_size(out), static_cast<uintmax_t>(n_vocab) * 4);
    std::ifstream f(out, std::ios::binary);
    std::vector<float> got(n_vocab);
    f.read(reinterpret_cast<char*>(got.data()), n_vocab * 4);
    float max_diff = 0;
    for (int k = 0; k < n_vocab; ++k) max_diff = std::max(max_diff, std::fabs(got[k] - all[i * n_vocab + k]));
    EXPECT_LE(max_diff, 1e-3f) << "prompt " << i;
  }
}

TEST(EngineCli, RunJsonIsGreedyAndReportsSpeed) {
  const std::string name = "aidreams260K-f32";
  if (!fs::exists(golden(name, ".gguf"))) GTEST_SKIP() << "fixtures absent";
  const auto meta = golden_meta(name);
  const auto& p0 = meta["prompts"][0];
  auto r = run_cli("run -m " + q(golden(name, ".gguf")) + " -p " + q(p0["text"].get<std::string>()) +
                       " -n 16 --temp 0 --json",
                   false);
  ASSERT_EQ(r.rc, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  for (const char* key : {"text", "tokens", "n_prompt", "n_gen", "prompt_tok_per_s", "gen_tok_per_s"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["n_prompt"].get<int>(), p0["n_tokens"].get<int>());
  EXPECT_EQ(j["tokens"].get<std::vector<int>>(), p0["greedy_token_ids"].get<std::vector<int>>());
  EXPECT_GT(j["gen_tok_per_s"].get<double>(), 0.0);

  // Sampling: the same seed gives the same tokens; another seed is allowed to differ.
  const std::string base = "run -m " + q(golden(name, ".gguf")) + " -p " + q("Echoes of") + " -n 24 --temp 1 --json";
  auto a = nlohmann::json::parse(run_cli(base + " --seed 7", false).out);
  auto b = nlohmann::json::parse(run_cli(base + " --seed 7", false).out);
  EXPECT_EQ(a["tokens"], b["tokens"]);
}

TEST(EngineCli, ClearErrorsOnBadInput) {
  const std::string bad = (fs::path(::testing::TempDir()) / "not_a_model.gguf").string();
  std::ofstream(bad) << "this is not a gguf file";
  auto r = run_cli("run -m " + q(bad) + " -p hi");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("not a GGUF file"), std::string::npos) << r.out;
  r = run_cli("run -m /nonexistent/model.gguf -p hi");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("cannot open"), std::string::npos) << r.out;
  const std::string name = "aidreams260K-f32";
  if (!fs::exists(golden(name, ".gguf"))) return;
  r = run_cli("run -m " + q(golden(name, ".gguf")) + " -p " + q(std::string("bad \xff utf8")));
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("invalid UTF-8"), std::string::npos) << r.out;
  r = run_cli("run -m " + q(golden(name, ".gguf")) + " -p hi -n 1000");  // context is 128
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("exceeds the context size"), std::string::npos) << r.out;
}

TEST(EngineCli, BenchJson) {
  const std::string name = "aidreams260K-f32";
  if (!fs::exists(golden(name, ".gguf"))) GTEST_SKIP() << "fixtures absent";
  auto r = run_cli("bench -m " + q(golden(name, ".gguf")) + " -t 1 -p 16 -n 4 -r 1 --json", false);
  ASSERT_EQ(r.rc, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_GT(j["pp_tok_per_s"].get<double>(), 0.0);
  EXPECT_GT(j["tg_tok_per_s"].get<double>(), 0.0);
  EXPECT_GT(j["read_bandwidth_gb_per_s"].get<double>(), 0.0);
  EXPECT_GT(j["bandwidth_gb_per_s"].get<double>(), 0.0);
  EXPECT_GT(j["roofline_fraction"].get<double>(), 0.0);
  // 1 row (the decode step the ratios divide by), then K + 1 = 5 and 17 among them.
  std::vector<int> ks;
  for (const auto& v : j["verify"]) ks.push_back(v["k"].get<int>());
  EXPECT_EQ(ks, (std::vector<int>{1, 2, 4, 5, 8, 16, 17}));
  EXPECT_DOUBLE_EQ(j["verify"][0]["ratio_to_decode"].get<double>(), 1.0);
}

TEST(EngineCli, DemoRunsOnTheBundledModels) {
  const fs::path root = SPECSTEER_SOURCE_DIR;
  if (!fs::exists(root / "models/minilamp/generalist.gguf")) GTEST_SKIP() << "bundled models absent";
  auto r = run_cli("demo --records 1 -n 24 -t 1 --methods llm,slm+,specsteer");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("| specsteer |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| llm | "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1.00x"), std::string::npos) << r.out;
}

}  // namespace

namespace {
const std::string kMiniDir = std::string(SPECSTEER_SOURCE_DIR) + "/models/minilamp/";
}

// llm+ (the Generalist with the profile in its prompt) says in generate --json
// that the profile left the device; specsteer stays private; the steering
// candidate settings are echoed and validated.
TEST(EngineCli, GenerateJsonMarksLlmPlusNonPrivate) {
  const std::string base = "generate --slm " + q(kMiniDir + "specialist.gguf") + " --llm " +
                           q(kMiniDir + "generalist.gguf") +
                           " --input 'Generate a review text for a product with description \"budget knife\".'"
                           " --private-context 'My cat Poppy likes knives.' -n 8 -t 1 --json";
  auto plus = run_cli(base + " --method llm+");
  ASSERT_EQ(plus.rc, 0) << plus.out;
  auto j = nlohmann::json::parse(plus.out);
  EXPECT_EQ(j["method"], "llm+");
  EXPECT_EQ(j["private"], false);
  EXPECT_NE(j["privacy_note"].get<std::string>().find("profile"), std::string::npos);
  EXPECT_GT(j["positions_llm"].get<uint64_t>(), 0u);
  EXPECT_EQ(j["positions_slm_plus"].get<uint64_t>(), 0u);
  auto spec = run_cli(base + " --method specsteer --steer-candidates contrast --plausibility 0.2");
  ASSERT_EQ(spec.rc, 0) << spec.out;
  auto s = nlohmann::json::parse(spec.out);
  EXPECT_EQ(s["private"], true);
  EXPECT_FALSE(s.contains("privacy_note"));
  EXPECT_EQ(s["settings"]["steer_candidates"], "contrast");
  EXPECT_DOUBLE_EQ(s["settings"]["plausibility"].get<double>(), 0.2);
  auto bad = run_cli(base + " --method specsteer --steer-candidates nearest");
  EXPECT_NE(bad.rc, 0);
  EXPECT_NE(bad.out.find("contrast or plausible"), std::string::npos) << bad.out;
  bad = run_cli(base + " --method specsteer --plausibility 1.5");
  EXPECT_NE(bad.rc, 0);
  EXPECT_NE(bad.out.find("plausibility"), std::string::npos) << bad.out;
}

TEST(EngineCli, GenerateRefusesWhatEvalRefuses) {
  // Refused before any model loads: the same rules as eval (steer::validate).
  const fs::path root = SPECSTEER_SOURCE_DIR;
  const std::string base = "generate --slm " + q((root / "models/minilamp/specialist.gguf").string()) + " --llm " +
                           q((root / "models/minilamp/generalist.gguf").string()) + " -t 1 ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--input x -n 0", "max_new (-n) must be >= 1"},
      {"--input x --lambda 0", "lambda must be a finite number > 0"},
      {"--input x --beta -1", "beta must be a finite number >= 0"},
      {"--input ''", "--input: the task input x is empty"},
      {"--input x --on-cloud-failure sometimes", "--on-cloud-failure"},
      {"--input x --on-cloud-failure fallback", "--on-cloud-failure needs --cloud"},
      {"--input x --repeat-penalty 0", "repeat_penalty must be a finite number > 0"},
      {"--input x --repeat-last-n -2", "repeat_last_n must be >= -1"},
      {"--input x --top-p 0", "top_p must be in (0, 1]"},
      {"--input x --min-p 1", "min_p must be in [0, 1)"},
      {"--input x --temp -1", "temperature must be >= 0"},
  };
  for (const auto& [args, says] : cases) {
    auto r = run_cli(base + args);
    EXPECT_NE(r.rc, 0) << args;
    EXPECT_NE(r.out.find(says), std::string::npos) << args << ": " << r.out;
  }
}

TEST(EngineCli, SharedOptionNamesAcrossCommands) {
  const fs::path root = SPECSTEER_SOURCE_DIR;
  const std::string slm = q((root / "models/minilamp/specialist.gguf").string());
  const std::string llm = q((root / "models/minilamp/generalist.gguf").string());
  if (!fs::exists(root / "models/minilamp/specialist.gguf")) GTEST_SKIP() << "bundled models absent";
  const fs::path dir = fs::temp_directory_path() / ("specsteer-opts-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string x = "A review of a quiet cafe";
  std::ofstream(dir / "x.txt") << x;
  auto tokens = [](const std::string& out) {
    const auto j = nlohmann::json::parse(out, nullptr, false);
    return j.is_discarded() ? nlohmann::json() : j["tokens"];
  };
  // generate: -p TEXT, -p - (stdin), -f FILE and --input give the same x.
  const std::string gen = "generate --slm " + slm + " --llm " + llm + " -n 6 -s 3 -t 1 --json ";
  const auto by_flag = run_cli(gen + "-p " + q(x), false);
  ASSERT_EQ(by_flag.rc, 0) << by_flag.out;
  EXPECT_FALSE(tokens(by_flag.out).is_null()) << by_flag.out;
  EXPECT_EQ(tokens(run_cli(gen + "--input " + q(x), false).out), tokens(by_flag.out));
  EXPECT_EQ(tokens(run_cli(gen + "-f " + q((dir / "x.txt").string()), false).out), tokens(by_flag.out));
  EXPECT_EQ(tokens(run_cli(gen + "-p - < " + q((dir / "x.txt").string()), false).out), tokens(by_flag.out));
  EXPECT_NE(run_cli(gen + "-p " + q(x) + " -f " + q((dir / "x.txt").string())).rc, 0) << "-p and -f together";
  // Without --json the text is streamed as decided: the same text, then a newline.
  const std::string gen_plain = "generate --slm " + slm + " --llm " + llm + " -n 6 -s 3 -t 1 -p " + q(x);
  const auto j = nlohmann::json::parse(by_flag.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(run_cli(gen_plain, false).out, j["text"].get<std::string>() + "\n");
  EXPECT_NE(run_cli(gen).out.find("give the prompt"), std::string::npos);
  // The steering vector's size is --steer-k; --topk still works and warns.
  const auto old = run_cli(gen + "-p " + q(x) + " --topk 8");
  EXPECT_EQ(old.rc, 0) << old.out;
  EXPECT_NE(old.out.find("--topk is deprecated, use --steer-k"), std::string::npos) << old.out;
  EXPECT_EQ(run_cli(gen + "-p " + q(x) + " --steer-k 8").rc, 0);
  // run: -p - and -f read the prompt; -n 0 is refused as everywhere.
  const std::string run = "run -m " + slm + " -n 4 -s 1 -t 1 --json ";
  const auto r1 = run_cli(run + "-p " + q(x), false);
  ASSERT_EQ(r1.rc, 0) << r1.out;
  EXPECT_EQ(tokens(run_cli(run + "-f " + q((dir / "x.txt").string()), false).out), tokens(r1.out));
  EXPECT_EQ(tokens(run_cli(run + "-p - < " + q((dir / "x.txt").string()), false).out), tokens(r1.out));
  EXPECT_NE(run_cli("run -m " + slm + " -p hi -n 0").out.find("max_new (-n) must be >= 1"), std::string::npos);
  // eval: -n/--n-predict, refused the same way.
  const auto ev = run_cli("eval --data " + q((root / "data/longlamp-sample/review.jsonl").string()) +
                          " --task review --slm " + slm + " --llm " + llm +
                          " --out " + q((dir / "ev").string()) + " -n 0");
  EXPECT_NE(ev.rc, 0);
  EXPECT_NE(ev.out.find("max_new (-n) must be >= 1"), std::string::npos) << ev.out;
  // The repeat penalty has the same names and rules in run, generate, eval and edge serve.
  for (const std::string& cmd :
       {"run -m " + slm + " -p hi", gen + "-p hi",
        "eval --data " + q((root / "data/longlamp-sample/review.jsonl").string()) + " --task review --slm " + slm +
            " --llm " + llm + " --out " + q((dir / "ev2").string()),
        "edge serve --slm " + slm + " --llm " + llm + " --port 0"}) {
    const auto bad = run_cli(cmd + " --repeat-penalty -1");
    EXPECT_NE(bad.rc, 0) << cmd;
    EXPECT_NE(bad.out.find("repeat_penalty must be a finite number > 0"), std::string::npos) << cmd << ": " << bad.out;
  }
  // Every help shows defaults.
  for (const char* cmd : {"run", "generate", "eval", "demo", "cloud serve", "edge serve"}) {
    const auto h = run_cli(std::string(cmd) + " --help");
    EXPECT_NE(h.out.find("INT=0"), std::string::npos) << cmd << " help without defaults? " << h.out.substr(0, 400);
  }
  fs::remove_all(dir);
}

TEST(EngineCli, RunStopStringsAndRepeatPenalty) {
  const std::string name = "tiny-qwen3-f32";
  if (!fs::exists(golden(name, ".gguf"))) GTEST_SKIP() << "fixtures absent";
  const std::string base = "run -m " + q(golden(name, ".gguf")) + " -p " + q("Tell me about cats") + " -n 24 -t 1 ";
  auto text = [](const std::string& out) {
    const auto j = nlohmann::json::parse(out, nullptr, false);
    return j.is_discarded() ? std::string("<not json>") : j["text"].get<std::string>();
  };
  const std::string full = text(run_cli(base + "--json", false).out);
  ASSERT_GE(full.size(), 12u);
  const std::string stop = full.substr(full.size() / 2, 3);
  EXPECT_EQ(text(run_cli(base + "--json -r " + q(stop), false).out), full.substr(0, full.find(stop)));
  // Streaming prints the same, nothing past the stop string.
  EXPECT_EQ(run_cli(base + "-r " + q(stop), false).out, full.substr(0, full.find(stop)) + "\n");
  // The repeat penalty changes greedy output and is deterministic; 1 is off.
  const std::string pen = text(run_cli(base + "--json --repeat-penalty 3", false).out);
  EXPECT_NE(pen, full);
  EXPECT_EQ(text(run_cli(base + "--json --repeat-penalty 3", false).out), pen);
  EXPECT_EQ(text(run_cli(base + "--json --repeat-penalty 1", false).out), full);
  EXPECT_NE(run_cli(base + "--repeat-penalty 0").out.find("repeat_penalty must be"), std::string::npos);
  EXPECT_NE(run_cli(base + "-r ''").out.find("a stop string is empty"), std::string::npos);
  // --system frames the prompt: another continuation, deterministic.
  const std::string sys = text(run_cli(base + "--json --system " + q("You are a pirate."), false).out);
  EXPECT_NE(sys, full);
  EXPECT_EQ(text(run_cli(base + "--json --system " + q("You are a pirate."), false).out), sys);
}
