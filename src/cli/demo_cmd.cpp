// specsteer demo: SpecSteer and the baselines on a few bundled MiniLaMP
// records with the bundled Specialist/Generalist pair, texts side by side and
// a speed/acceptance table. Everything it reads ships with the repository.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command.h"
#include "common/error.h"
#include "eval/replay.h"
#include "eval/rouge.h"
#include "eval/runner.h"
#include "profile/profile.h"
#include "steer/generate.h"

namespace specsteer::cli {
namespace {

namespace fs = std::filesystem;

// The repository root: next to the binary (build/specsteer -> ..), else the
// source tree this binary was built from.
fs::path repo_root() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  for (fs::path p = ec ? fs::path() : exe.parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path())
    if (fs::exists(p / "models/minilamp/generalist.gguf")) return p;
  return SPECSTEER_SOURCE_DIR;
}

struct DemoOpts {
  std::string llm, slm, data, methods = "llm,slm,slm+,sd,specsteer";
  std::string replay_llm, replay_edge;  // real-shaped models to replay the demo's schedules on
  int records = 3, n = 96, threads = 0, draft = 4, repeats = 3;
  double lambda = 0.5, beta = 1.0;
  uint64_t seed = 0;
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

std::string fmt_g(double v, int digits = 6) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

std::string one_line(std::string s, size_t max) {
  for (char& c : s)
    if (c == '\n' || c == '\t') c = ' ';
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

struct Totals {
  double rougeL = 0, seconds = 0, accept = 0;  // seconds: decode time (after prefill), median of repeats
  uint64_t drafted = 0, accepted = 0, generated = 0, round_trips = 0, bytes = 0;
  int runs = 0;
};

void run_demo(const DemoOpts& o) {
  const fs::path root = repo_root();
  const std::string llm = o.llm.empty() ? (root / "models/minilamp/generalist.gguf").string() : o.llm;
  const std::string slm = o.slm.empty() ? (root / "models/minilamp/specialist.gguf").string() : o.slm;
  const std::string data = o.data.empty() ? (root / "data/minilamp/demo.jsonl").string() : o.data;
  for (const auto& f : {llm, slm, data})
    if (!fs::exists(f)) throw Error("demo: '" + f + "' not found (pass --llm/--slm/--data)");

  // The user's history goes into a private store on "the device": a fresh
  // temporary database, removed afterwards.
  const fs::path db = fs::temp_directory_path() / ("specsteer-demo-" + std::to_string(::getpid()) + ".db");
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ec;
      fs::remove(p, ec);
    }
  } cleanup{db};

  std::ifstream in(data);
  std::vector<nlohmann::json> records;
  for (std::string line; std::getline(in, line) && static_cast<int>(records.size()) < o.records;) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      records.push_back(nlohmann::json::parse(line));
    } catch (const nlohmann::json::exception& e) {
      throw Error(data + ": line " + std::to_string(records.size() + 1) + ": " + e.what());
    }
  }
  if (records.empty()) throw Error(data + ": no records");

  if (o.repeats < 1) throw Error("--repeats must be >= 1");
  if (o.replay_llm.empty() != o.replay_edge.empty())
    throw Error("--replay-llm and --replay-edge go together (the cloud's and the edge's real-shaped models)");
  auto models = steer::Models::load(llm, slm, {.n_threads = o.threads});
  // First calls fault in weights and grow buffers: keep them out of the timings.
  eval::warm_up(models.llm);
  eval::warm_up(models.slm);
  std::vector<eval::TraceEntry> traces;
  std::printf("Generalist (cloud): %s, %.2fM parameters\nSpecialist (edge):  %s, %.3fM parameters\n\n", llm.c_str(),
              models.llm->config().n_params_total() / 1e6, slm.c_str(), models.slm->config().n_params_total() / 1e6);

  const auto methods = split(o.methods);
  std::vector<Totals> totals(methods.size());
  for (size_t ri = 0; ri < records.size(); ++ri) {
    const auto& rec = records[ri];
    const std::string task_name = rec.value("task", "review");
    const auto task = profile::parse_task(task_name);
    const auto& tmpl = profile::task_template(task);
    const std::string user = rec.at(tmpl.user_key).get<std::string>();
    {
      // Import this record's profile (the store is idempotent, so repeated users are fine).
      const fs::path one = fs::temp_directory_path() / ("specsteer-demo-" + std::to_string(::getpid()) + ".jsonl");
      std::ofstream(one) << rec.dump() << "\n";
      auto store = profile::Store::open(db.string());
      store.import_file(task, one.string(), true);
      fs::remove(one);
    }
    auto store = profile::Store::open(db.string(), profile::Store::Mode::ReadOnly);
    const auto prompts = profile::build_prompts(store, user, task, rec.at("input").get<std::string>());
    const std::string reference = rec.value("output", "");
    std::printf("== record %zu/%zu (%s, user %s)\ninput:     %s\nreference: %s\n", ri + 1, records.size(),
                task_name.c_str(), user.c_str(), one_line(prompts.x, 160).c_str(), one_line(reference, 160).c_str());
    for (size_t mi = 0; mi < methods.size(); ++mi) {
      steer::GenerateRequest req;
      req.x = prompts.x;
      req.personalized = prompts.personalized;
      req.settings.method = steer::parse_method(methods[mi]);
      req.settings.lambda = o.lambda;
      req.settings.beta = o.beta;
      req.settings.draft = o.draft;
      req.settings.max_new = o.n;
      req.settings.seed = o.seed;
      const auto r = eval::generate_median(models, req, o.repeats, "demo record " + std::to_string(ri + 1));
      if (steer::uses_cloud(req.settings.method))
        traces.push_back({std::to_string(ri), methods[mi] + (methods[mi] == "specsteer" ? " lambda=" + fmt_g(o.lambda) : ""),
                          r.schedule});
      const auto score = eval::rouge(reference, r.text);
      auto& t = totals[mi];
      t.rougeL += score.rougeL.fmeasure;
      t.seconds += r.counters.t_total_s - r.counters.t_prefill_s;
      t.drafted += r.counters.n_drafted;
      t.accepted += r.counters.n_accepted;
      t.generated += r.counters.n_generated;
      t.round_trips += r.counters.round_trips;
      t.bytes += r.counters.bytes_up + r.counters.bytes_down;
      t.runs++;
      std::printf("  %-12s %s\n", methods[mi].c_str(), one_line(r.text, 150).c_str());
    }
    std::printf("\n");
  }

  auto tok_s = [](const Totals& t) { return t.seconds > 0 ? static_cast<double>(t.generated) / t.seconds : 0.0; };
  double llm_tok_s = 0;
  for (size_t mi = 0; mi < methods.size(); ++mi)
    if (methods[mi] == "llm") llm_tok_s = tok_s(totals[mi]);
  std::printf("| method | ROUGE-L | acceptance | tok/s | speedup vs llm | round trips/token | bytes/token |\n");
  std::printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (size_t mi = 0; mi < methods.size(); ++mi) {
    const auto& t = totals[mi];
    const double gen = std::max<double>(1.0, static_cast<double>(t.generated));
    std::string acc = t.drafted ? std::to_string(static_cast<int>(100.0 * t.accepted / t.drafted + 0.5)) + "%" : "-";
    char speed[16] = "-";
    if (llm_tok_s > 0) std::snprintf(speed, sizeof speed, "%.2fx", tok_s(t) / llm_tok_s);
    std::printf("| %s | %.1f | %s | %.0f | %s | %.2f | %.1f |\n", methods[mi].c_str(), 100.0 * t.rougeL / t.runs,
                acc.c_str(), tok_s(t), speed, t.round_trips / gen, t.bytes / gen);
  }
  std::printf("\nROUGE-L F1 x100 against the reference, averaged over %zu records; tok/s = tokens / decode time "
              "(prefill excluded, median of %d runs, after a warm-up pass).\n",
              records.size(), o.repeats);
  std::printf("Both bundled models are tiny (%.2fM and %.3fM parameters): verifying K+1 rows costs the Generalist "
              "several decode steps, unlike a real cloud model, so this table understates what the method saves.\n",
              models.llm->config().n_params_total() / 1e6, models.slm->config().n_params_total() / 1e6);
  if (traces.empty()) return;
  if (o.replay_llm.empty()) {
    std::printf("To see these schedules at deployment sizes, replay them on real-shaped models:\n"
                "  specsteer gguf synth --preset qwen3-0.6b --type q4_0 -o edge.gguf\n"
                "  specsteer gguf synth --preset qwen3-8b --type q4_0 -o cloud.gguf\n"
                "  specsteer demo --replay-edge edge.gguf --replay-llm cloud.gguf\n");
    return;
  }
  eval::ReplayModels rm;
  rm.edge = Model::load(o.replay_edge, {.n_threads = o.threads});
  rm.llm = Model::load(o.replay_llm, {.n_threads = o.threads});
  rm.cloud_slm = rm.edge;
  // Progress is for a person watching: only on a terminal, and after
  // everything printed so far (stdout is block-buffered in a pipe).
  std::fflush(stdout);
  if (::isatty(::fileno(stderr)))
    std::fprintf(stderr, "replaying %zu schedules on %s / %s ...\n", traces.size(), o.replay_edge.c_str(),
                 o.replay_llm.c_str());
  const auto rows = eval::replay_traces(traces, rm, eval::ReplayParams{}, {0.0});
  std::string line;
  for (const auto& r : rows)
    line += (line.empty() ? "" : ", ") + r.label + " " + fmt_g(r.speedup(), 3) + "x";
  std::printf("Replayed on edge %s + cloud %s (RTT 0, prefill included): %s the LLM alone's speed.\n",
              fs::path(o.replay_edge).filename().c_str(), fs::path(o.replay_llm).filename().c_str(), line.c_str());
}

Registrar demo_cmd("demo", [](CLI::App& root) {
  auto o = std::make_shared<DemoOpts>();
  auto* sub = root.add_subcommand("demo", "Run SpecSteer and baselines on bundled MiniLaMP records");
  sub->add_option("--llm", o->llm, "Generalist GGUF (default: models/minilamp/generalist.gguf)");
  sub->add_option("--slm", o->slm, "Specialist GGUF (default: models/minilamp/specialist.gguf)");
  sub->add_option("--data", o->data, "LongLaMP-layout JSONL (default: data/minilamp/demo.jsonl)");
  sub->add_option("--methods", o->methods, "Comma-separated methods")->capture_default_str();
  sub->add_option("--records", o->records, "How many records to run")->capture_default_str();
  sub->add_option("-n,--n-predict", o->n, "Max new tokens per generation")->capture_default_str();
  sub->add_option("--lambda", o->lambda, "SpecSteer lambda (Eq. 7)")->capture_default_str();
  sub->add_option("--beta", o->beta, "Steering strength beta (Eq. 8)")->capture_default_str();
  sub->add_option("--draft", o->draft, "Draft length K")->capture_default_str();
  sub->add_option("-s,--seed", o->seed, "Seed")->capture_default_str();
  sub->add_option("-t,--threads", o->threads, "Threads of the process (0 = physical cores)")->capture_default_str();
  sub->add_option("--repeats", o->repeats, "Runs per generation; timings are their median")->capture_default_str();
  sub->add_option("--replay-edge", o->replay_edge, "Edge model to replay the demo's schedules on (e.g. gguf synth qwen3-0.6b)");
  sub->add_option("--replay-llm", o->replay_llm, "Cloud model to replay the demo's schedules on (e.g. gguf synth qwen3-8b)");
  sub->callback([o] { run_demo(*o); });
});

}  // namespace
}  // namespace specsteer::cli
