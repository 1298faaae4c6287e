#include "eval/replay.h"

#include "eval/report.h"
#include "eval/results.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "common/error.h"
#include "common/timer.h"
#include "eval/schedule_json.h"
#include "sampling/sampling.h"
#include "steer/formulas.h"

namespace specsteer::eval {

using steer::EvalSpan;
using steer::Schedule;

ReplayRole parse_replay_role(const std::string& s) {
  if (s == "both") return ReplayRole::Both;
  if (s == "edge") return ReplayRole::Edge;
  if (s == "cloud") return ReplayRole::Cloud;
  throw Error("--role: '" + s + "' is not a role (both, edge, cloud)");
}

ReplayTimes& ReplayTimes::operator+=(const ReplayTimes& o) {
  tokens += o.tokens;
  rounds += o.rounds;
  exchanges += o.exchanges;
  drafted += o.drafted;
  accepted += o.accepted;
  edge_prefill_s += o.edge_prefill_s;
  edge_forward_s += o.edge_forward_s;
  edge_sample_s += o.edge_sample_s;
  cloud_prefill_s += o.cloud_prefill_s;
  cloud_llm_s += o.cloud_llm_s;
  cloud_slm_s += o.cloud_slm_s;
  cloud_steer_s += o.cloud_steer_s;
  edge_ahead_s += o.edge_ahead_s;
  edge_fallback_s += o.edge_fallback_s;
  return *this;
}

namespace {

// Seeded token ids in [0, n_vocab).
class Ids {
 public:
  Ids(uint64_t seed, int n_vocab) : rng_(seed, 7), n_vocab_(static_cast<uint64_t>(n_vocab)) {}
  const std::vector<int32_t>& next(size_t n) {
    buf_.resize(n);
    for (auto& id : buf_) id = static_cast<int32_t>(rng_.next_u64() % n_vocab_);
    return buf_;
  }

 private:
  sampling::Rng rng_;
  uint64_t n_vocab_;
  std::vector<int32_t> buf_;
};

// The context a model needs for a prompt and a list of passes.
int context_needed(uint32_t prompt, const std::vector<const std::vector<EvalSpan>*>& lists) {
  uint64_t need = prompt;
  for (const auto* l : lists)
    for (const EvalSpan& s : *l) need = std::max<uint64_t>(need, uint64_t{s.pos} + s.rows);
  return static_cast<int>(std::max<uint64_t>(need, 1));
}

Sequence make_sequence(const std::shared_ptr<const Model>& m, int n_ctx, const ReplayParams& p, const char* what) {
  if (n_ctx > m->config().n_ctx_train)
    throw Error(std::string("replay: the schedule needs ") + std::to_string(n_ctx) + " positions on the " + what +
                " but " + m->path() + " has a context of " + std::to_string(m->config().n_ctx_train));
  return Sequence(m, {.n_ctx = n_ctx, .kv_type = p.kv_type});
}

// One pass of a schedule: rollback to span.pos, then append span.rows ids.
std::span<const float> run_pass(Sequence& seq, const EvalSpan& span, Ids& ids, bool all_logits, const char* what) {
  if (seq.size() < span.pos)
    throw Error(std::string("replay: inconsistent schedule: a ") + what + " pass at position " +
                std::to_string(span.pos) + " but the cache holds " + std::to_string(seq.size()) + " tokens");
  seq.truncate(span.pos);
  return seq.eval(ids.next(span.rows), all_logits);
}

const sampling::SamplerParams kGreedy{};

// The decode phase of one replayed schedule at a round-trip time: its
// critical path and the edge work ahead it hid. Both roles, two machines: a
// round costs the edge's serial work + max(rtt + the cloud's work, the
// edge's work ahead); one machine, or one role timed: the sum of the timed
// work (+ rtt per exchange).
std::pair<double, double> decode_path(const ReplayTimes& t, const ReplayParams& p, double rtt_s) {
  const bool edge = p.role != ReplayRole::Cloud, cloud = p.role != ReplayRole::Edge;
  double total = edge ? t.edge_fallback_s : 0, hidden = 0;
  const size_t n = static_cast<size_t>(t.rounds);
  auto at = [](const std::vector<double>& v, size_t i) { return i < v.size() ? v[i] : 0.0; };
  for (size_t i = 0; i < n; ++i) {
    const double e = edge ? at(t.round_edge, i) : 0, ahead = edge ? at(t.round_ahead, i) : 0;
    const double c = cloud ? at(t.round_cloud, i) : 0;
    if (edge && cloud && p.two_machines) {
      total += e + std::max(rtt_s + c, ahead);
      hidden += std::min(rtt_s + c, ahead);
    } else {
      total += e + ahead + c + rtt_s;
    }
  }
  return {total, hidden};
}

}  // namespace

void warm_up(const std::shared_ptr<const Model>& m) {
  ReplayParams p;
  Sequence seq = make_sequence(m, 8, p, "model");
  Ids ids(0, m->config().n_vocab);
  seq.eval(ids.next(4), true);
  seq.eval(ids.next(1), false);
}

ReplayTimes replay_schedule(const Schedule& s, const ReplayModels& m, const ReplayParams& p) {
  const std::string& method = s.method;
  const bool sd = method == "sd", specsteer = method == "specsteer", light = method == "lightcosteer",
             costeer = method == "costeer";
  if (!sd && !specsteer && !light && !costeer)
    throw Error("replay: method '" + method + "' does not use the cloud (replay sd, specsteer, lightcosteer, costeer)");
  ReplayTimes t;
  t.tokens = s.tokens;
  t.rounds = s.rounds.size();
  t.exchanges = s.exchanges();
  for (const auto& r : s.rounds) {
    t.drafted += r.drafted;
    t.accepted += r.accepted;
  }

  if (p.role != ReplayRole::Cloud) {
    if (!m.edge) throw Error("replay: the edge role needs --edge-model");
    std::vector<const std::vector<EvalSpan>*> lists{&s.fallback};
    for (const auto& r : s.rounds) {
      lists.push_back(&r.edge);
      lists.push_back(&r.edge_ahead);
    }
    Sequence seq = make_sequence(m.edge, context_needed(s.edge_prompt, lists), p, "edge model");
    const int V = m.edge->config().n_vocab;
    Ids ids(p.seed, V);
    Stopwatch pre;
    auto row = seq.eval(ids.next(std::max<uint32_t>(s.edge_prompt, 1)), false);
    t.edge_prefill_s = pre.seconds();
    std::vector<float> cloud_logprobs;  // costeer's fusion reads two full-vocabulary vectors
    auto sample = [&](std::span<const float> logits, bool fuse) {
      Stopwatch sw;
      if (costeer && fuse) {
        if (cloud_logprobs.empty()) {
          const auto lp = sampling::log_softmax(logits);
          cloud_logprobs.assign(lp.begin(), lp.end());
        }
        (void)steer::costeer_player(cloud_logprobs, cloud_logprobs, logits, p.costeer);
      } else {
        (void)sampling::make_distribution(logits, kGreedy);
      }
      t.edge_sample_s += sw.seconds();
    };
    auto passes = [&](const std::vector<EvalSpan>& spans) {
      Stopwatch round;
      for (const EvalSpan& span : spans) {
        Stopwatch sw;
        row = run_pass(seq, span, ids, false, "edge");
        t.edge_forward_s += sw.seconds();
        sample(row, false);
      }
      return round.seconds();
    };
    for (const auto& r : s.rounds) {
      // Drafting samples once per pass (the first draft from the row already held).
      double serial = passes(r.edge);
      const double ahead = passes(r.edge_ahead);
      Stopwatch sw;
      if (r.recovery || r.bonus) sample(row, true);
      serial += sw.seconds();
      t.edge_ahead_s += ahead;
      t.round_edge.push_back(serial);
      t.round_ahead.push_back(ahead);
    }
    t.edge_fallback_s = passes(s.fallback);
  }

  if (p.role != ReplayRole::Edge) {
    const bool uses_slm = s.slm_prompt > 0;
    if (!m.llm) throw Error("replay: the cloud role needs --llm");
    if (uses_slm && !m.cloud_slm) throw Error("replay: the cloud role needs SLM- (--cloud-slm or --edge-model)");
    std::vector<const std::vector<EvalSpan>*> llm_lists, slm_lists;
    for (const auto& r : s.rounds) {
      llm_lists.push_back(&r.llm);
      slm_lists.push_back(&r.slm);
    }
    Sequence llm = make_sequence(m.llm, context_needed(s.llm_prompt, llm_lists), p, "LLM");
    std::optional<Sequence> slm;
    if (uses_slm) slm.emplace(make_sequence(m.cloud_slm, context_needed(s.slm_prompt, slm_lists), p, "SLM-"));
    // Both models share the id range the protocol works in.
    const int V = uses_slm ? std::min(m.llm->config().n_vocab, m.cloud_slm->config().n_vocab)
                           : m.llm->config().n_vocab;
    Ids ids(p.seed + 1, V);
    Stopwatch pre;
    llm.eval(ids.next(std::max<uint32_t>(s.llm_prompt, 1)), false);
    if (slm) slm->eval(ids.next(std::max<uint32_t>(s.slm_prompt, 1)), false);
    t.cloud_prefill_s = pre.seconds();
    const size_t lv = static_cast<size_t>(m.llm->config().n_vocab);
    const size_t sv = slm ? static_cast<size_t>(m.cloud_slm->config().n_vocab) : 0;
    for (const auto& r : s.rounds) {
      Stopwatch round;
      std::span<const float> lrows, srows;
      for (const EvalSpan& span : r.llm) {
        Stopwatch sw;
        lrows = run_pass(llm, span, ids, true, "LLM");
        t.cloud_llm_s += sw.seconds();
      }
      for (const EvalSpan& span : r.slm) {
        Stopwatch sw;
        srows = run_pass(*slm, span, ids, true, "SLM-");
        t.cloud_slm_s += sw.seconds();
      }
      if (lrows.empty()) {
        t.round_cloud.push_back(round.seconds());
        continue;
      }
      // The verification arithmetic on the rows just computed.
      Stopwatch sw;
      const size_t n_rows = lrows.size() / lv;
      auto lrow = [&](size_t i) { return lrows.subspan(std::min(i, n_rows - 1) * lv, static_cast<size_t>(V)); };
      auto srow = [&](size_t i) {
        return srows.empty() ? lrow(i) : srows.subspan(std::min(i, srows.size() / sv - 1) * sv, static_cast<size_t>(V));
      };
      const size_t tested = r.drafted == 0 ? 0 : (r.recovery ? r.accepted + 1 : r.drafted);
      for (size_t i = 0; i < tested; ++i) {
        if (sd)
          (void)sampling::make_distribution(lrow(i), kGreedy);
        else
          (void)steer::ratio_accept_prob(lrow(i), srow(i), 0, p.lambda);
      }
      if (r.recovery || r.bonus) {
        const size_t at = r.drafted == 0 ? n_rows - 1 : tested - (r.recovery ? 1 : 0);
        if (costeer) {
          (void)sampling::log_softmax(lrow(at));
          (void)sampling::log_softmax(srow(at));
        } else if (!sd) {
          steer::Settings st = p.steering;
          st.beta = p.beta;
          st.top_k = p.top_k;
          (void)steer::cloud_steer(lrow(at), srow(at), st);
        }
      }
      t.cloud_steer_s += sw.seconds();
      t.round_cloud.push_back(round.seconds());
    }
  }
  return t;
}

std::vector<double> time_llm_alone(const std::shared_ptr<const Model>& llm, uint32_t prompt, uint64_t tokens, const ReplayParams& p) {
  const int ctx = static_cast<int>(std::max<uint64_t>(uint64_t{prompt} + tokens, 1));
  Sequence seq = make_sequence(llm, ctx, p, "LLM");
  Ids ids(p.seed + 2, llm->config().n_vocab);
  std::vector<double> at;
  at.reserve(tokens + 1);
  Stopwatch sw;
  auto row = seq.eval(ids.next(std::max<uint32_t>(prompt, 1)), false);
  at.push_back(sw.seconds());
  for (uint64_t n = 1; n <= tokens; ++n) {
    (void)sampling::make_distribution(row, kGreedy);  // token n
    if (n < tokens) row = seq.eval(ids.next(1), false);
    at.push_back(sw.seconds());
  }
  return at;
}

double ReplayRow::decode_speedup() const {
  const double alone = t_llm_alone_s - t_llm_alone_prefill_s;
  const double ours = t_total_s - t_prefill_s;
  return t_llm_alone_s > 0 && ours > 0 ? alone / ours : 0;
}

std::vector<TraceEntry> read_traces(const std::string& path, const std::vector<std::string>& methods,
                                    const std::vector<double>& lambdas, size_t limit) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open the trace file");
  std::vector<TraceEntry> out;
  std::vector<std::string> records;  // in first-seen order, for --limit
  size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw Error(where + ": not JSON (" + e.what() + ")");
    }
    if (!j.is_object()) throw Error(where + ": expected one JSON object per line");
    auto tr = j.find("trace");
    if (tr == j.end()) continue;  // rows written before traces existed
    TraceEntry e;
    e.schedule = schedule_from_json(*tr, where + " trace");
    const std::string& method = e.schedule.method;
    if (!steer::uses_cloud(steer::parse_method(method))) continue;
    if (!methods.empty() && std::find(methods.begin(), methods.end(), method) == methods.end()) continue;
    if (e.schedule.byte_level)
      throw Error(where + ": a cross-tokenizer run (byte_level): its Generalist's passes follow the Generalist's "
                          "own tokenization and are not in the schedule, so it cannot be replayed");
    // results.jsonl: "lambda" at the top; generate --json: settings.lambda.
    // NaN: no lambda (methods other than specsteer, or not recorded).
    double lambda = std::nan("");
    if (auto it = j.find("lambda"); it != j.end() && it->is_number()) lambda = it->get<double>();
    if (auto it = j.find("settings"); std::isnan(lambda) && it != j.end() && it->is_object())
      if (auto l = it->find("lambda"); l != it->end() && l->is_number()) lambda = l->get<double>();
    if (method != "specsteer") lambda = std::nan("");
    if (!std::isnan(lambda) && !lambdas.empty() &&
        std::none_of(lambdas.begin(), lambdas.end(), [&](double l) { return std::abs(l - lambda) < 1e-9; }))
      continue;
    e.record = j.contains("record") && j["record"].is_string() ? j["record"].get<std::string>() : "line " + std::to_string(line_no);
    if (std::find(records.begin(), records.end(), e.record) == records.end()) {
      if (limit && records.size() == limit) continue;
      records.push_back(e.record);
    }
    e.label = method;
    if (!std::isnan(lambda)) {
      char buf[48];
      std::snprintf(buf, sizeof buf, " lambda=%g", lambda);
      e.label += buf;
    }
    // Bonus-token runs (eval's setting word "bonus", generate's settings.bonus) are their own rows.
    bool bonus = false;
    if (auto it = j.find("setting"); it != j.end() && it->is_string())
      bonus = (" " + it->get<std::string>() + " ").find(" bonus ") != std::string::npos;
    if (auto it = j.find("settings"); !bonus && it != j.end() && it->is_object())
      if (auto b = it->find("bonus"); b != it->end() && b->is_boolean()) bonus = b->get<bool>();
    if (bonus) e.label += " bonus";
    out.push_back(std::move(e));
  }
  if (out.empty())
    throw Error(path + ": no traces of cloud methods" +
                std::string(methods.empty() && lambdas.empty() ? "" : " matching --method/--lambda") +
                " (results.jsonl rows or generate --json objects carry them in \"trace\")");
  // Group each record's generations together (one LLM-alone run per record).
  std::stable_sort(out.begin(), out.end(), [&](const TraceEntry& a, const TraceEntry& b) {
    return std::find(records.begin(), records.end(), a.record) < std::find(records.begin(), records.end(), b.record);
  });
  return out;
}

std::vector<ReplayRow> replay_traces(const std::vector<TraceEntry>& entries, const ReplayModels& m,
                                     const ReplayParams& p, const std::vector<double>& rtts_ms,
                                     const std::function<void(size_t, size_t)>& progress) {
  for (double r : rtts_ms)
    if (!std::isfinite(r) || r < 0) throw Error("--rtt-ms: round-trip times must be finite and >= 0");
  const bool time_alone = p.role != ReplayRole::Edge;
  if (p.role != ReplayRole::Cloud && m.edge) warm_up(m.edge);
  if (time_alone && m.llm) warm_up(m.llm);
  if (time_alone && m.cloud_slm && m.cloud_slm != m.edge) warm_up(m.cloud_slm);

  struct Acc {
    size_t records = 0;
    ReplayTimes t;
    uint64_t exchanges = 0;  // network exchanges: session open + rounds
    double alone = 0, alone_prefill = 0;
    size_t alone_runs = 0;
    double prefill = 0;  // critical-path prefill, summed over records
    std::vector<double> decode, hidden;  // per RTT: decode-phase critical path and edge work hidden, summed
  };
  std::map<std::string, Acc> acc;
  std::vector<std::string> order;
  for (size_t i = 0; i < entries.size();) {
    // One record: the LLM alone for its longest generation, then each generation.
    size_t j = i;
    uint64_t most = 0;
    while (j < entries.size() && entries[j].record == entries[i].record) most = std::max(most, entries[j++].schedule.tokens);
    std::vector<double> alone;
    if (time_alone) {
      if (!m.llm) throw Error("replay: timing the LLM alone needs --llm");
      alone = time_llm_alone(m.llm, entries[i].schedule.llm_prompt, most, p);
    }
    for (size_t k = i; k < j; ++k) {
      const TraceEntry& e = entries[k];
      const ReplayTimes t = replay_schedule(e.schedule, m, p);
      if (!acc.count(e.label)) order.push_back(e.label);
      Acc& a = acc[e.label];
      ++a.records;
      a.t += t;
      a.exchanges += 1 + t.exchanges;
      a.decode.resize(rtts_ms.size());
      a.hidden.resize(rtts_ms.size());
      for (size_t i = 0; i < rtts_ms.size(); ++i) {
        const auto [decode, hidden] = decode_path(t, p, rtts_ms[i] * 1e-3);
        a.decode[i] += decode;
        a.hidden[i] += hidden;
      }
      switch (p.role) {
        case ReplayRole::Edge: a.prefill += t.edge_prefill_s; break;
        case ReplayRole::Cloud: a.prefill += t.cloud_prefill_s; break;
        case ReplayRole::Both:
          a.prefill += p.two_machines ? std::max(t.edge_prefill_s, t.cloud_prefill_s)
                                         : t.edge_prefill_s + t.cloud_prefill_s;
          break;
      }
      if (time_alone) {
        a.alone += alone[e.schedule.tokens];
        a.alone_prefill += alone[0];
        ++a.alone_runs;
      }
      if (progress) progress(k + 1, entries.size());
    }
    i = j;
  }
  std::vector<ReplayRow> rows;
  for (const std::string& label : order) {
    const Acc& a = acc[label];
    for (size_t i = 0; i < rtts_ms.size(); ++i) {
      const double rtt = rtts_ms[i];
      ReplayRow r;
      r.label = label;
      r.rtt_ms = rtt;
      r.records = a.records;
      r.t = a.t;
      r.t_network_s = rtt * 1e-3 * static_cast<double>(a.exchanges);
      r.t_prefill_s = a.prefill;
      r.t_hidden_s = a.hidden[i];
      // + the session open's round trip (each round's is in the decode path).
      r.t_total_s = a.prefill + a.decode[i] + rtt * 1e-3 * static_cast<double>(a.records);
      if (time_alone) {
        r.t_llm_alone_s = a.alone + rtt * 1e-3 * static_cast<double>(a.alone_runs);
        r.t_llm_alone_prefill_s = a.alone_prefill;
      }
      rows.push_back(r);
    }
  }
  return rows;
}

size_t replay_speedups(const std::vector<ResultRow>& rows, std::vector<SummaryRow>& summary, const ReplayModels& m,
                       const ReplayParams& p) {
  if (!m.edge || !m.llm) throw Error("eval: --replay-edge and --replay-llm go together");
  const auto key = [](const std::string& method, const std::string& setting) { return method + '\x1f' + setting; };
  // Cloud methods: their schedules, one replay label per summary row.
  std::vector<TraceEntry> entries;
  for (const auto& r : rows)
    if (r.schedule && steer::uses_cloud(steer::parse_method(r.method)) && !r.schedule->rounds.empty() &&
        !r.schedule->byte_level)
      entries.push_back({r.record_id, key(r.method, r.setting), *r.schedule});
  std::stable_sort(entries.begin(), entries.end(),
                   [](const TraceEntry& a, const TraceEntry& b) { return a.record < b.record; });
  std::map<std::string, double> replayed;
  if (!entries.empty())
    for (const auto& row : replay_traces(entries, m, p, {0.0})) replayed[row.label] = row.speedup();
  // Local methods: the model decoding alone against the LLM alone on x.
  std::map<std::string, uint32_t> x_llm;  // record -> x's length for the LLM (from its cloud or llm rows)
  for (const auto& r : rows)
    if (r.schedule && r.schedule->llm_prompt) x_llm.emplace(r.record_id, r.schedule->llm_prompt);
  std::map<std::string, std::pair<double, double>> local;  // key -> (llm alone s, method s)
  for (const auto& r : rows) {
    const steer::Method method = steer::parse_method(r.method);
    if (!r.schedule || (method != steer::Method::Slm && method != steer::Method::SlmPlus &&
                        method != steer::Method::LlmPlus))
      continue;
    const steer::Schedule& sc = *r.schedule;
    const auto x = x_llm.find(r.record_id);
    const uint32_t prompt = std::max({sc.edge_prompt, sc.slm_prompt, sc.llm_prompt});
    if (x == x_llm.end() || prompt == 0 || sc.tokens == 0) continue;
    const auto& model = method == steer::Method::LlmPlus ? m.llm : m.edge;
    auto& [alone, own] = local[key(r.method, r.setting)];
    alone += time_llm_alone(m.llm, x->second, sc.tokens, p).back();
    own += time_llm_alone(model, prompt, sc.tokens, p).back();
  }
  for (const auto& [k, t] : local)
    if (t.second > 0) replayed[k] = t.first / t.second;
  size_t n = 0;
  for (auto& s : summary) {
    const auto it = replayed.find(key(s.method, s.setting));
    if (s.method == "llm") {
      s.speedup = 1.0;
    } else if (it != replayed.end()) {
      s.speedup = it->second;
    } else {
      continue;
    }
    s.speedup_replayed = true;
    ++n;
  }
  return n;
}

}  // namespace specsteer::eval
