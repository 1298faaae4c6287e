#pragma once
// Progress of an eval run: a redrawn bar (records done, ETA, running
// acceptance rate) on a terminal, one plain log line per update otherwise.
#include <cstdio>
#include <optional>
#include <string>

#include "common/timer.h"

namespace specsteer::eval {

struct ProgressState {
  size_t done = 0, total = 0;  // generations (record x method x setting)
  size_t skipped = 0;          // of `done`, rows a resumed run found finished (cost no time)
  double elapsed_s = 0;
  std::optional<double> acceptance;  // running accepted/drafted, if anything drafted
  std::string label;                 // what just finished
};

// Pure formatting, so it is testable without a clock or a terminal.
std::string render_bar(const ProgressState& s, int width);
std::string render_line(const ProgressState& s);
std::string format_duration(double seconds);  // "1:05", "1:02:03", "?" when unknown

class Progress {
 public:
  // tty: redraw one line with '\r'; otherwise print log lines. `out` is not owned.
  Progress(size_t total, FILE* out, bool tty);
  // Records that one more generation finished (skipped ones count too).
  void step(const std::string& label, uint64_t drafted, uint64_t accepted, bool skipped = false);
  void finish();

 private:
  FILE* out_;
  bool tty_;
  ProgressState s_;
  uint64_t drafted_ = 0, accepted_ = 0;
  Stopwatch clock_;
};

}  // namespace specsteer::eval
