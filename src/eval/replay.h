#pragma once
// `specsteer replay`: re-executes recorded generation schedules
// (steer/schedule.h) on any models, to measure what a method costs at
// deployment sizes on this hardware: the edge model's prompt prefill and
// draft passes, the cloud's prefill of x and (K+1)-row verification passes
// on the LLM and SLM-, the KV rollbacks, the cloud's ratio tests and
// steering vectors, and the LLM decoding the same number of tokens alone.
// Token ids are drawn from a seeded generator: a dense model's compute does
// not depend on which ids flow. Network time is modelled, not slept:
// round-trip time x exchanges.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"
#include "steer/schedule.h"
#include "steer/settings.h"

namespace specsteer::eval {

enum class ReplayRole { Both, Edge, Cloud };
ReplayRole parse_replay_role(const std::string& s);  // "both" | "edge" | "cloud"

struct ReplayModels {
  std::shared_ptr<const Model> edge;       // SLM+ (needed unless role is Cloud)
  std::shared_ptr<const Model> llm;        // Generalist (needed unless role is Edge)
  std::shared_ptr<const Model> cloud_slm;  // SLM- (needed unless role is Edge, for methods other than sd)
};

struct ReplayParams {
  ReplayRole role = ReplayRole::Both;
  double lambda = 0.5, beta = 1.0;  // only shape the arithmetic, not the schedule
  int top_k = 32;
  // The steering-vector rule the cloud computes (steer::Settings' default: plausible).
  steer::Settings steering{};
  steer::CoSteerParams costeer{};
  uint64_t seed = 0;  // token ids
  KvType kv_type = KvType::F16;  // what deployments run (and llama.cpp's default)
  // Edge and cloud on different machines (the deployment): the edge's prompt
  // prefill overlaps the cloud's prefill of x, as run_edge does, and the
  // passes the edge ran ahead (pipelined drafting) overlap the cloud's
  // verification and the round trip; false sums them (both on one machine,
  // as an in-process run on shared cores).
  bool two_machines = true;
};

// Measured seconds of one schedule's replay, per side and term.
struct ReplayTimes {
  uint64_t tokens = 0, rounds = 0, exchanges = 0, drafted = 0, accepted = 0;
  double edge_prefill_s = 0, edge_forward_s = 0, edge_sample_s = 0;
  double cloud_prefill_s = 0, cloud_llm_s = 0, cloud_slm_s = 0, cloud_steer_s = 0;
  // Of edge_forward_s + edge_sample_s: the edge's work ahead (pipelined
  // drafting, while the cloud verified).
  double edge_ahead_s = 0;
  // Per round of the schedule (one replay; not summed by +=): the edge's
  // work before the exchange and after the verdict, its work ahead, the
  // cloud's work. Filled for the timed role(s).
  std::vector<double> round_edge, round_ahead, round_cloud;
  double edge_fallback_s = 0;  // passes after a cloud failure
  double edge_s() const { return edge_prefill_s + edge_forward_s + edge_sample_s; }
  double cloud_s() const { return cloud_prefill_s + cloud_llm_s + cloud_slm_s + cloud_steer_s; }
  ReplayTimes& operator+=(const ReplayTimes& o);
};

// Replays one schedule of a cloud method (sd, specsteer, lightcosteer,
// costeer) on the models of the timed role(s). Throws Error when the
// schedule is inconsistent (a pass past the cache end, a position beyond a
// model's context) or a model the role needs is missing.
ReplayTimes replay_schedule(const steer::Schedule& s, const ReplayModels& m, const ReplayParams& p);

// The LLM decoding alone from a prompt of `prompt` tokens, as `llm` runs:
// prefill, then one pass per further token, sampling each. Returns the
// elapsed time after n tokens for n = 0..tokens (index 0: the prefill).
std::vector<double> time_llm_alone(const std::shared_ptr<const Model>& llm, uint32_t prompt, uint64_t tokens, const ReplayParams& p);

// One pass over each model to fault in weights and warm caches before timing.
void warm_up(const std::shared_ptr<const Model>& m);

// One recorded generation to replay: its record (generations of one record
// share the LLM-alone run) and its row label ("specsteer lambda=0.5").
struct TraceEntry {
  std::string record, label;
  steer::Schedule schedule;
};

// Reads results.jsonl rows or `generate --json` objects (one per line) that
// carry a "trace", keeping cloud methods whose method is in `methods` (empty:
// all) and, for specsteer, whose lambda is in `lambdas` (empty: all); at most
// `limit` records (0: all). Throws Error naming path:line on malformed input.
std::vector<TraceEntry> read_traces(const std::string& path, const std::vector<std::string>& methods,
                                    const std::vector<double>& lambdas, size_t limit);

// Totals of one label at one round-trip time, summed over its records.
struct ReplayRow {
  std::string label;
  double rtt_ms = 0;
  size_t records = 0;
  ReplayTimes t;
  double t_network_s = 0;      // rtt x (session open + one exchange per round)
  // Two machines: edge work ahead hidden behind the cloud's verification and
  // the round trip (the rest of it delays the round).
  double t_hidden_s = 0;
  double t_prefill_s = 0;      // the prefills on the critical path (overlapped or summed, see ReplayParams)
  // Prefill + edge and cloud decode work + network, for the timed role(s);
  // on two machines a round costs the edge's serial work + max(round trip +
  // the cloud's work, the edge's work ahead).
  double t_total_s = 0;
  double t_llm_alone_s = -1;   // the LLM alone on the same x and token count, + one rtt; < 0: not timed
  double t_llm_alone_prefill_s = 0;
  double speedup() const { return t_llm_alone_s > 0 && t_total_s > 0 ? t_llm_alone_s / t_total_s : 0; }
  // The same after the prompts: generation time only (paper's tokens/s).
  double decode_speedup() const;
};

// Replays every entry once (records in order, each record's LLM-alone run
// first, then its generations), then forms one row per (label, rtt).
// `progress` (may be empty) is called after each entry with (done, total).
std::vector<ReplayRow> replay_traces(const std::vector<TraceEntry>& entries, const ReplayModels& m,
                                     const ReplayParams& p, const std::vector<double>& rtts_ms,
                                     const std::function<void(size_t, size_t)>& progress = {});

// eval --replay-edge/--replay-llm: every summary row's speedup replayed on
// the models in `m` (RTT 0, prefills included), in place of the measured
// one. Cloud methods: their recorded schedules (replay_traces); llm: 1;
// slm / slm+ / llm+: the edge model (slm, slm+) or the LLM (llm+) decoding
// alone from the recorded prompt, against the LLM alone from x, same tokens.
// Rows whose generations left no replayable schedule keep their measured
// speedup (cross-tokenizer runs). Returns how many rows were replayed.
struct ResultRow;
struct SummaryRow;
size_t replay_speedups(const std::vector<ResultRow>& rows, std::vector<SummaryRow>& summary, const ReplayModels& m,
                       const ReplayParams& p);

// `replay --plot`: speedup against RTT per row label (lines), and the
// seconds per round of each label at the first RTT, stacked by where they go
// (edge passes and sampling, the cloud's LLM, SLM- and arithmetic, network).
std::string replay_svg(const std::vector<ReplayRow>& rows, const std::string& title);

}  // namespace specsteer::eval
