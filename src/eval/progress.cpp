#include "eval/progress.h"

#include <cmath>

namespace specsteer::eval {
namespace {

// Remaining steps at the mean cost of the steps that actually ran.
std::optional<double> eta(const ProgressState& s) {
  if (s.done >= s.total) return 0.0;
  size_t ran = s.done > s.skipped ? s.done - s.skipped : 0;
  if (ran == 0) return std::nullopt;
  return s.elapsed_s / double(ran) * double(s.total - s.done);
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  long t = std::lround(seconds);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

std::string render_bar(const ProgressState& s, int width) {
  double frac = s.total ? double(s.done) / double(s.total) : 1.0;
  int fill = static_cast<int>(std::floor(frac * width));
  std::string bar = "[";
  for (int i = 0; i < width; ++i) bar += i < fill ? '#' : '.';
  bar += "]";
  char buf[160];
  auto e = eta(s);
  std::snprintf(buf, sizeof buf, " %zu/%zu %3.0f%% elapsed %s ETA %s", s.done, s.total, 100 * frac,
                format_duration(s.elapsed_s).c_str(), e ? format_duration(*e).c_str() : "?");
  bar += buf;
  if (s.acceptance) {
    std::snprintf(buf, sizeof buf, " acceptance %.1f%%", 100 * *s.acceptance);
    bar += buf;
  }
  if (!s.label.empty()) bar += " | " + s.label;
  return bar;
}

std::string render_line(const ProgressState& s) {
  char buf[200];
  auto e = eta(s);
  std::snprintf(buf, sizeof buf, "[eval] %zu/%zu done, elapsed %s, ETA %s", s.done, s.total,
                format_duration(s.elapsed_s).c_str(), e ? format_duration(*e).c_str() : "?");
  std::string line = buf;
  if (s.acceptance) {
    std::snprintf(buf, sizeof buf, ", running acceptance %.3f", *s.acceptance);
    line += buf;
  }
  if (!s.label.empty()) line += ": " + s.label;
  return line;
}

Progress::Progress(size_t total, FILE* out, bool tty) : out_(out), tty_(tty) { s_.total = total; }

void Progress::step(const std::string& label, uint64_t drafted, uint64_t accepted, bool skipped) {
  s_.done += 1;
  if (skipped) s_.skipped += 1;
  drafted_ += drafted;
  accepted_ += accepted;
  if (drafted_) s_.acceptance = double(accepted_) / double(drafted_);
  s_.label = label;
  s_.elapsed_s = clock_.seconds();
  if (tty_)
    std::fprintf(out_, "\r\x1b[2K%s", render_bar(s_, 30).c_str());  // clear the line, redraw
  else
    std::fprintf(out_, "%s\n", render_line(s_).c_str());
  std::fflush(out_);
}

void Progress::finish() {
  if (tty_) std::fprintf(out_, "\n");
  std::fflush(out_);
}

}  // namespace specsteer::eval
