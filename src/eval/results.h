#pragma once
// One results.jsonl row per (record, method, setting), and the append-only,
// resumable log that holds them: each row is one write() of one line, so an
// interrupted run leaves whole lines plus at most one torn last line, which
// reopening drops.
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/exact.h"
#include "eval/rouge.h"
#include "steer/schedule.h"

namespace specsteer::eval {

// Protocol counters of one generation (issue 4's list) plus the forward work
// each model ran, from which FLOPs are computed.
struct GenCounters {
  uint64_t n_generated = 0;  // tokens emitted
  uint64_t n_drafted = 0, n_accepted = 0, n_rejections = 0;
  uint64_t round_trips = 0, bytes_up = 0, bytes_down = 0;
  double seconds = 0;  // decode wall time: whole generation minus prompt prefill
  double t_prefill_s = 0, t_total_s = 0;
  double t_draft_s = 0, t_verify_s = 0, t_recover_s = 0;  // verify = waiting on the cloud
  uint64_t slm_positions = 0, slm_attention = 0;  // all small-model sequences (SLM+, SLM-)
  // (attention: sum of attended context lengths; see runner.h for how it is counted)
  uint64_t llm_positions = 0, llm_attention = 0;
  uint64_t slm_flops = 0, llm_flops = 0;
};

struct ResultRow {
  std::string record_id, user_id, method;
  std::string setting;          // "" or e.g. "lambda=0.5"; part of the resume key
  std::optional<double> lambda; // specsteer only
  double beta = 1.0;
  int draft_k = 0;
  // Methods whose cloud sends a steering vector: its candidate rule
  // ("contrast" or "plausible") and gamma (plausible); absent in rows written
  // before the rule existed, which ran "contrast".
  std::optional<std::string> steer_candidates;
  std::optional<double> plausibility;
  // false: something derived from the profile left the device (llm+, sd).
  // Rows written before the field existed: from the method.
  bool keeps_profile_on_device = true;
  std::optional<ExactScores> exact;  // MiniLaMP records (facts / constraints)
  std::string prediction, reference;
  std::vector<int32_t> tokens;
  std::string stop_reason;  // "eog", "length", ...
  bool rouge_stemmer = false;
  RougeResult rouge;
  GenCounters c;
  // Decode time split by term (schedule_json.h breakdown_json) and the pass
  // schedule for `specsteer replay`; absent in rows written before they existed.
  nlohmann::json breakdown;
  std::optional<steer::Schedule> schedule;
};

nlohmann::json to_json(const ResultRow& r);
// Throws specsteer::Error naming `where` and the missing/mistyped field.
ResultRow row_from_json(const nlohmann::json& j, const std::string& where);

using RowKey = std::tuple<std::string, std::string, std::string>;  // record, method, setting
inline RowKey key_of(const ResultRow& r) { return {r.record_id, r.method, r.setting}; }

class ResultsLog {
 public:
  // Opens (creating) `path`, loads finished rows, drops a torn last line by
  // truncating the file to the end of the last whole line. A malformed line
  // that is not the last one is corruption: throws Error naming path:line.
  explicit ResultsLog(std::string path);
  ~ResultsLog();
  ResultsLog(const ResultsLog&) = delete;
  ResultsLog& operator=(const ResultsLog&) = delete;

  bool done(const RowKey& k) const { return keys_.count(k) != 0; }
  // Appends one row as one line, flushed to the OS before returning.
  void append(const ResultRow& row);
  const std::vector<ResultRow>& rows() const { return rows_; }
  size_t dropped_torn_bytes() const { return dropped_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::vector<ResultRow> rows_;
  std::set<RowKey> keys_;
  size_t dropped_ = 0;
};

}  // namespace specsteer::eval
