#pragma once
// Small SVG plotting pieces shared by the eval trade-off plot and `replay
// --plot`: a log axis with 1-2-5 ticks, and a label placer that keeps text
// boxes from overlapping each other and the markers.
#include <string>
#include <vector>

namespace specsteer::eval::plot {

std::string fmt(const char* f, double v);
std::string xml_escape(const std::string& s);

// A logarithmic axis over [lo, hi] (both > 0) mapped to pixels [p0, p1].
struct LogAxis {
  double lo = 1, hi = 10, p0 = 0, p1 = 1;
  // Values are clamped to >= 1e-9 (a zero speed has no place on a log axis).
  double operator()(double v) const;
  // Tick values: 1, 2 and 5 per decade (every integer multiple when the
  // range spans less than a decade), within [lo, hi].
  std::vector<double> ticks() const;
  // [lo, hi] covering `values` with a margin of `pad` (a factor, e.g. 1.3).
  static LogAxis covering(const std::vector<double>& values, double pad, double p0, double p1);
};

// Tick values 0, s, 2s, ... <= max with s a 1-2-5 step giving about `target`
// intervals (a linear axis a reader can read: 0.05, 0.1, 0.15, not 0.0465).
std::vector<double> linear_ticks(double max, int target);

struct Box {
  double x0, y0, x1, y1;
  bool overlaps(const Box& o) const { return x0 < o.x1 && o.x0 < x1 && y0 < o.y1 && o.y0 < y1; }
};

// Width of `text` at `font_px` in a sans-serif face (an upper estimate: the
// placer must not count on a narrow font).
double text_width(const std::string& text, double font_px);

class LabelPlacer {
 public:
  explicit LabelPlacer(Box area) : area_(area) {}
  void block(const Box& b) { taken_.push_back(b); }
  struct Placed {
    double x, y;          // baseline start of the text
    bool moved_far;       // far from its point: draw a leader line
    Box box;
  };
  // A spot near (px, py) where the label overlaps nothing placed or blocked;
  // searches rings of candidates outward. Records the box it takes.
  Placed place(double px, double py, const std::string& text, double font_px);
  const std::vector<Box>& taken() const { return taken_; }

 private:
  Box area_;
  std::vector<Box> taken_;
};

}  // namespace specsteer::eval::plot
