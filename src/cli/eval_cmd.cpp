// specsteer eval: the paper's LongLaMP evaluation (tables 2, 4, 10, 11) in one
// command. Parses flags and prints; the run itself is eval::run_eval.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "cli/options.h"
#include "common/error.h"
#include "eval/runner.h"
#ifdef SPECSTEER_HAVE_GRPC
#include "transport/client.h"
#endif

namespace {

struct EvalOpts {
  specsteer::eval::EvalConfig cfg;
  bool quiet = false;
};

specsteer::cli::Registrar reg("eval", [](CLI::App& root) {
  auto o = std::make_shared<EvalOpts>();
  auto& c = o->cfg;
  auto* sub = root.add_subcommand(
      "eval", "Run every method on a LongLaMP-layout dataset; write results.jsonl, summary.md/.csv, tradeoff.svg");
  sub->add_option("--data", c.data, "Records file (JSON array or JSONL: user key, input, output, profile)")
      ->required();
  sub->add_option("--task", c.task, "abstract|review|writing")->required();
  sub->add_option("--slm", c.slm_path, "Small model GGUF (edge SLM+ and cloud SLM-)")->required();
  sub->add_option("--llm", c.llm_path, "Large model GGUF (cloud Generalist)")->required();
  sub->add_option("--out", c.out_dir, "Output directory (rerun with the same one to resume)")->required();
  sub->add_option("--methods", c.methods, "Comma-separated: llm,slm,slm+,llm+,sd,lightcosteer,costeer,specsteer (llm+ sends the profile "
                  "to the Generalist)")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--lambda", c.lambdas, "Comma-separated specsteer thresholds, e.g. 0.1,0.5,1.0")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--beta", c.betas, "Comma-separated steering strengths (Eq. 8; specsteer, lightcosteer)")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--draft", c.drafts, "Comma-separated draft block sizes K (specsteer, sd)")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--draft-min", c.draft_min, "Drafts per block before --draft-p-min may end it")
      ->capture_default_str();
  sub->add_option("--draft-p-min", c.draft_p_min,
                  "Adaptive draft length: a block (of up to --draft) ends where SLM+'s top probability is below P "
                  "(0 = fixed K)")
      ->capture_default_str();
  sub->add_flag("--no-pipeline", [o](int64_t) { o->cfg.pipeline = false; },
                "Draft each block after the previous verdict (the tokens are the same either way)");
  sub->add_flag("--bonus", c.bonus,
                "A steered bonus token (Eq. 8) after every block accepted whole (specsteer, sd; not in the paper's "
                "Algorithm 1)");
  sub->add_option("--steer-k", c.top_k, "Most entries of the steering vector sent on rejection")->capture_default_str();
  specsteer::cli::add_deprecated(sub, "--topk", c.top_k, "--steer-k");
  sub->add_option("--steer-candidates", c.steer_candidates,
                  "Comma-separated steering-vector rules (specsteer, lightcosteer): contrast (paper: top-k of "
                  "h_LLM - beta*h_SLM-), plausible (ids with p_LLM >= gamma * max p_LLM, at most k, same ranking)")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--plausibility", c.plausibility, "gamma of the plausible rule, in [0, 1]")->capture_default_str();
  sub->add_option("--limit", c.limit, "Use the first N records (0 = all)")->capture_default_str();
  sub->add_option("-n,--n-predict,--max-new-tokens", c.max_new, "Tokens to generate per record")
      ->capture_default_str();
  sub->add_option("-s,--seed", c.seed, "Base seed (record i uses seed + i)")->capture_default_str();
  sub->add_option("--retrieve-k", c.retrieve_k, "Profile entries retrieved (BM25) per record")
      ->capture_default_str();
  sub->add_flag("--rouge-stemmer", c.rouge_stemmer, "Porter-stem tokens longer than 3 characters in ROUGE");
  sub->add_option("-t,--threads", c.n_threads, "Threads of the process (0 = physical cores)")->capture_default_str();
  sub->add_option("--specialist", c.specialist, "SLM+: rag (profile in the prompt), lora (adapter, x alone), lora+rag")
      ->capture_default_str();
  sub->add_option("--lora", c.lora, "LoRA adapter of the SLM+ (llama.cpp GGUF), FILE or FILE:SCALE; repeatable");
  sub->add_option("--replay-edge", c.replay_edge,
                  "edge model (e.g. `gguf synth --preset qwen3-0.6b`) to replay the run's schedules on: summary.md and "
                  "tradeoff.svg show speedups replayed on --replay-edge/--replay-llm");
  sub->add_option("--replay-llm", c.replay_llm, "cloud LLM (e.g. `gguf synth --preset qwen3-8b`) for --replay-edge");
  sub->add_option("--lora-dir", c.lora_dir, "per-user LoRA adapters of the SLM+: DIR/<user id>.gguf (scale 1)");
  sub->add_flag("--byte-level", c.byte_level,
                "pair the models through bytes even when they share a vocabulary (the cross-tokenizer path, for "
                "comparison with the token path)");
  sub->add_option("--repeat-penalty", c.repeat.penalty, "penalize the last --repeat-last-n tokens' ids on the edge (1 = off)")
      ->capture_default_str();
  sub->add_option("--repeat-last-n", c.repeat.last_n, "tokens the repeat penalty looks back on (0 = off, -1 = all)")
      ->capture_default_str();
  sub->add_option("--repeats", c.repeats, "Runs per generation (same tokens); timings are the median run's")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  sub->add_option("--cloud", c.cloud, "HOST:PORT of `specsteer cloud serve` (default: cloud in this process)");
  sub->add_flag("--quiet", o->quiet, "Do not print the summary table at the end");
  sub->callback([o] {
    auto& cfg = o->cfg;
    cfg.command_line = {"specsteer", "eval", "--data", cfg.data, "--task", cfg.task, "--slm", cfg.slm_path,
                        "--llm", cfg.llm_path, "--out", cfg.out_dir};
    if (!cfg.cloud.empty()) {
#ifdef SPECSTEER_HAVE_GRPC
      std::string target = cfg.cloud;
      cfg.cloud_transport = [target]() -> std::unique_ptr<specsteer::steer::Transport> {
        specsteer::transport::ClientOptions co;
        co.target = target;
        return std::make_unique<specsteer::transport::GrpcTransport>(co);
      };
#else
      throw specsteer::Error("--cloud " + cfg.cloud +
                             ": this specsteer was built without the gRPC network transport; rebuild with gRPC "
                             "(libgrpc++-dev) or omit --cloud to run the cloud in this process");
#endif
    }
    const bool tty = ::isatty(::fileno(stdout));
    auto outcome = specsteer::eval::run_eval(cfg, stdout, tty);
    std::printf("[eval] %zu generations run, %zu already done; wrote %s/{results.jsonl,summary.md,summary.csv,"
                "tradeoff.svg,manifest.json}\n",
                outcome.generated, outcome.skipped, cfg.out_dir.c_str());
    if (!o->quiet) {
      std::ifstream md(cfg.out_dir + "/summary.md");
      std::cout << "\n" << md.rdbuf();
    }
  });
});

}  // namespace
