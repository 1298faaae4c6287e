#include "eval/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace specsteer::eval::plot {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

double LogAxis::operator()(double v) const {
  const double l = std::log10(std::max(v, 1e-9)), a = std::log10(lo), b = std::log10(hi);
  return p0 + (l - a) / (b - a) * (p1 - p0);
}

std::vector<double> LogAxis::ticks() const {
  std::vector<double> out;
  const bool narrow = hi / lo < 10;
  for (int e = static_cast<int>(std::floor(std::log10(lo))); e <= static_cast<int>(std::ceil(std::log10(hi))); ++e) {
    const double d = std::pow(10.0, e);
    for (int m = 1; m <= 9; ++m) {
      if (!narrow && m != 1 && m != 2 && m != 5) continue;
      const double v = m * d;
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push_back(v);
    }
  }
  return out;
}

std::vector<double> linear_ticks(double max, int target) {
  if (!(max > 0) || !std::isfinite(max) || target < 1) return {0.0};
  const double raw = max / target;
  const double decade = std::pow(10.0, std::floor(std::log10(raw)));
  double step = decade * 10;
  for (double m : {1.0, 2.0, 5.0})
    if (m * decade >= raw * (1 - 1e-9)) {
      step = m * decade;
      break;
    }
  std::vector<double> out;
  for (int k = 0; k * step <= max * (1 + 1e-9); ++k) out.push_back(k * step);
  return out;
}

LogAxis LogAxis::covering(const std::vector<double>& values, double pad, double p0, double p1) {
  LogAxis a;
  a.p0 = p0;
  a.p1 = p1;
  double lo = 0, hi = 0;
  for (double v : values) {
    if (!(v > 0) || !std::isfinite(v)) continue;
    lo = lo > 0 ? std::min(lo, v) : v;
    hi = std::max(hi, v);
  }
  if (!(lo > 0)) lo = hi = 1;
  a.lo = lo / pad;
  a.hi = hi * pad;
  if (a.hi / a.lo < 3) {  // at least half a decade, centred
    const double mid = std::sqrt(a.lo * a.hi);
    a.lo = mid / std::sqrt(3.0);
    a.hi = mid * std::sqrt(3.0);
  }
  return a;
}

double text_width(const std::string& text, double font_px) {
  size_t chars = 0;
  for (unsigned char c : text)
    if ((c & 0xC0) != 0x80) ++chars;  // UTF-8: count characters, not bytes
  return 0.62 * font_px * static_cast<double>(chars) + 2;
}

LabelPlacer::Placed LabelPlacer::place(double px, double py, const std::string& text, double font_px) {
  const double w = text_width(text, font_px), h = font_px + 2;
  auto box_at = [&](double x, double y) { return Box{x, y - font_px, x + w, y - font_px + h}; };
  auto fits = [&](const Box& b) {
    if (b.x0 < area_.x0 || b.x1 > area_.x1 || b.y0 < area_.y0 || b.y1 > area_.y1) return false;
    return std::none_of(taken_.begin(), taken_.end(), [&](const Box& t) { return t.overlaps(b); });
  };
  // Right, left, above, below the point, then rings farther out.
  for (int ring = 0; ring < 12; ++ring) {
    const double d = 9 + ring * 12;
    const std::vector<std::pair<double, double>> spots = {
        {px + d, py + font_px / 2 - 1}, {px - d - w, py + font_px / 2 - 1}, {px - w / 2, py - d},
        {px - w / 2, py + d + font_px}, {px + d, py - d},                    {px + d, py + d + font_px},
        {px - d - w, py - d},           {px - d - w, py + d + font_px}};
    for (const auto& [x, y] : spots) {
      const Box b = box_at(x, y);
      if (fits(b)) {
        taken_.push_back(b);
        return {x, y, ring > 1, b};
      }
    }
  }
  // Nowhere free (an absurdly crowded plot): stack below the area's top-left.
  double y = area_.y0 + font_px;
  for (const Box& t : taken_) y = std::max(y, t.y1 + font_px + 1);
  const Box b = box_at(area_.x0 + 2, y);
  taken_.push_back(b);
  return {b.x0, y, true, b};
}

}  // namespace specsteer::eval::plot
