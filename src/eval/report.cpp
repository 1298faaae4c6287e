#include "eval/report.h"

#include "eval/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>

#include "common/error.h"

namespace specsteer::eval {
namespace {

int method_rank(const std::string& m) {
  static const char* order[] = {"llm", "slm", "slm+", "llm+", "sd", "lightcosteer", "costeer", "specsteer"};
  for (int i = 0; i < 8; ++i)
    if (m == order[i]) return i;
  return 8;
}

std::string display_name(const SummaryRow& r) {
  std::string n = r.method == "llm"            ? "LLM"
                  : r.method == "slm"          ? "SLM"
                  : r.method == "slm+"         ? "SLM+"
                  : r.method == "llm+"         ? "LLM+ (profile in the prompt)"
                  : r.method == "sd"           ? "Standard SD"
                  : r.method == "lightcosteer" ? "LightCoSteer"
                  : r.method == "costeer"      ? "CoSteer"
                  : r.method == "specsteer"    ? "SpecSteer"
                                               : r.method;
  // The setting string's tokens ("lambda=0.5 beta=2 K=8 plausible gamma=0.1")
  // in the paper's symbols; a recorded contrast rule is named too, so the two
  // rules stay apart when one run has both.
  std::vector<std::string> parts;
  std::string tok;
  for (size_t i = 0; i <= r.setting.size(); ++i) {
    if (i < r.setting.size() && r.setting[i] != ' ') {
      tok += r.setting[i];
      continue;
    }
    if (tok.rfind("lambda=", 0) == 0) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "\xCE\xBB = %g", r.lambda.value_or(std::atof(tok.c_str() + 7)));
      parts.push_back(buf);
    }
    else if (tok.rfind("beta=", 0) == 0) parts.push_back("\xCE\xB2 = " + tok.substr(5));
    else if (tok.rfind("K=", 0) == 0) parts.push_back("K = " + tok.substr(2));
    else if (tok.rfind("gamma=", 0) == 0 && !parts.empty()) parts.back() += " \xCE\xB3 = " + tok.substr(6);
    else if (!tok.empty()) parts.push_back(tok);
    tok.clear();
  }
  if (r.steer_candidates == std::optional<std::string>("contrast")) parts.push_back("contrast");
  if (!parts.empty()) {
    n += " (";
    for (size_t i = 0; i < parts.size(); ++i) n += (i ? ", " : "") + parts[i];
    n += ")";
  }
  return n;
}

using plot::fmt;
using plot::xml_escape;

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(path + ": cannot open for writing");
  out << text;
  out.flush();
  if (!out) throw Error(path + ": write failed");
}

// Tick step of 1, 2 or 5 x 10^k giving about `target` ticks over [lo, hi].
double nice_step(double lo, double hi, int target) {
  double raw = (hi - lo) / target;
  double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * p >= raw) return m * p;
  return 10 * p;
}

}  // namespace

std::vector<SummaryRow> summarize(const std::vector<ResultRow>& rows) {
  struct Acc {
    SummaryRow s;
    double r1 = 0, rl = 0;
    uint64_t drafted = 0, accepted = 0, rt = 0, bytes = 0, flops = 0;
    double fact = 0, items = 0, strict = 0;
  };
  std::map<std::pair<std::string, std::string>, Acc> groups;
  for (const auto& r : rows) {
    Acc& a = groups[{r.method, r.setting}];
    a.s.method = r.method;
    a.s.setting = r.setting;
    a.s.lambda = r.lambda;
    a.s.beta = r.beta;
    a.s.draft_k = r.draft_k;
    if (r.steer_candidates) a.s.steer_candidates = r.steer_candidates;
    if (r.plausibility) a.s.plausibility = r.plausibility;
    if (!r.keeps_profile_on_device) a.s.keeps_profile_on_device = false;
    if (r.exact) {
      a.s.n_exact += 1;
      a.fact += r.exact->fact_recall;
      a.items += r.exact->cons_items;
      a.strict += r.exact->cons_strict ? 1.0 : 0.0;
    }
    a.s.n += 1;
    a.r1 += r.rouge.rouge1.fmeasure;
    a.rl += r.rouge.rougeL.fmeasure;
    a.drafted += r.c.n_drafted;
    a.accepted += r.c.n_accepted;
    a.rt += r.c.round_trips;
    a.bytes += r.c.bytes_up + r.c.bytes_down;
    a.flops += r.c.slm_flops + r.c.llm_flops;
    a.s.n_generated += r.c.n_generated;
    a.s.seconds += r.c.seconds;
  }
  std::vector<SummaryRow> out;
  for (auto& [k, a] : groups) {
    SummaryRow s = a.s;
    s.rouge1 = 100.0 * a.r1 / double(s.n);
    s.rougeL = 100.0 * a.rl / double(s.n);
    if (a.drafted) s.acceptance_rate = double(a.accepted) / double(a.drafted);
    s.tok_per_s = s.seconds > 0 ? double(s.n_generated) / s.seconds : 0;
    double gen = std::max<double>(1.0, double(s.n_generated));
    s.round_trips_per_token = double(a.rt) / gen;
    s.bytes_per_token = double(a.bytes) / gen;
    s.flops_per_token = double(a.flops) / gen;
    s.total_flops = double(a.flops);
    if (s.n_exact) {
      s.fact_recall = 100.0 * a.fact / double(s.n_exact);
      s.cons_items = 100.0 * a.items / double(s.n_exact);
      s.cons_strict = 100.0 * a.strict / double(s.n_exact);
    }
    out.push_back(s);
  }
  double llm_tps = 0;
  for (const auto& s : out)
    if (s.method == "llm" && s.setting.empty()) llm_tps = s.tok_per_s;
  if (llm_tps > 0)
    for (auto& s : out) s.speedup = s.tok_per_s / llm_tps;
  std::sort(out.begin(), out.end(), [](const SummaryRow& a, const SummaryRow& b) {
    int ra = method_rank(a.method), rb = method_rank(b.method);
    if (ra != rb) return ra < rb;
    if (a.method != b.method) return a.method < b.method;
    // Paper's table 10 order: strict lambda first.
    double la = a.lambda.value_or(0), lb = b.lambda.value_or(0);
    if (la != lb) return la > lb;
    return a.setting < b.setting;
  });
  return out;
}

std::string summary_csv(const std::vector<SummaryRow>& s) {
  std::string o =
      "method,lambda,rouge1,rougeL,acceptance_rate,tok_per_s,speedup,round_trips_per_token,bytes_per_token,"
      "flops_per_token,n_records,n_generated,seconds,total_flops,setting,private,beta,draft,steer_candidates,"
      "plausibility,fact_recall,cons_items,cons_strict,n_exact\n";
  for (const auto& r : s) {
    o += r.method + ",";
    o += (r.lambda ? fmt("%g", *r.lambda) : "") + ",";
    o += fmt("%.4f", r.rouge1) + "," + fmt("%.4f", r.rougeL) + ",";
    o += (r.acceptance_rate ? fmt("%.6f", *r.acceptance_rate) : "") + ",";
    o += fmt("%.4f", r.tok_per_s) + ",";
    o += (r.speedup ? fmt("%.4f", *r.speedup) : "") + ",";
    o += fmt("%.6f", r.round_trips_per_token) + "," + fmt("%.3f", r.bytes_per_token) + ",";
    o += fmt("%.6e", r.flops_per_token) + ",";
    o += std::to_string(r.n) + "," + std::to_string(r.n_generated) + "," + fmt("%.6f", r.seconds) + ",";
    o += fmt("%.6e", r.total_flops) + ",";
    o += r.setting + ",";  // settings never contain commas ("lambda=0.5 beta=2")
    o += std::string(r.keeps_profile_on_device ? "1" : "0") + ",";
    o += fmt("%g", r.beta) + "," + std::to_string(r.draft_k) + ",";
    o += r.steer_candidates.value_or("") + "," + (r.plausibility ? fmt("%g", *r.plausibility) : "") + ",";
    if (r.n_exact)
      o += fmt("%.4f", r.fact_recall) + "," + fmt("%.4f", r.cons_items) + "," + fmt("%.4f", r.cons_strict) + ",";
    else
      o += ",,,";
    o += std::to_string(r.n_exact) + "\n";
  }
  return o;
}

std::string summary_markdown(const std::vector<SummaryRow>& s, const std::string& title,
                             const std::vector<std::string>& notes) {
  const bool exact = std::any_of(s.begin(), s.end(), [](const SummaryRow& r) { return r.n_exact > 0; });
  const bool replayed = std::any_of(s.begin(), s.end(), [](const SummaryRow& r) { return r.speedup_replayed; });
  std::string o = "# " + title + "\n\n";
  o += std::string("| Method | n | R-1 | R-L | ") + (exact ? "fact recall | cons. items | cons. strict | " : "") +
       "\xCE\xB1 (%) | tok/s | " + (replayed ? "Speedup (replayed)" : "Speedup") +
       " | round trips/tok | bytes/tok | FLOPs/tok | private |\n";
  o += std::string("|---|---:|---:|---:|") + (exact ? "---:|---:|---:|" : "") + "---:|---:|---:|---:|---:|---:|---|\n";
  for (const auto& r : s) {
    o += "| " + display_name(r) + " | " + std::to_string(r.n) + " | " + fmt("%.2f", r.rouge1) + " | " +
         fmt("%.2f", r.rougeL) + " | ";
    if (exact)
      o += r.n_exact ? fmt("%.2f", r.fact_recall) + " | " + fmt("%.2f", r.cons_items) + " | " +
                           fmt("%.2f", r.cons_strict) + " | "
                     : "- | - | - | ";
    o += (r.acceptance_rate ? fmt("%.2f", 100 * *r.acceptance_rate) : "-") + " | " + fmt("%.2f", r.tok_per_s) +
         " | " + (r.speedup ? fmt("%.2f\xC3\x97", *r.speedup) : "-") + " | " + fmt("%.3f", r.round_trips_per_token) +
         " | " + fmt("%.1f", r.bytes_per_token) + " | " + fmt("%.3g", r.flops_per_token) + " | " +
         (r.keeps_profile_on_device ? "yes" : "**no**") + " |\n";
  }
  o += "\nR-1/R-L: mean ROUGE-1/ROUGE-L F-measure x 100 (rouge_score's tokenizer). "
       "\xCE\xB1: accepted / drafted tokens over all records. tok/s: generated tokens / generation wall time. "
       "Speedup: tok/s relative to `llm` in the same run (replayed: on the real-shaped models the notes name). FLOPs: 2*N_matmul per forward position plus "
       "2*n_layer*n_ctx*d_attn attention, summed over every model's positions (prefill, drafts, verification, "
       "recovery), per generated token. private: **no** when something derived from the profile goes to the "
       "cloud (llm+: the retrieved profile in the Generalist's prompt; sd: the drafter's probabilities).\n";
  if (exact)
    o += "\nExact checks (MiniLaMP records, tools/minilamp/score.py's rules), x 100: fact recall = share of the "
         "record's private facts found verbatim; cons. items = share of atomic constraints met; cons. strict = "
         "share of texts meeting all.\n";
  for (const auto& n : notes) o += "\n" + n + "\n";
  return o;
}

std::string tradeoff_svg(const std::vector<SummaryRow>& s, const std::string& title) {
  const bool have_speedup = !s.empty() && std::all_of(s.begin(), s.end(), [](const SummaryRow& r) {
    return r.speedup.has_value();
  });
  auto xval = [&](const SummaryRow& r) { return have_speedup ? *r.speedup : r.tok_per_s; };
  // The legend holds one line per row: grow the picture to fit sweeps.
  const double W = 1060, L = 80, R = 440, T = 56, B = 64;
  const double H = std::max(520.0, T + 36 + 22.0 * static_cast<double>(s.size()) + 48);
  const double pw = W - L - R, ph = H - T - B;
  // Speed on a log axis: methods differ by factors (SLM alone can be 50x the
  // LLM while SpecSteer is 2x), which a linear axis crushes together.
  std::vector<double> xs_all;
  for (const auto& r : s) xs_all.push_back(xval(r));
  if (have_speedup) xs_all.push_back(1.0);  // keep the LLM reference line in view
  const plot::LogAxis xaxis = plot::LogAxis::covering(xs_all, 1.35, L, L + pw);
  double ylo = 0, yhi = 1;
  if (!s.empty()) {
    ylo = yhi = s[0].rougeL;
    for (const auto& r : s) {
      ylo = std::min(ylo, r.rougeL);
      yhi = std::max(yhi, r.rougeL);
    }
  }
  {
    const double span = std::max(yhi - ylo, 2.0), mid = (ylo + yhi) / 2;
    ylo = std::max(0.0, mid - span * 0.65);
    yhi = mid + span * 0.65;
  }
  auto px = [&](double x) { return xaxis(x); };
  auto py = [&](double y) { return T + ph - (y - ylo) / (yhi - ylo) * ph; };

  std::string o;
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + fmt("%g", W) + "\" height=\"" + fmt("%g", H) +
       "\" viewBox=\"0 0 " + fmt("%g", W) + " " + fmt("%g", H) + "\" font-family=\"DejaVu Sans, Arial, sans-serif\">\n";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o += "<text x=\"" + fmt("%g", W / 2) + "\" y=\"28\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">" +
       xml_escape(title) + "</text>\n";
  // Grid and ticks.
  for (double x : xaxis.ticks()) {
    o += "<line x1=\"" + fmt("%.1f", px(x)) + "\" y1=\"" + fmt("%.1f", T) + "\" x2=\"" + fmt("%.1f", px(x)) +
         "\" y2=\"" + fmt("%.1f", T + ph) + "\" stroke=\"#e4e4e4\"/>\n";
    o += "<text x=\"" + fmt("%.1f", px(x)) + "\" y=\"" + fmt("%.1f", T + ph + 18) +
         "\" text-anchor=\"middle\" font-size=\"12\">" + fmt("%g", x) + "</text>\n";
  }
  const double ys = nice_step(ylo, yhi, 6);
  for (double y = std::ceil(ylo / ys) * ys; y <= yhi + 1e-9; y += ys) {
    o += "<line x1=\"" + fmt("%.1f", L) + "\" y1=\"" + fmt("%.1f", py(y)) + "\" x2=\"" + fmt("%.1f", L + pw) +
         "\" y2=\"" + fmt("%.1f", py(y)) + "\" stroke=\"#e4e4e4\"/>\n";
    o += "<text x=\"" + fmt("%.1f", L - 8) + "\" y=\"" + fmt("%.1f", py(y) + 4) +
         "\" text-anchor=\"end\" font-size=\"12\">" + fmt("%g", std::round(y / ys) * ys) + "</text>\n";
  }
  o += "<rect x=\"" + fmt("%g", L) + "\" y=\"" + fmt("%g", T) + "\" width=\"" + fmt("%g", pw) + "\" height=\"" +
       fmt("%g", ph) + "\" fill=\"none\" stroke=\"#333\"/>\n";
  if (have_speedup)
    o += "<line x1=\"" + fmt("%.1f", px(1)) + "\" y1=\"" + fmt("%g", T) + "\" x2=\"" + fmt("%.1f", px(1)) +
         "\" y2=\"" + fmt("%g", T + ph) + "\" stroke=\"#888\" stroke-dasharray=\"5,4\"/>\n";
  o += "<text x=\"" + fmt("%g", L + pw / 2) + "\" y=\"" + fmt("%g", H - 18) +
       "\" text-anchor=\"middle\" font-size=\"14\">" +
       (have_speedup ? std::string("Speedup over LLM alone (\xC3\x97, log scale") +
                           (std::any_of(s.begin(), s.end(), [](const SummaryRow& r) { return r.speedup_replayed; })
                                ? ", replayed on real-shaped models"
                                : "") +
                           "; dashed line = LLM)"
                     : "Generated tokens/s (log scale; no llm row to compute speedup)") +
       "</text>\n";
  o += "<text transform=\"translate(22," + fmt("%g", T + ph / 2) +
       ") rotate(-90)\" text-anchor=\"middle\" font-size=\"14\">ROUGE-L F1 (\xC3\x97" "100, higher is better)</text>\n";

  struct Style {
    const char* color;
    int shape;  // 0 circle, 1 square, 2 triangle, 3 diamond
  };
  auto style = [](const std::string& m) -> Style {
    if (m == "llm") return {"#222222", 1};
    if (m == "slm") return {"#8c8c8c", 0};
    if (m == "slm+") return {"#1f77b4", 0};
    if (m == "llm+") return {"#222222", 0};
    if (m == "sd") return {"#2ca02c", 3};
    if (m == "lightcosteer") return {"#9467bd", 2};
    if (m == "costeer") return {"#ff7f0e", 2};
    if (m == "specsteer") return {"#d62728", 3};
    return {"#17becf", 0};
  };
  // Hollow markers with a dashed outline: methods that send something derived
  // from the profile (readable without colour, and in grey print).
  auto marker = [&](double x, double y, const Style& st, bool hollow = false) {
    std::string c = st.color;
    if (hollow) c = std::string("white\" stroke=\"") + st.color + "\" stroke-width=\"2\" stroke-dasharray=\"3,2";
    switch (st.shape) {
      case 1:
        return "<rect x=\"" + fmt("%.1f", x - 6) + "\" y=\"" + fmt("%.1f", y - 6) +
               "\" width=\"12\" height=\"12\" fill=\"" + c + "\"/>\n";
      case 2:
        return "<polygon points=\"" + fmt("%.1f", x) + "," + fmt("%.1f", y - 7) + " " + fmt("%.1f", x - 7) + "," +
               fmt("%.1f", y + 6) + " " + fmt("%.1f", x + 7) + "," + fmt("%.1f", y + 6) + "\" fill=\"" + c +
               "\"/>\n";
      case 3:
        return "<polygon points=\"" + fmt("%.1f", x) + "," + fmt("%.1f", y - 8) + " " + fmt("%.1f", x + 8) + "," +
               fmt("%.1f", y) + " " + fmt("%.1f", x) + "," + fmt("%.1f", y + 8) + " " + fmt("%.1f", x - 8) + "," +
               fmt("%.1f", y) + "\" fill=\"" + c + "\"/>\n";
      default:
        return "<circle cx=\"" + fmt("%.1f", x) + "\" cy=\"" + fmt("%.1f", y) + "\" r=\"6.5\" fill=\"" + c +
               "\"/>\n";
    }
  };
  // Join each method's lambdas in lambda order, one line per remaining
  // setting (beta, K, candidate rule).
  auto series = [](const SummaryRow& r) {
    std::string rest;
    for (size_t i = 0; i < r.setting.size();) {
      size_t j = r.setting.find(' ', i);
      if (j == std::string::npos) j = r.setting.size();
      const std::string tok = r.setting.substr(i, j - i);
      if (tok.rfind("lambda=", 0) != 0) rest += " " + tok;
      i = j + 1;
    }
    return r.method + rest + (r.steer_candidates ? " " + *r.steer_candidates : "");
  };
  std::map<std::string, std::vector<const SummaryRow*>> by_method;
  for (const auto& r : s) by_method[series(r)].push_back(&r);
  for (auto& [m, v] : by_method) {
    if (v.size() < 2) continue;
    std::string pts;
    for (auto* r : v) pts += fmt("%.1f", px(xval(*r))) + "," + fmt("%.1f", py(r->rougeL)) + " ";
    o += "<polyline points=\"" + pts + "\" fill=\"none\" stroke=\"" + style(v[0]->method).color +
         "\" stroke-width=\"1.5\" opacity=\"0.6\"/>\n";
  }
  // Every point is labelled (short name, lambda) where no other label or
  // marker is: the markers first, then the labels outward from their points.
  plot::LabelPlacer placer({L + 2, T + 2, L + pw - 2, T + ph - 2});
  for (const auto& r : s) placer.block({px(xval(r)) - 9, py(r.rougeL) - 9, px(xval(r)) + 9, py(r.rougeL) + 9});
  for (const auto& r : s) {
    const double x = px(xval(r)), y = py(r.rougeL);
    o += marker(x, y, style(r.method), !r.keeps_profile_on_device);
    const std::string label = display_name(r);
    const auto at = placer.place(x, y, label, 11);
    if (at.moved_far)
      o += "<line x1=\"" + fmt("%.1f", x) + "\" y1=\"" + fmt("%.1f", y) + "\" x2=\"" +
           fmt("%.1f", std::clamp(x, at.box.x0, at.box.x1)) + "\" y2=\"" +
           fmt("%.1f", std::clamp(y, at.box.y0, at.box.y1)) + "\" stroke=\"#999\" stroke-width=\"0.8\"/>\n";
    o += "<text class=\"point-label\" x=\"" + fmt("%.1f", at.x) + "\" y=\"" + fmt("%.1f", at.y) +
         "\" font-size=\"11\" fill=\"" + style(r.method).color + "\">" + xml_escape(label) + "</text>\n";
  }
  // Legend: one entry per row so each point can be read off with its numbers.
  double lx = L + pw + 18, ly = T + 6;
  o += "<text x=\"" + fmt("%g", lx) + "\" y=\"" + fmt("%g", ly + 4) +
       "\" font-size=\"13\" font-weight=\"bold\">Method: R-L, \xCE\xB1, speedup</text>\n";
  ly += 24;
  for (const auto& r : s) {
    o += marker(lx + 7, ly, style(r.method), !r.keeps_profile_on_device);
    std::string label = display_name(r) + ": " + fmt("%.2f", r.rougeL) + ", " +
                        (r.acceptance_rate ? fmt("\xCE\xB1 %.0f%%", 100 * *r.acceptance_rate) + ", " : "") +
                        (have_speedup ? fmt("%.2f\xC3\x97", *r.speedup) : fmt("%.1f tok/s", r.tok_per_s)) +
                        (r.keeps_profile_on_device ? "" : " [non-private]");
    o += "<text x=\"" + fmt("%g", lx + 20) + "\" y=\"" + fmt("%g", ly + 4) + "\" font-size=\"12\">" +
         xml_escape(label) + "</text>\n";
    ly += 22;
  }
  o += "<text x=\"" + fmt("%g", lx) + "\" y=\"" + fmt("%g", ly + 8) +
       "\" font-size=\"11\" fill=\"#444\">filled: the profile stays on the device;</text>\n";
  o += "<text x=\"" + fmt("%g", lx) + "\" y=\"" + fmt("%g", ly + 22) +
       "\" font-size=\"11\" fill=\"#444\">hollow, dashed: sends profile-derived data</text>\n";
  o += "</svg>\n";
  return o;
}

void write_reports(const std::string& dir, const std::vector<SummaryRow>& s, const std::string& title,
                   const std::vector<std::string>& notes) {
  write_file(dir + "/summary.csv", summary_csv(s));
  write_file(dir + "/summary.md", summary_markdown(s, title, notes));
  write_file(dir + "/tradeoff.svg", tradeoff_svg(s, title));
}

}  // namespace specsteer::eval
