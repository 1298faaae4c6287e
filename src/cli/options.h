#pragma once
// Option spellings shared by every command (run, generate, eval, demo, cloud
// serve/load, edge serve), after llama.cpp: -p/--prompt with `-p -` for
// stdin, -f/--file, -n/--n-predict, -s/--seed, -t/--threads, -c/--ctx-size,
// --steer-k for the steering vector's size. Old spellings stay as aliases
// that warn once.
#include <cstdio>
#include <cmath>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

#include <CLI/CLI.hpp>

#include "common/error.h"
#include "steer/settings.h"

namespace specsteer::cli {

// The prompt from -p TEXT, -p - (standard input) or -f FILE; exactly one.
inline std::string resolve_prompt(const std::string& prompt, const std::string& file, bool prompt_given,
                                  const char* prompt_flag = "-p") {
  if (prompt_given && !file.empty()) throw Error(std::string("give ") + prompt_flag + " or -f/--file, not both");
  if (!file.empty()) {
    std::ifstream f(file, std::ios::binary);
    if (!f) throw Error("-f/--file: cannot open '" + file + "'");
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  if (prompt_given && prompt == "-") return std::string(std::istreambuf_iterator<char>(std::cin), {});
  if (!prompt_given) throw Error(std::string("give the prompt: ") + prompt_flag + " TEXT, " + prompt_flag +
                                 " - (standard input) or -f FILE");
  return prompt;
}

// A deprecated spelling that sets the same value and says what replaces it.
template <typename T>
CLI::Option* add_deprecated(CLI::App* app, const std::string& name, T& target, const std::string& replacement) {
  return app->add_option_function<T>(
      name,
      [&target, name, replacement](const T& v) {
        std::fprintf(stderr, "warning: %s is deprecated, use %s\n", name.c_str(), replacement.c_str());
        target = v;
      },
      "deprecated: use " + replacement);
}

// The sampling options of every generating command, with llama.cpp's names
// and defaults (sampling filters apply in sampled mode; the repeat penalty to
// the rows the edge samples from, greedy included).
struct SamplingOptions {
  double temp = 0.0, top_p = 1.0, min_p = 0.0, repeat_penalty = 1.0;
  int top_k = 0, repeat_last_n = 64;

  void add_to(CLI::App* sub) {
    sub->add_option("--temp", temp, "temperature (0 = greedy, the paper's setting)")->capture_default_str();
    sub->add_option("--top-k", top_k, "sampling top-k filter in sampled mode (0 = off)")->capture_default_str();
    sub->add_option("--top-p", top_p, "nucleus filter in sampled mode (1 = off)")->capture_default_str();
    sub->add_option("--min-p", min_p, "min-p filter in sampled mode (0 = off)")->capture_default_str();
    add_repeat_to(sub);
  }
  void add_repeat_to(CLI::App* sub) {
    sub->add_option("--repeat-penalty", repeat_penalty,
                    "penalize the ids of the last --repeat-last-n tokens on the edge (1 = off)")
        ->capture_default_str();
    sub->add_option("--repeat-last-n", repeat_last_n, "tokens the repeat penalty looks back on (0 = off, -1 = all)")
        ->capture_default_str();
  }
  sampling::SamplerParams sampler() const {
    return {.temperature = temp, .top_k = top_k, .top_p = top_p, .min_p = min_p};
  }
  sampling::RepeatPenalty repeat() const { return {.penalty = repeat_penalty, .last_n = repeat_last_n}; }
  // Fills the settings' sampler and repeat penalty; steer::validate refuses bad values.
  void apply(steer::Settings& s) const {
    s.sampler = sampler();
    s.repeat = repeat();
  }
};

// Draft length and pipelining, with llama.cpp's names: --draft K fixes the
// block length; --draft-max N lets blocks grow to N and end early where SLM+
// is unsure (--draft-p-min, default 0.75 with --draft-max, after
// --draft-min drafts); --no-pipeline drafts the next block only after the
// verdict (the tokens are the same either way).
struct DraftOptions {
  int draft = 4, draft_max = 0, draft_min = 1;
  double draft_p_min = -1;  // < 0: not given
  bool no_pipeline = false;

  void add_to(CLI::App* sub) {
    sub->add_option("--draft", draft, "draft length K (fixed; see --draft-max)")->capture_default_str();
    sub->add_option("--draft-max", draft_max,
                    "adaptive draft length: blocks of up to N drafts, ended early where SLM+'s most probable next "
                    "token is below --draft-p-min (0 = off, --draft fixes K)")
        ->capture_default_str();
    sub->add_option("--draft-min", draft_min, "drafts per block before --draft-p-min may end it")
        ->capture_default_str();
    sub->add_option("--draft-p-min", draft_p_min,
                    "end a block where SLM+'s top probability is below P (default 0.75 with --draft-max, else 0 = "
                    "never)");
    sub->add_flag("--no-pipeline", no_pipeline,
                  "draft each block after the previous verdict (default: draft it while the cloud verifies)");
  }
  void apply(steer::Settings& s) const {
    s.draft = draft_max > 0 ? draft_max : draft;
    s.draft_min = draft_min;
    s.draft_p_min = draft_p_min >= 0 ? draft_p_min : draft_max > 0 ? 0.75 : 0.0;
    s.pipeline = !no_pipeline;
  }
};

// --cache-ram MiB (llama-server's name) as bytes; 0 turns the prefix cache off.
inline uint64_t cache_ram_bytes(double mib) {
  if (!std::isfinite(mib) || mib < 0 || mib > 1 << 24) throw Error("--cache-ram must be a number of MiB in [0, 16777216] (0 = off)");
  return static_cast<uint64_t>(mib * 1024.0 * 1024.0);
}

// --port-file of the servers: written whole, then renamed, so a reader
// (a test, a supervisor) never sees half a number.
inline void write_port_file(const std::string& path, int port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    f << port << "\n";
    if (!f) throw Error("--port-file: cannot write '" + tmp + "'");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw Error("--port-file: cannot rename to '" + path + "'");
}

}  // namespace specsteer::cli
