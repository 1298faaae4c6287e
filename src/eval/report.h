#pragma once
// Aggregates results rows per (method, setting) into the paper's table shape
// (tables 2, 4, 10 and 11) and writes summary.md, summary.csv and tradeoff.svg.
#include <optional>
#include <string>
#include <vector>

#include "eval/results.h"

namespace specsteer::eval {

struct SummaryRow {
  std::string method, setting;
  std::optional<double> lambda;
  size_t n = 0;                // records
  double rouge1 = 0, rougeL = 0;  // mean F-measure x 100
  std::optional<double> acceptance_rate;  // sum accepted / sum drafted, in [0, 1]; none if nothing drafted
  uint64_t n_generated = 0;
  double seconds = 0;
  double tok_per_s = 0;                   // sum tokens / sum generation seconds
  std::optional<double> speedup;          // tok_per_s / tok_per_s of "llm" in the same results
  // The speedup replayed on real-shaped models (eval --replay-edge/--replay-llm):
  // it replaces the measured one in the reports, which say so.
  bool speedup_replayed = false;
  double round_trips_per_token = 0, bytes_per_token = 0, flops_per_token = 0;
  double total_flops = 0;
  double beta = 1.0;  // of the group's rows (one setting: one value)
  int draft_k = 0;
  std::optional<std::string> steer_candidates;  // "contrast" / "plausible" where the cloud steers
  std::optional<double> plausibility;
  bool keeps_profile_on_device = true;  // false for llm+ and sd: marked in every report
  // MiniLaMP exact checks, mean x 100 over the n_exact rows that have them.
  size_t n_exact = 0;
  double fact_recall = 0, cons_items = 0, cons_strict = 0;
};

// Rows in a fixed method order (llm, slm, slm+, llm+, sd, lightcosteer,
// costeer, specsteer, then others by name), settings by lambda (strict first)
// then by setting string.
std::vector<SummaryRow> summarize(const std::vector<ResultRow>& rows);

std::string summary_csv(const std::vector<SummaryRow>& s);
// `title` is a one-line heading (task, models); `notes` lines go under the table.
std::string summary_markdown(const std::vector<SummaryRow>& s, const std::string& title,
                             const std::vector<std::string>& notes = {});
// ROUGE-L against speedup, one marker per method/setting (hollow: the method
// sends something derived from the profile to the cloud), a method's lambdas
// joined by a line per remaining setting; the legend gives R-L, acceptance
// and speedup per row. Needs an `llm` row for speedups; without one, x = tok/s.
std::string tradeoff_svg(const std::vector<SummaryRow>& s, const std::string& title);

// Writes the three files into `dir`; throws Error naming a file it cannot write.
void write_reports(const std::string& dir, const std::vector<SummaryRow>& s, const std::string& title,
                   const std::vector<std::string>& notes = {});

}  // namespace specsteer::eval
