// The plots: a log speed axis, point labels that never overlap each other or
// the markers, private and non-private methods apart without colour, the
// replay plot's panels, and (rsvg-convert, librsvg) every SVG rendered to a
// PNG of the stated size.
#include "eval/plot.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>

#include "eval/replay.h"
#include "eval/report.h"

using namespace specsteer::eval;
namespace fs = std::filesystem;

namespace {

SummaryRow at(const std::string& method, double speedup, double rougeL, std::optional<double> lambda = {},
              bool priv = true) {
  SummaryRow r;
  r.method = method;
  r.lambda = lambda;
  if (lambda) r.setting = "lambda=" + std::to_string(*lambda);
  r.speedup = speedup;
  r.tok_per_s = 10 * speedup;
  r.rougeL = rougeL;
  r.keeps_profile_on_device = priv;
  return r;
}

// The boxes of the <text class="point-label"> elements, as the placer sized them.
std::vector<plot::Box> label_boxes(const std::string& svg) {
  std::vector<plot::Box> out;
  const std::regex re("<text class=\"point-label\" x=\"([-0-9.]+)\" y=\"([-0-9.]+)\" font-size=\"11\"[^>]*>([^<]*)</text>");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it) {
    const double x = std::stod((*it)[1]), y = std::stod((*it)[2]);
    const double w = plot::text_width((*it)[3], 11);
    out.push_back({x, y - 11, x + w, y + 2});
  }
  return out;
}

// The crowded case from the issue: the LLM and SpecSteer near 1x, SLM at 77x.
std::vector<SummaryRow> crowded() {
  return {at("llm", 1.0, 74.3),
          at("slm", 77.0, 60.1),
          at("slm+", 70.0, 77.7),
          at("llm+", 0.95, 80.0, {}, false),
          at("sd", 1.1, 74.5, {}, false),
          at("specsteer", 1.02, 89.1, 0.5),
          at("specsteer", 1.05, 88.7, 0.1),
          at("specsteer", 0.98, 89.0, 1.0),
          at("lightcosteer", 0.5, 85.0, 0.5),
          at("costeer", 0.3, 84.9)};
}

}  // namespace

TEST(Plot, LogAxisTicksAndMapping) {
  const auto a = plot::LogAxis::covering({1.0, 77.0}, 1.0, 0, 100);
  EXPECT_DOUBLE_EQ(a(1.0), 0);
  EXPECT_DOUBLE_EQ(a(77.0), 100);
  EXPECT_NEAR(a(std::sqrt(77.0)), 50, 1e-9);
  const auto t = a.ticks();
  EXPECT_EQ(t, (std::vector<double>{1, 2, 5, 10, 20, 50}));
  const auto narrow = plot::LogAxis::covering({2.0, 3.0}, 1.0, 0, 1).ticks();
  EXPECT_GE(narrow.size(), 2u) << "under a decade: every integer step";
  EXPECT_TRUE(std::isfinite(a(0.0)));  // clamped, never -inf
}

TEST(Plot, LinearTicksTakeOneTwoFiveSteps) {
  const auto t = plot::linear_ticks(0.000186, 4);
  ASSERT_EQ(t.size(), 4u);
  EXPECT_DOUBLE_EQ(t[1], 0.00005);
  EXPECT_NEAR(t.back(), 0.00015, 1e-12);
  EXPECT_EQ(plot::linear_ticks(10, 5), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(plot::linear_ticks(0, 4), (std::vector<double>{0}));
  EXPECT_EQ(plot::linear_ticks(std::nan(""), 4), (std::vector<double>{0}));
}

TEST(Plot, PlacedLabelsNeverOverlap) {
  plot::LabelPlacer p({0, 0, 400, 300});
  std::vector<plot::Box> boxes;
  for (int i = 0; i < 30; ++i) boxes.push_back(p.place(200 + (i % 3), 150 + (i % 2), "SpecSteer (lambda = 0.5)", 11).box);
  for (size_t i = 0; i < boxes.size(); ++i)
    for (size_t j = i + 1; j < boxes.size(); ++j) EXPECT_FALSE(boxes[i].overlaps(boxes[j])) << i << " " << j;
}

TEST(Plot, TradeoffUsesALogAxisAndItsLabelsNeverOverlap) {
  const std::string svg = tradeoff_svg(crowded(), "MiniLaMP");
  EXPECT_NE(svg.find("log scale"), std::string::npos);
  const auto boxes = label_boxes(svg);
  ASSERT_EQ(boxes.size(), crowded().size()) << "every point labelled";
  for (size_t i = 0; i < boxes.size(); ++i)
    for (size_t j = i + 1; j < boxes.size(); ++j) EXPECT_FALSE(boxes[i].overlaps(boxes[j])) << i << " vs " << j;
  // Private and non-private apart without colour: dashed hollow outlines on exactly the two non-private rows
  // (plot and legend).
  size_t dashed = 0;
  for (size_t at = svg.find("stroke-dasharray=\"3,2\""); at != std::string::npos;
       at = svg.find("stroke-dasharray=\"3,2\"", at + 1))
    ++dashed;
  EXPECT_EQ(dashed, 4u);
  EXPECT_NE(svg.find("hollow, dashed: sends profile-derived data"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
}

namespace {

std::vector<ReplayRow> replay_rows() {
  std::vector<ReplayRow> rows;
  for (const char* label : {"llm", "specsteer lambda=0.5", "specsteer lambda=0.1"})
    for (double rtt : {0.0, 20.0, 50.0}) {
      if (std::string(label) == "llm") continue;
      ReplayRow r;
      r.label = label;
      r.rtt_ms = rtt;
      r.t.rounds = 20;
      r.t.tokens = 64;
      r.t.edge_forward_s = 0.5;
      r.t.edge_sample_s = 0.01;
      r.t.cloud_llm_s = 3.0;
      r.t.cloud_slm_s = 0.3;
      r.t.cloud_steer_s = 0.05;
      r.t_network_s = rtt / 1000 * 21;
      r.t_total_s = 4.0 + r.t_network_s;
      r.t_llm_alone_s = 8.0 + rtt / 1000;
      rows.push_back(r);
    }
  return rows;
}

// Renders an SVG with rsvg-convert (librsvg): a PNG exists, is not tiny and
// has the SVG's width.
void expect_renders(const std::string& svg, const std::string& name, int width) {
  if (std::system("command -v rsvg-convert >/dev/null 2>&1") != 0) {
    const char* all = std::getenv("SPECSTEER_REQUIRE_ALL");
    if (all && std::string(all) == "1") FAIL() << "rsvg-convert is not installed (bash tools/deps.sh --test)";
    GTEST_SKIP() << "rsvg-convert not installed";
  }
  const fs::path dir = fs::temp_directory_path() / ("specsteer-plot-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / (name + ".svg")) << svg;
  const std::string cmd = "rsvg-convert -o '" + (dir / (name + ".png")).string() + "' '" +
                          (dir / (name + ".svg")).string() + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream png(dir / (name + ".png"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(png)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 5000u) << "an almost empty picture";
  ASSERT_EQ(bytes.substr(1, 3), "PNG");
  const auto be32 = [&](size_t at) {
    return (static_cast<unsigned char>(bytes[at]) << 24) | (static_cast<unsigned char>(bytes[at + 1]) << 16) |
           (static_cast<unsigned char>(bytes[at + 2]) << 8) | static_cast<unsigned char>(bytes[at + 3]);
  };
  EXPECT_EQ(be32(16), width);  // IHDR width
  fs::remove_all(dir);
}

}  // namespace

TEST(Plot, ReplayPlotHasBothPanelsAndALegendLinePerMethod) {
  const std::string svg = replay_svg(replay_rows(), "Replayed on edge e.gguf + cloud c.gguf");
  EXPECT_NE(svg.find("round-trip time (ms)"), std::string::npos);
  EXPECT_NE(svg.find("ms per round"), std::string::npos);
  EXPECT_NE(svg.find("cloud LLM"), std::string::npos);
  EXPECT_NE(svg.find("network"), std::string::npos);
  // speedup = llm alone / total: (8 + rtt) / (4 + 21 rtt), rtt in s.
  EXPECT_NE(svg.find("specsteer lambda=0.1: 2.00\xC3\x97 @0 ms, 1.81\xC3\x97 @20 ms, 1.59\xC3\x97 @50 ms"),
            std::string::npos)
      << svg;
  size_t legend = 0;
  for (size_t at = svg.find("class=\"legend\""); at != std::string::npos; at = svg.find("class=\"legend\"", at + 1))
    ++legend;
  EXPECT_EQ(legend, 2u);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
}

TEST(Plot, EverySvgRendersToAPng) {
  expect_renders(tradeoff_svg(crowded(), "MiniLaMP"), "tradeoff", 1060);
  expect_renders(replay_svg(replay_rows(), "replay"), "replay", 1100);
}
