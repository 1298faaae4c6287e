// `replay --plot`: the replayed speedups against RTT, one line per method,
// and where each method's time goes per round, as stacked bars.
#include <algorithm>
#include <map>

#include "eval/plot.h"
#include "eval/replay.h"

namespace specsteer::eval {

using plot::fmt;
using plot::xml_escape;

std::string replay_svg(const std::vector<ReplayRow>& rows, const std::string& title) {
  const double T = 60, B = 110;
  const double L1 = 70, W1 = 440;              // left panel: speedup vs RTT
  const double L2 = L1 + W1 + 110, W2 = 300;   // right panel: breakdown per round
  std::vector<std::string> labels;
  std::vector<double> rtts;
  for (const auto& r : rows) {
    if (std::find(labels.begin(), labels.end(), r.label) == labels.end()) labels.push_back(r.label);
    if (std::find(rtts.begin(), rtts.end(), r.rtt_ms) == rtts.end()) rtts.push_back(r.rtt_ms);
  }
  std::sort(rtts.begin(), rtts.end());
  // The legend of the left panel sits under both panels, one line per label.
  const double W = 1100, ph = 380, H = T + ph + B + 20.0 * static_cast<double>(labels.size()) + 10;
  const char* colors[] = {"#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"};
  const char* dashes[] = {"", "6,3", "2,3", "8,3,2,3", "1,2", "10,4", "4,4", "12,2"};

  std::string o = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + fmt("%g", W) + "\" height=\"" +
                  fmt("%g", H) + "\" viewBox=\"0 0 " + fmt("%g", W) + " " + fmt("%g", H) +
                  "\" font-family=\"DejaVu Sans, Arial, sans-serif\">\n<rect width=\"100%\" height=\"100%\" "
                  "fill=\"white\"/>\n";
  o += "<text x=\"" + fmt("%g", W / 2) + "\" y=\"26\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">" +
       xml_escape(title) + "</text>\n";

  // Left: speedup (LLM alone / SpecSteer's total) against RTT.
  double shi = 1.2;
  for (const auto& r : rows) shi = std::max(shi, r.speedup() * 1.15);
  const double xmax = std::max(1.0, rtts.empty() ? 1.0 : rtts.back());
  auto x1 = [&](double rtt) { return L1 + 20 + (rtts.size() > 1 ? rtt / xmax * (W1 - 40) : (W1 - 40) / 2); };
  auto y1 = [&](double sp) { return T + ph - sp / shi * ph; };
  o += "<rect x=\"" + fmt("%g", L1) + "\" y=\"" + fmt("%g", T) + "\" width=\"" + fmt("%g", W1) + "\" height=\"" +
       fmt("%g", ph) + "\" fill=\"none\" stroke=\"#333\"/>\n";
  const double step = shi > 4 ? 1.0 : 0.5;
  for (double v = 0; v <= shi + 1e-9; v += step)
    o += "<line x1=\"" + fmt("%g", L1) + "\" y1=\"" + fmt("%.1f", y1(v)) + "\" x2=\"" + fmt("%g", L1 + W1) +
         "\" y2=\"" + fmt("%.1f", y1(v)) + "\" stroke=\"" + (v == 1.0 ? "#888\" stroke-dasharray=\"5,4" : "#e4e4e4") +
         "\"/>\n<text x=\"" + fmt("%g", L1 - 6) + "\" y=\"" + fmt("%.1f", y1(v) + 4) +
         "\" text-anchor=\"end\" font-size=\"12\">" + fmt("%g", v) + "</text>\n";
  for (double rtt : rtts)
    o += "<text x=\"" + fmt("%.1f", x1(rtt)) + "\" y=\"" + fmt("%g", T + ph + 18) +
         "\" text-anchor=\"middle\" font-size=\"12\">" + fmt("%g", rtt) + "</text>\n";
  o += "<text x=\"" + fmt("%g", L1 + W1 / 2) + "\" y=\"" + fmt("%g", T + ph + 40) +
       "\" text-anchor=\"middle\" font-size=\"13\">round-trip time (ms)</text>\n";
  o += "<text transform=\"translate(24," + fmt("%g", T + ph / 2) +
       ") rotate(-90)\" text-anchor=\"middle\" font-size=\"13\">speedup over the LLM alone (\xC3\x97; dashed = 1)</text>\n";
  for (size_t li = 0; li < labels.size(); ++li) {
    std::string pts;
    for (const auto& r : rows)
      if (r.label == labels[li]) {
        pts += fmt("%.1f", x1(r.rtt_ms)) + "," + fmt("%.1f", y1(r.speedup())) + " ";
        o += "<circle cx=\"" + fmt("%.1f", x1(r.rtt_ms)) + "\" cy=\"" + fmt("%.1f", y1(r.speedup())) +
             "\" r=\"4\" fill=\"" + colors[li % 8] + "\"/>\n";
      }
    const std::string dash =
        *dashes[li % 8] ? std::string(" stroke-dasharray=\"") + dashes[li % 8] + "\"" : std::string();
    o += "<polyline points=\"" + pts + "\" fill=\"none\" stroke=\"" + colors[li % 8] + "\" stroke-width=\"2\"" +
         dash + "/>\n";
    // Legend under the panels: line sample (colour and dash), label, speedup per RTT.
    std::string speeds;
    for (const auto& r : rows)
      if (r.label == labels[li]) speeds += (speeds.empty() ? "" : ", ") + fmt("%.2f\xC3\x97", r.speedup()) + " @" + fmt("%g", r.rtt_ms) + " ms";
    const double ly = T + ph + B - 14 + 20.0 * static_cast<double>(li);
    o += "<line x1=\"" + fmt("%g", L1) + "\" y1=\"" + fmt("%.1f", ly - 4) + "\" x2=\"" + fmt("%g", L1 + 34) + "\" y2=\"" +
         fmt("%.1f", ly - 4) + "\" stroke=\"" + colors[li % 8] + "\" stroke-width=\"2\"" + dash + "/>\n";
    o += "<text class=\"legend\" x=\"" + fmt("%g", L1 + 42) + "\" y=\"" + fmt("%.1f", ly) + "\" font-size=\"12\">" +
         xml_escape(labels[li] + ": " + speeds) + "</text>\n";
  }

  // Right: seconds per round, stacked, at the first RTT (network = its RTT).
  struct Part {
    const char* name;
    const char* color;
  };
  const Part parts[] = {{"edge passes", "#1f77b4"},   {"edge sampling", "#aec7e8"}, {"cloud LLM", "#d62728"},
                        {"cloud SLM\xE2\x81\xBB", "#ff9896"}, {"cloud arithmetic", "#ffbb78"}, {"network", "#7f7f7f"}};
  std::vector<std::vector<double>> bars;
  double bmax = 0;
  for (const auto& label : labels) {
    const auto it = std::find_if(rows.begin(), rows.end(), [&](const ReplayRow& r) { return r.label == label; });
    const double rounds = std::max<double>(1.0, static_cast<double>(it->t.rounds));
    const double net = it->t_network_s / rounds;
    bars.push_back({it->t.edge_forward_s / rounds, it->t.edge_sample_s / rounds, it->t.cloud_llm_s / rounds,
                    it->t.cloud_slm_s / rounds, it->t.cloud_steer_s / rounds, net});
    double sum = 0;
    for (double v : bars.back()) sum += v;
    bmax = std::max(bmax, sum);
  }
  bmax = bmax > 0 ? bmax * 1.1 : 1;
  const double bw = std::min(60.0, W2 / std::max<size_t>(1, labels.size()) * 0.6);
  auto y2 = [&](double v) { return T + ph - v / bmax * ph; };
  o += "<rect x=\"" + fmt("%g", L2) + "\" y=\"" + fmt("%g", T) + "\" width=\"" + fmt("%g", W2) + "\" height=\"" +
       fmt("%g", ph) + "\" fill=\"none\" stroke=\"#333\"/>\n";
  for (double v : plot::linear_ticks(bmax / 1.1, 4)) {
    o += "<text x=\"" + fmt("%g", L2 - 6) + "\" y=\"" + fmt("%.1f", y2(v) + 4) +
         "\" text-anchor=\"end\" font-size=\"11\">" + fmt("%.3g", v * 1000) + "</text>\n";
  }
  o += "<text transform=\"translate(" + fmt("%g", L2 - 52) + "," + fmt("%g", T + ph / 2) +
       ") rotate(-90)\" text-anchor=\"middle\" font-size=\"13\">ms per round" +
       (rtts.empty() ? std::string() : " (RTT " + fmt("%g", rtts.front()) + " ms)") + "</text>\n";
  for (size_t li = 0; li < labels.size(); ++li) {
    const double cx = L2 + (li + 0.5) * W2 / static_cast<double>(labels.size());
    double acc = 0;
    for (size_t k = 0; k < bars[li].size(); ++k) {
      const double v = bars[li][k];
      if (v <= 0) continue;
      o += "<rect x=\"" + fmt("%.1f", cx - bw / 2) + "\" y=\"" + fmt("%.1f", y2(acc + v)) + "\" width=\"" +
           fmt("%.1f", bw) + "\" height=\"" + fmt("%.2f", y2(acc) - y2(acc + v)) + "\" fill=\"" + parts[k].color +
           "\" stroke=\"white\" stroke-width=\"0.5\"/>\n";
      acc += v;
    }
    o += "<text transform=\"translate(" + fmt("%.1f", cx - 4) + "," + fmt("%g", T + ph + 12) +
         ") rotate(25)\" font-size=\"11\">" + xml_escape(labels[li]) + "</text>\n";
  }
  double ly = T;
  for (const auto& p : parts) {
    o += "<rect x=\"" + fmt("%g", L2 + W2 + 12) + "\" y=\"" + fmt("%g", ly) + "\" width=\"12\" height=\"12\" fill=\"" +
         p.color + "\"/>\n<text x=\"" + fmt("%g", L2 + W2 + 30) + "\" y=\"" + fmt("%g", ly + 10) +
         "\" font-size=\"11\">" + p.name + "</text>\n";
    ly += 18;
  }
  o += "</svg>\n";
  return o;
}

}  // namespace specsteer::eval
