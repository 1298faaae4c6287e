#pragma once
// `specsteer eval`: a LongLaMP-style run of every method (and every setting of
// the sweeps, e.g. specsteer's lambdas) on every record, resumable, writing results.jsonl, summary.md,
// summary.csv, tradeoff.svg and manifest.json into one directory.
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "eval/report.h"
#include "steer/generate.h"
#include "steer/settings.h"
#include "steer/transport.h"

namespace specsteer::eval {

struct EvalConfig {
  std::string data, task, slm_path, llm_path, out_dir;
  std::vector<std::string> methods = {"llm", "slm", "slm+", "sd", "lightcosteer", "costeer", "specsteer"};  // and llm+
  // Sweeps: one job (results row per record, summary row) per combination of
  // the values that apply to a method: lambda (specsteer), beta (specsteer,
  // lightcosteer), draft K (specsteer, sd), steering candidate rule
  // (specsteer, lightcosteer; "contrast" or "plausible").
  std::vector<double> lambdas = {0.5};
  std::vector<double> betas = {1.0};
  std::vector<int> drafts = {4};
  // Adaptive draft length (steer::Settings::draft_min/draft_p_min; --draft
  // is then the most per block) and pipelined drafting, for every job.
  int draft_min = 1;
  double draft_p_min = 0;
  bool pipeline = true;
  // A steered bonus token after every block accepted whole (Settings::bonus;
  // not in the paper's Algorithm 1, so off by default).
  bool bonus = false;
  std::vector<std::string> steer_candidates = {std::string(steer::candidates_name(steer::Settings{}.steer_candidates))};
  double plausibility = steer::Settings{}.plausibility;  // gamma of the plausible rule
  int top_k = 32;
  int limit = 0;  // 0 = all records
  int max_new = 128;
  uint64_t seed = 0;  // generation i of record r uses seed + r (records in file order)
  int retrieve_k = 4;
  bool rouge_stemmer = false;
  int n_threads = 0;
  int repeats = 1;
  // The Specialist (SLM+): "rag" (retrieved profile in the prompt), "lora"
  // (an adapter, x alone) or "lora+rag"; lora: FILE[:SCALE] adapters of the SLM.
  std::string specialist = "rag";
  std::vector<std::string> lora;  // runs per generation; the row keeps the one with the median decode time
  std::string lora_dir;  // per-user adapters: DIR/<user id>.gguf (scale 1), after `lora`
  bool byte_level = false;  // the cross-tokenizer path even on a same-vocabulary pair
  sampling::RepeatPenalty repeat{};  // on the edge's rows (off by default: the paper's greedy decoding)
  std::string cloud;  // HOST:PORT, recorded in the manifest
  // Creates the link for one generation of a cloud method; empty: the cloud
  // runs in this process (in-process transport, real encoded bytes).
  std::function<std::unique_ptr<steer::Transport>()> cloud_transport;
  std::vector<std::string> command_line;  // recorded in the manifest
  // Real-shaped models (e.g. `gguf synth`) to replay the run's schedules on:
  // summary.md and tradeoff.svg then show replayed speedups, not this pair's.
  std::string replay_edge, replay_llm;
};

struct EvalOutcome {
  std::vector<SummaryRow> summary;
  size_t generated = 0, skipped = 0, records = 0;
};

// Runs one generation `repeats` times (same seed, same tokens: the repeats
// only steady the clock) and returns the run with the median decode time.
// Throws Error naming `what` when the cloud failed in any run.
steer::GenerationResult generate_median(const steer::Models& models, const steer::GenerateRequest& req, int repeats,
                                        const std::string& what);

// Runs the evaluation. `log` gets the progress bar (tty) or log lines.
// Throws Error for bad configuration or data, naming the flag, file and line;
// a rerun with the same out_dir skips finished rows but refuses settings that
// differ from the ones the directory was started with.
EvalOutcome run_eval(const EvalConfig& cfg, FILE* log, bool tty);

}  // namespace specsteer::eval
