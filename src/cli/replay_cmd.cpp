// specsteer replay: recorded schedules re-executed on other models (e.g.
// real-shaped `gguf synth` pairs), against the LLM decoding alone.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "common/error.h"
#include "eval/replay.h"

namespace specsteer::cli {
namespace {

struct ReplayOpts {
  std::string trace, edge_model, llm, cloud_slm, role = "both", kv = "f16", plot;
  std::vector<std::string> methods;
  std::vector<double> lambdas, rtts{0};
  size_t limit = 0;
  int edge_threads = 0, cloud_threads = 0, top_k = 32;
  double beta = 1.0;
  uint64_t seed = 0;
  bool json = false, same_machine = false;
};

void print_table(const std::vector<eval::ReplayRow>& rows, eval::ReplayRole role) {
  std::printf("| method | rtt ms | records | tokens | rounds | accept | edge s | ahead s | cloud s | prefill s | network s | hidden s | total s | llm alone s | speedup | decode speedup |\n");
  std::printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (const auto& r : rows) {
    char acc[16] = "-", alone[24] = "-", sp[16] = "-", dsp[16] = "-";
    if (r.t.drafted) std::snprintf(acc, sizeof acc, "%.0f%%", 100.0 * r.t.accepted / r.t.drafted);
    if (r.t_llm_alone_s >= 0) {
      std::snprintf(alone, sizeof alone, "%.3f", r.t_llm_alone_s);
      if (role == eval::ReplayRole::Both) {
        std::snprintf(sp, sizeof sp, "%.2fx", r.speedup());
        std::snprintf(dsp, sizeof dsp, "%.2fx", r.decode_speedup());
      }
    }
    std::printf("| %s | %g | %zu | %llu | %llu | %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %s | %s | %s |\n",
                r.label.c_str(), r.rtt_ms, r.records, static_cast<unsigned long long>(r.t.tokens),
                static_cast<unsigned long long>(r.t.rounds), acc, r.t.edge_s(), r.t.edge_ahead_s, r.t.cloud_s(),
                r.t_prefill_s, r.t_network_s, r.t_hidden_s, r.t_total_s, alone, sp, dsp);
  }
  // Where the time goes (RTT-independent terms, once per label).
  std::printf("\n| method | edge prefill s | edge passes s | edge sampling s | cloud prefill s | cloud LLM s | cloud SLM- s | cloud arithmetic s | llm alone prefill s |\n");
  std::printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  std::string last;
  for (const auto& r : rows) {
    if (r.label == last) continue;
    last = r.label;
    std::printf("| %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f |\n", r.label.c_str(), r.t.edge_prefill_s,
                r.t.edge_forward_s, r.t.edge_sample_s, r.t.cloud_prefill_s, r.t.cloud_llm_s, r.t.cloud_slm_s,
                r.t.cloud_steer_s, r.t_llm_alone_prefill_s);
  }
  std::printf("\nnetwork = rtt x (session open + one exchange per round); ahead = the edge's drafting while the cloud "
              "verified (pipelined; part of edge s); total = prefill (edge and cloud prefills overlap unless "
              "--same-machine) + decode, where on two machines a round costs the edge's work before and after the "
              "exchange + max(rtt + the cloud's work, the edge's work ahead) and hidden is the work ahead that "
              "overlap took off the critical path (--same-machine: every term summed, hidden 0); llm alone = the LLM decoding the "
              "same tokens from the same x, + one rtt; speedup = llm alone / total; decode speedup leaves out the "
              "prefills on both sides.\n");
}

void run_replay(const ReplayOpts& o) {
  eval::ReplayParams p;
  p.role = eval::parse_replay_role(o.role);
  if (o.kv == "f32") p.kv_type = KvType::F32;
  else if (o.kv == "f16") p.kv_type = KvType::F16;
  else throw Error("--kv-type must be f32 or f16, not '" + o.kv + "'");
  if (o.top_k < 1) throw Error("--topk must be >= 1");
  p.beta = o.beta;
  p.top_k = o.top_k;
  p.seed = o.seed;
  p.two_machines = !o.same_machine;
  for (double r : o.rtts)
    if (!(r >= 0) || r > 1e6) throw Error("--rtt-ms: " + std::to_string(r) + " is not a round-trip time in [0, 1e6]");
  const bool edge_role = p.role != eval::ReplayRole::Cloud, cloud_role = p.role != eval::ReplayRole::Edge;
  if (edge_role && o.edge_model.empty()) throw Error("--edge-model is required unless --role cloud");
  if (cloud_role && o.llm.empty()) throw Error("--llm is required unless --role edge");

  const auto entries = eval::read_traces(o.trace, o.methods, o.lambdas, o.limit);
  eval::ReplayModels m;
  if (edge_role) m.edge = Model::load(o.edge_model, {.n_threads = o.edge_threads});
  if (cloud_role) {
    m.llm = Model::load(o.llm, {.n_threads = o.cloud_threads});
    const std::string slm = o.cloud_slm.empty() ? o.edge_model : o.cloud_slm;
    if (slm.empty()) throw Error("--cloud-slm is required with --role cloud (SLM- for specsteer, lightcosteer, costeer)");
    m.cloud_slm = (slm == o.edge_model && m.edge && o.edge_threads == o.cloud_threads)
                      ? m.edge
                      : Model::load(slm, {.n_threads = o.cloud_threads});
  }
  const bool tty = ::isatty(2);
  const auto rows = eval::replay_traces(entries, m, p, o.rtts, [&](size_t done, size_t total) {
    if (tty) std::fprintf(stderr, "\rreplayed %zu/%zu", done, total);
    if (tty && done == total) std::fprintf(stderr, "\n");
  });
  if (!o.plot.empty()) {
    if (p.role != eval::ReplayRole::Both) throw Error("--plot needs both roles timed (--role both): it plots speedups");
    std::ofstream f(o.plot);
    const auto name = [](const std::string& path) { return path.substr(path.rfind('/') + 1); };
    f << eval::replay_svg(rows, "Replayed on edge " + name(o.edge_model) + " + cloud " + name(o.llm));
    if (!f) throw Error("--plot: cannot write '" + o.plot + "'");
  }
  if (!o.json) {
    print_table(rows, p.role);
    return;
  }
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : rows) {
    nlohmann::json j = {{"label", r.label},
                        {"rtt_ms", r.rtt_ms},
                        {"records", r.records},
                        {"tokens", r.t.tokens},
                        {"rounds", r.t.rounds},
                        {"drafted", r.t.drafted},
                        {"accepted", r.t.accepted},
                        {"t_edge_s", r.t.edge_s()},
                        {"t_cloud_s", r.t.cloud_s()},
                        {"t_network_s", r.t_network_s},
                        {"t_prefill_s", r.t_prefill_s},
                        {"t_total_s", r.t_total_s},
                        {"t_hidden_s", r.t_hidden_s},
                        {"two_machines", p.two_machines},
                        {"breakdown",
                         {{"edge_prefill_s", r.t.edge_prefill_s},
                          {"edge_forward_s", r.t.edge_forward_s},
                          {"edge_sample_s", r.t.edge_sample_s},
                          {"edge_ahead_s", r.t.edge_ahead_s},
                          {"cloud_prefill_s", r.t.cloud_prefill_s},
                          {"cloud_llm_s", r.t.cloud_llm_s},
                          {"cloud_slm_s", r.t.cloud_slm_s},
                          {"cloud_steer_s", r.t.cloud_steer_s}}},
                        {"role", o.role}};
    if (r.t_llm_alone_s >= 0) {
      j["t_llm_alone_s"] = r.t_llm_alone_s;
      j["t_llm_alone_prefill_s"] = r.t_llm_alone_prefill_s;
    } else {
      j["t_llm_alone_s"] = nullptr;
    }
    if (p.role == eval::ReplayRole::Both) {
      j["speedup"] = r.speedup();
      j["decode_speedup"] = r.decode_speedup();
    } else {
      j["speedup"] = nullptr;
      j["decode_speedup"] = nullptr;
    }
    out.push_back(std::move(j));
  }
  std::printf("%s\n", out.dump(1).c_str());
}

Registrar reg("replay", [](CLI::App& root) {
  auto o = std::make_shared<ReplayOpts>();
  auto* sub = root.add_subcommand(
      "replay", "re-run recorded generation schedules (eval results.jsonl / generate --json traces) on other models");
  sub->add_option("--trace", o->trace, "results.jsonl of `eval`, or `generate --json` output (one object per line)")
      ->required();
  sub->add_option("--edge-model", o->edge_model, "the edge's small model (SLM+), e.g. a `gguf synth` qwen3-0.6b");
  sub->add_option("--llm", o->llm, "the cloud's Generalist, e.g. a `gguf synth` qwen3-8b");
  sub->add_option("--cloud-slm", o->cloud_slm, "the cloud's SLM- (default: --edge-model)");
  sub->add_option("--method", o->methods, "methods to replay, comma-separated (default: every cloud method)")
      ->delimiter(',');
  sub->add_option("--lambda", o->lambdas, "specsteer lambdas to replay, comma-separated (default: all)")->delimiter(',');
  sub->add_option("--limit", o->limit, "first N records (0 = all)")->capture_default_str();
  sub->add_option("--plot", o->plot, "write an SVG: speedup against RTT per method, and each method's seconds per round by where they go");
  sub->add_option("--rtt-ms", o->rtts, "round-trip times to model, comma-separated, e.g. 0,20,50")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--edge-threads", o->edge_threads, "edge model threads (0 = physical cores)")->capture_default_str();
  sub->add_option("--cloud-threads", o->cloud_threads, "cloud models' threads (0 = physical cores)")
      ->capture_default_str();
  sub->add_option("--role", o->role, "both | edge | cloud: time one side only (measure each on its own hardware)")
      ->capture_default_str();
  sub->add_option("--kv-type", o->kv, "KV cache type: f32 or f16")->capture_default_str();
  sub->add_option("--beta", o->beta, "steering strength for the cloud arithmetic")->capture_default_str();
  sub->add_option("--topk", o->top_k, "steering-vector entries")->capture_default_str();
  sub->add_option("--seed", o->seed, "seed of the replayed token ids")->capture_default_str();
  sub->add_flag("--same-machine", o->same_machine,
                "edge and cloud share one machine: their prefills, and the edge's drafting ahead and the cloud's "
                "verification, add up instead of overlapping");
  sub->add_flag("--json", o->json, "print a JSON array, one object per method and rtt");
  sub->callback([o] { run_replay(*o); });
});

}  // namespace
}  // namespace specsteer::cli
