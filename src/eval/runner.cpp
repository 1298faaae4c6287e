#include "eval/runner.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <type_traits>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "eval/exact.h"
#include "eval/flops.h"
#include "eval/manifest.h"
#include "eval/progress.h"
#include "eval/results.h"
#include "profile/profile.h"
#include "profile/record_reader.h"
#include "eval/replay.h"
#include "eval/schedule_json.h"
#include "steer/generate.h"

namespace specsteer::eval {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

struct Record {
  std::string id, user, x, reference;
  size_t index = 0;
  std::optional<ExactChecks> exact;  // MiniLaMP records: facts and constraints
};

struct Job {
  steer::Method method;
  std::string name, setting;
  std::optional<double> lambda;
  double beta = 1.0;
  int draft = 4;
  std::optional<steer::SteerCandidates> candidates;  // methods whose cloud sends a steering vector
};

std::string fmt_g(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

template <typename T>
std::string join_g(const std::vector<T>& v) {
  std::string out;
  for (const T& x : v) {
    if (!out.empty()) out += '/';
    out += fmt_g(static_cast<double>(x));
  }
  return out;
}

std::vector<Record> read_eval_records(const std::string& path, profile::Task task, int limit) {
  const std::string user_key = profile::task_template(task).user_key;
  std::vector<Record> out;
  std::set<std::string> ids;
  profile::detail::read_records(path, [&](const profile::detail::RawRecord& raw) {
    if (limit > 0 && out.size() >= static_cast<size_t>(limit)) return;
    const std::string where = path + ": " + raw.where;
    if (!raw.error.empty()) throw Error(where + ": " + raw.error);
    json j;
    std::string err;
    size_t err_line = 0;
    if (!profile::detail::parse_record(raw.text, raw.line, j, err, err_line))
      throw Error(path + ": line " + std::to_string(err_line) + ": " + err);
    if (!j.is_object()) throw Error(where + ": a record must be a JSON object");
    auto str = [&](const char* name) {
      auto it = j.find(name);
      if (it == j.end() || !it->is_string())
        throw Error(where + ": field '" + name + "' missing or not a string");
      return it->get<std::string>();
    };
    Record r;
    r.index = out.size();
    if (!j.contains(user_key))
      // The usual cause is data of another task: say which task it looks like.
      for (profile::Task other : {profile::Task::Abstract, profile::Task::Review, profile::Task::Writing,
                                  profile::Task::LaMP4, profile::Task::LaMP5, profile::Task::LaMP7})
        if (const std::string& k = profile::task_template(other).user_key; k != user_key && j.contains(k))
          throw Error(where + ": no '" + user_key + "' field, which --task " + std::string(profile::task_name(task)) +
                      " needs; the record has '" + k + "', as --task " + std::string(profile::task_name(other)) +
                      " records do (wrong --task or --data?)");
    r.user = str(user_key.c_str());
    r.x = str("input");
    r.reference = str("output");
    if (auto it = j.find("id"); it != j.end() && it->is_string())
      r.id = it->get<std::string>();
    else  // stable under reordering the file
      r.id = sha256_hex((r.user + "\n" + r.x).data(), r.user.size() + 1 + r.x.size()).substr(0, 16);
    if (!ids.insert(r.id).second) throw Error(where + ": duplicate record id '" + r.id + "'");
    r.exact = exact_checks_from_record(j, where);
    out.push_back(std::move(r));
  });
  if (out.empty()) throw Error(path + ": no records");
  return out;
}

// A sweep list: non-empty, no value twice (as printed), each valid.
template <typename T, typename Check>
void check_list(const std::vector<T>& values, const char* flag, Check valid) {
  if (values.empty()) throw Error(std::string(flag) + ": give at least one value");
  std::set<std::string> seen;
  for (const T& v : values) {
    std::string shown;
    if constexpr (std::is_same_v<T, std::string>)
      shown = v;
    else
      shown = fmt_g(static_cast<double>(v));
    if (const std::string why = valid(v); !why.empty())
      throw Error(std::string(flag) + ": " + shown + " " + why);
    if (!seen.insert(shown).second) throw Error(std::string(flag) + ": " + shown + " given twice");
  }
}

// The setting string, part of the resume key: lambda always for specsteer;
// beta, K and the candidate rule only where the method uses them and they
// differ from the paper's defaults (beta 1, K 4, contrast), so the rows of
// results directories made before these sweeps existed keep their keys.
std::string setting_string(const Job& j, const EvalConfig& cfg) {
  std::string out;
  auto add = [&](const std::string& t) {
    if (!out.empty()) out += ' ';
    out += t;
  };
  if (j.lambda) add("lambda=" + fmt_g(*j.lambda));
  const bool beta_used = j.method == steer::Method::SpecSteer || j.method == steer::Method::LightCoSteer;
  const bool draft_used = j.method == steer::Method::SpecSteer || j.method == steer::Method::Sd;
  if (beta_used && j.beta != 1.0) add("beta=" + fmt_g(j.beta));
  if (draft_used && j.draft != 4) add("K=" + std::to_string(j.draft));
  if (draft_used && cfg.draft_p_min > 0) {
    add("p_min=" + fmt_g(cfg.draft_p_min));
    if (cfg.draft_min != 1) add("min=" + std::to_string(cfg.draft_min));
  }
  if (draft_used && cfg.bonus) add("bonus");
  if (j.candidates == steer::SteerCandidates::Plausible) add("plausible gamma=" + fmt_g(cfg.plausibility));
  return out;
}

std::vector<Job> expand_jobs(const EvalConfig& cfg) {
  // The same rules (and words) as steer::validate, checked before anything runs.
  check_list(cfg.lambdas, "--lambda",
             [](double l) { return std::isfinite(l) && l > 0 ? "" : "lambda must be a finite number > 0"; });
  check_list(cfg.betas, "--beta",
             [](double b) { return std::isfinite(b) && b >= 0 ? "" : "beta must be a finite number >= 0"; });
  check_list(cfg.drafts, "--draft", [](int k) { return k >= 1 && k <= 256 ? "" : "must be in [1, 256]"; });
  std::vector<steer::SteerCandidates> rules;
  check_list(cfg.steer_candidates, "--steer-candidates", [&](const std::string& name) -> std::string {
    try {
      rules.push_back(steer::parse_candidates(name));
    } catch (const Error&) {
      return "is not a rule (contrast or plausible)";
    }
    return "";
  });
  std::vector<Job> jobs;
  std::set<std::string> seen;
  for (const auto& name : cfg.methods) {
    steer::Method m = steer::parse_method(name);
    std::string canon(steer::method_name(m));
    if (!seen.insert(canon).second) throw Error("--methods: '" + name + "' given twice");
    const bool spec = m == steer::Method::SpecSteer;
    const bool steers = spec || m == steer::Method::LightCoSteer;
    // Values a method does not use collapse to one job.
    const std::vector<double> lambdas = spec ? cfg.lambdas : std::vector<double>{0};
    const std::vector<double> betas = steers ? cfg.betas : std::vector<double>{1.0};
    const std::vector<int> drafts = spec || m == steer::Method::Sd ? cfg.drafts : std::vector<int>{4};
    std::vector<std::optional<steer::SteerCandidates>> cands(rules.begin(), rules.end());
    if (!steers) cands = {std::nullopt};
    for (double l : lambdas)
      for (double b : betas)
        for (int k : drafts)
          for (const auto& c : cands) {
            Job j{m, canon, "", spec ? std::optional<double>(l) : std::nullopt, b, k, c};
            j.setting = setting_string(j, cfg);
            jobs.push_back(std::move(j));
          }
  }
  if (jobs.empty()) throw Error("--methods: give at least one method");
  return jobs;
}

json model_json(const std::string& path, const Model& m) {
  const ModelConfig& c = m.config();
  return {{"path", fs::absolute(path).string()}, {"sha256", sha256_file(path)},
          {"bytes", fs::file_size(path)},       {"arch", c.arch},
          {"name", c.name},                     {"n_params_matmul", c.n_params_matmul()},
          {"n_layer", c.n_layer},               {"d_attn", c.q_dim()}};
}

// --lora-dir: the user's own adapter DIR/<user>.gguf (a user id that is not a
// plain file name is refused rather than looked up elsewhere).
std::shared_ptr<const LoraAdapter> user_adapter(const std::string& dir, const std::string& user, const Model& slm) {
  if (user.empty() || user.find('/') != std::string::npos || user.front() == '.')
    throw Error("--lora-dir: user id '" + user + "' cannot name an adapter file");
  const fs::path path = fs::path(dir) / (user + ".gguf");
  if (!fs::exists(path)) throw Error("--lora-dir: no adapter for user '" + user + "' (" + path.string() + ")");
  return LoraAdapter::load(path.string(), slm);
}

// The settings a results directory is bound to: rows made under other values
// must not be mixed into one summary.
json fingerprint(const EvalConfig& cfg, const json& models, const std::string& data_sha) {
  json fp = {{"task", cfg.task},
          {"data_sha256", data_sha},
          {"llm_sha256", models["llm"]["sha256"]},
          {"slm_sha256", models["slm"]["sha256"]},
          {"top_k", cfg.top_k},
          {"max_new_tokens", cfg.max_new},
          {"seed", cfg.seed},
          {"retrieve_k", cfg.retrieve_k},
          {"rouge_stemmer", cfg.rouge_stemmer},
          {"decoding", "greedy"},
          {"chat", true}};
  // Only when not the defaults, so directories made before these existed keep their fingerprint.
  if (cfg.specialist != "rag") fp["specialist"] = cfg.specialist;
  if (!cfg.lora_dir.empty()) fp["lora_dir"] = fs::absolute(cfg.lora_dir).lexically_normal().string();
  if (cfg.repeat.active()) fp["repeat"] = {{"penalty", cfg.repeat.penalty}, {"last_n", cfg.repeat.last_n}};
  if (!cfg.lora.empty()) {
    json l = json::array();
    for (const auto& arg : cfg.lora) {
      const auto [file, scale] = parse_lora_arg(arg);
      l.push_back({{"sha256", sha256_file(file)}, {"scale", scale}});
    }
    fp["lora"] = l;
  }
  return fp;
}

std::string source_dir_for_git() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    std::string rev = git_revision(exe.parent_path().string());
    if (rev != "unknown") return exe.parent_path().string();
  }
  return fs::current_path().string();
}

void write_json(const fs::path& p, const json& j) {
  fs::path tmp = p;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(tmp.string() + ": cannot open for writing");
    out << j.dump(2) << "\n";
    if (!out.flush()) throw Error(tmp.string() + ": write failed");
  }
  fs::rename(tmp, p);  // atomic: a Ctrl-C never leaves half a manifest
}

}  // namespace

steer::GenerationResult generate_median(const steer::Models& models, const steer::GenerateRequest& req, int repeats,
                                        const std::string& what) {
  std::vector<steer::GenerationResult> runs;
  for (int k = 0; k < std::max(1, repeats); ++k) {
    runs.push_back(steer::generate(models, req));
    if (runs.back().stop_reason == "cloud_error") throw Error(what + ": cloud failed: " + runs.back().cloud_error);
  }
  auto decode_s = [](const steer::GenerationResult& r) { return r.counters.t_total_s - r.counters.t_prefill_s; };
  std::sort(runs.begin(), runs.end(), [&](const auto& a, const auto& b) { return decode_s(a) < decode_s(b); });
  return std::move(runs[runs.size() / 2]);
}

EvalOutcome run_eval(const EvalConfig& cfg, FILE* log, bool tty) {
  if (cfg.replay_edge.empty() != cfg.replay_llm.empty())
    throw Error("eval: --replay-edge and --replay-llm go together (the edge and the cloud model to replay on)");
  if (cfg.out_dir.empty()) throw Error("--out: give an output directory");
  const profile::Task task = profile::parse_task(cfg.task);
  if (task != profile::Task::Abstract && task != profile::Task::Review && task != profile::Task::Writing)
    throw Error("--task: eval runs the LongLaMP tasks abstract|review|writing, got '" + cfg.task + "'");
  if (cfg.limit < 0) throw Error("--limit: must be >= 0");
  if (cfg.max_new < 1) throw Error("settings: max_new (-n) must be >= 1, got " + std::to_string(cfg.max_new));
  if (!(cfg.plausibility >= 0 && cfg.plausibility <= 1)) throw Error("--plausibility: must be in [0, 1]");
  const std::vector<Job> jobs = expand_jobs(cfg);
  for (const auto& [flag, path] : {std::pair{"--data", cfg.data}, {"--slm", cfg.slm_path}, {"--llm", cfg.llm_path}})
    if (!fs::is_regular_file(path)) throw Error(std::string(flag) + ": no such file '" + path + "'");
  // Every job's settings are validated up front, before any model loads.
  auto job_settings = [&](const Job& job) {
    steer::Settings s;
    s.method = job.method;
    s.lambda = job.lambda.value_or(0.5);
    s.beta = job.beta;
    s.draft = job.draft;
    s.draft_min = std::min(cfg.draft_min, job.draft);
    s.draft_p_min = cfg.draft_p_min;
    s.pipeline = cfg.pipeline;
    s.bonus = cfg.bonus;
    s.top_k = cfg.top_k;
    s.max_new = cfg.max_new;
    s.steer_candidates = job.candidates.value_or(steer::SteerCandidates::Contrast);
    s.plausibility = cfg.plausibility;
    s.repeat = cfg.repeat;
    steer::validate(s);
    return s;
  };
  for (const Job& job : jobs) job_settings(job);

  std::vector<Record> records = read_eval_records(cfg.data, task, cfg.limit);
  fs::create_directories(cfg.out_dir);
  const fs::path out(cfg.out_dir);

  std::fprintf(log, "[eval] loading models\n");
  LoadOptions lo;
  lo.n_threads = cfg.n_threads;
  if (cfg.specialist != "rag" && cfg.specialist != "lora" && cfg.specialist != "lora+rag")
    throw Error("--specialist must be rag, lora or lora+rag, not '" + cfg.specialist + "'");
  const bool adapters = !cfg.lora.empty() || !cfg.lora_dir.empty();
  if (cfg.specialist != "rag" && !adapters)
    throw Error("--specialist " + cfg.specialist + " needs --lora or --lora-dir");
  if (cfg.specialist == "rag" && adapters)
    throw Error("--lora/--lora-dir give the Specialist an adapter: say --specialist lora (x alone) or lora+rag");
  if (!cfg.lora_dir.empty() && !fs::is_directory(cfg.lora_dir))
    throw Error("--lora-dir: '" + cfg.lora_dir + "' is not a directory");
  steer::Models models = steer::Models::load(cfg.llm_path, cfg.slm_path, lo);
  if (cfg.byte_level) models.pair_through_bytes();
  if (models.byte_level)
    for (const Job& j : jobs)
      if (!steer::runs_across_vocabularies(j.method))
        throw Error("--methods: '" + j.name + "' needs the LLM and SLM to share a vocabulary, and they pair through " +
                    "bytes (" + (models.byte_level_why.empty() ? "--byte-level" : models.byte_level_why) +
                    "); a byte-level pair runs llm, slm, slm+, llm+ and specsteer");
  const std::vector<LoraRef> edge_lora = load_lora_args(cfg.lora, *models.slm);
  // First calls fault in weights and grow buffers: keep them out of the timings.
  warm_up(models.llm);
  warm_up(models.slm);

  json models_j = {{"llm", model_json(cfg.llm_path, *models.llm)}, {"slm", model_json(cfg.slm_path, *models.slm)}};
  if (models.byte_level) models_j["byte_level"] = true;  // part of the run's fingerprint
  const std::string data_sha = sha256_file(cfg.data);
  json fp = fingerprint(cfg, models_j, data_sha);
  const fs::path manifest_path = out / "manifest.json";
  json manifest = json::object();
  if (fs::exists(manifest_path)) {
    std::ifstream in(manifest_path);
    try {
      manifest = json::parse(in);
    } catch (const json::exception& e) {
      throw Error(manifest_path.string() + ": not valid JSON (" + e.what() + ")");
    }
    const json& old = manifest.value("fingerprint", json::object());
    // Directories started before the beta/K sweeps held one beta and K in the
    // fingerprint, not in the setting strings: only the defaults map onto
    // today's keys.
    for (const auto& [key, paper] : {std::pair{"beta", json(1.0)}, std::pair{"draft", json(4)}})
      if (old.contains(key) && old[key] != paper)
        throw Error(cfg.out_dir + " holds a run made with " + key + " " + old[key].dump() +
                    " before the sweep settings existed; use another --out");
    for (auto it = fp.begin(); it != fp.end(); ++it)
      if (!old.contains(it.key()) || old[it.key()] != it.value())
        throw Error(cfg.out_dir + " holds a run with different settings (" + it.key() + ": " +
                    (old.contains(it.key()) ? old[it.key()].dump() : "absent") + " there, " + it.value().dump() +
                    " now); use another --out");
  }
  const std::string src_dir = source_dir_for_git();
  json runs = manifest.value("runs", json::array());
  runs.push_back({{"started_at", utc_now_iso8601()},
                  {"command_line", cfg.command_line},
                  {"git_revision", git_revision(src_dir)},
                  {"git_dirty", git_dirty(src_dir)}});
  manifest = {{"tool", "specsteer 0.1.0"},
              {"fingerprint", fp},
              {"config",
               {{"data", fs::absolute(cfg.data).string()},
                {"task", cfg.task},
                {"methods", cfg.methods},
                {"lambdas", cfg.lambdas},
                {"betas", cfg.betas},
                {"drafts", cfg.drafts},
                {"draft_min", cfg.draft_min},
                {"draft_p_min", cfg.draft_p_min},
                {"pipeline", cfg.pipeline},
                {"bonus", cfg.bonus},
                {"steer_candidates", cfg.steer_candidates},
                {"plausibility", cfg.plausibility},
                {"top_k", cfg.top_k},
                {"limit", cfg.limit},
                {"max_new_tokens", cfg.max_new},
                {"seed", cfg.seed},
                {"retrieve_k", cfg.retrieve_k},
                {"rouge_stemmer", cfg.rouge_stemmer},
                {"cloud", cfg.cloud.empty() ? json("in-process") : json(cfg.cloud)},
                {"decoding", "greedy (temperature 0); acceptance by the seeded ratio test"}}},
              {"data", {{"path", fs::absolute(cfg.data).string()}, {"sha256", data_sha}, {"records", records.size()}}},
              {"models", models_j},
              {"git_revision", runs.back()["git_revision"]},
              {"runs", runs}};
  write_json(manifest_path, manifest);

  // The profile store lives with the results, so the run is self-contained.
  const std::string db = (out / "profile.db").string();
  profile::Store store = profile::Store::open(db);
  profile::ImportReport rep = store.import_file(task, cfg.data);
  std::fprintf(log, "[eval] profile store %s: %zu records, %zu new entries, %zu skipped\n", db.c_str(), rep.records,
               rep.entries, rep.skipped);

  ResultsLog results((out / "results.jsonl").string());
  if (results.dropped_torn_bytes())
    std::fprintf(log, "[eval] dropped a torn last line (%zu bytes) of results.jsonl\n", results.dropped_torn_bytes());

  EvalOutcome outcome;
  outcome.records = records.size();
  Progress progress(records.size() * jobs.size(), log, tty);
  const ModelConfig& llm_cfg = models.llm->config();
  const ModelConfig& slm_cfg = models.slm->config();
  std::map<std::string, const Record*> record_by_id;
  for (const Record& rec : records) record_by_id[rec.id] = &rec;
  for (const Record& rec : records) {
    std::optional<profile::Prompts> prompts;  // built once per record, when needed
    std::vector<LoraRef> record_lora;         // --lora, then the user's --lora-dir adapter: loaded once per record
    for (const Job& job : jobs) {
      const std::string label = job.name + (job.setting.empty() ? "" : " " + job.setting) + " " + rec.id;
      if (results.done({rec.id, job.name, job.setting})) {
        ++outcome.skipped;
        progress.step(label + " (done before)", 0, 0, true);
        continue;
      }
      if (!prompts) {
        prompts = profile::build_prompts(store, rec.user, task, rec.x, cfg.retrieve_k);
        record_lora = edge_lora;
        if (!cfg.lora_dir.empty()) record_lora.push_back({user_adapter(cfg.lora_dir, rec.user, *models.slm), 1.0f});
      }
      steer::GenerateRequest req;
      req.x = prompts->x;
      // --specialist: the SLM+ is the retrieved profile in the prompt (rag),
      // the LoRA adapter on x alone (lora), or both (lora+rag).
      req.personalized = cfg.specialist == "lora" ? prompts->x : prompts->personalized;
      req.edge_lora = record_lora;
      req.settings = job_settings(job);
      req.settings.seed = cfg.seed + rec.index;
      req.on_cloud_failure = steer::CloudFailure::Fail;  // a benchmark must not silently fall back
      std::unique_ptr<steer::Transport> link;
      if (steer::uses_cloud(job.method) && cfg.cloud_transport) {
        link = cfg.cloud_transport();
        req.cloud = link.get();
      }
      steer::GenerationResult g =
          generate_median(models, req, cfg.repeats, "record " + rec.id + ", method " + job.name);

      ResultRow row;
      row.record_id = rec.id;
      row.user_id = rec.user;
      row.method = job.name;
      row.setting = job.setting;
      row.lambda = job.lambda;
      row.beta = job.beta;
      row.draft_k = job.draft;
      if (job.candidates) {
        row.steer_candidates = std::string(steer::candidates_name(*job.candidates));
        if (*job.candidates == steer::SteerCandidates::Plausible) row.plausibility = cfg.plausibility;
      }
      row.keeps_profile_on_device = steer::keeps_profile_on_device(job.method);
      if (rec.exact) row.exact = score_exact(*rec.exact, g.text);
      row.prediction = g.text;
      row.reference = rec.reference;
      row.tokens = g.tokens;
      row.stop_reason = g.stop_reason;
      row.rouge_stemmer = cfg.rouge_stemmer;
      row.rouge = rouge(rec.reference, g.text, cfg.rouge_stemmer);
      const steer::Counters& c = g.counters;
      row.c.n_generated = c.n_generated;
      row.c.n_drafted = c.n_drafted;
      row.c.n_accepted = c.n_accepted;
      row.c.n_rejections = c.rejections;
      row.c.round_trips = c.round_trips;
      row.c.bytes_up = c.bytes_up;
      row.c.bytes_down = c.bytes_down;
      row.c.t_prefill_s = c.t_prefill_s;
      row.c.t_total_s = c.t_total_s;
      row.c.seconds = std::max(0.0, c.t_total_s - c.t_prefill_s);
      row.c.t_draft_s = c.t_draft_s;
      row.c.t_verify_s = c.t_cloud_s;
      row.c.t_recover_s = c.t_recover_s;
      // Exact work as the sequences counted it (prefill, drafts, verification,
      // re-evaluation after rollback), SLM- and SLM+ both on the small model.
      const ForwardWork llm_w{c.positions_llm, c.attention_llm};
      ForwardWork slm_w{c.positions_slm_minus, c.attention_slm_minus};
      slm_w += ForwardWork{c.positions_slm_plus, c.attention_slm_plus};
      row.c.llm_positions = llm_w.positions;
      row.c.llm_attention = llm_w.attention_work;
      row.c.slm_positions = slm_w.positions;
      row.c.slm_attention = slm_w.attention_work;
      row.c.llm_flops = forward_flops(llm_cfg, llm_w);
      row.c.slm_flops = forward_flops(slm_cfg, slm_w);
      row.breakdown = breakdown_json(c);
      row.schedule = std::move(g.schedule);
      results.append(row);
      ++outcome.generated;
      progress.step(label, c.n_drafted, c.n_accepted);
    }
  }
  progress.finish();

  // Exact checks from this run's records (rows resumed from runs that predate
  // them included); rows of records outside --limit keep what they carry.
  std::vector<ResultRow> rows = results.rows();
  for (ResultRow& r : rows)
    if (auto it = record_by_id.find(r.record_id); it != record_by_id.end() && it->second->exact)
      r.exact = score_exact(*it->second->exact, r.prediction);
  outcome.summary = summarize(rows);
  const std::string title = "LongLaMP " + cfg.task + ": SLM " + fs::path(cfg.slm_path).filename().string() +
                            " / LLM " + fs::path(cfg.llm_path).filename().string() + ", " +
                            std::to_string(records.size()) + " records" +
                            (cfg.specialist == "rag" ? "" : ", Specialist " + cfg.specialist + " (LoRA adapter on SLM+)");
  std::vector<std::string> notes = {
      "Greedy decoding, max " + std::to_string(cfg.max_new) + " new tokens, beta " + join_g(cfg.betas) + ", K " +
          join_g(cfg.drafts) + " (settings other than beta 1 and K 4 are named in the method column), steering "
          "vector of at most " + std::to_string(cfg.top_k) + " entries (contrast: the paper's top-k of "
          "h_LLM - beta*h_SLM-; plausible: ids with p_LLM >= gamma * max p_LLM, gamma " + fmt_g(cfg.plausibility) +
          "), seed " +
          std::to_string(cfg.seed) + ", " + std::to_string(cfg.retrieve_k) + " retrieved profile entries" +
          (cfg.rouge_stemmer ? ", ROUGE with Porter stemming" : "") + ".",
      "FLOPs: every forward position each model ran (prefill, drafts, verification, recovery, re-evaluation "
      "after rollback) with the context length it attended, as the engine's sequences counted them.",
      "Models: llm sha256 " + models_j["llm"]["sha256"].get<std::string>() + ", slm sha256 " +
          models_j["slm"]["sha256"].get<std::string>() + "; git " + runs.back()["git_revision"].get<std::string>() +
          ". Full configuration in manifest.json."};
  if (!cfg.replay_edge.empty() || !cfg.replay_llm.empty()) {
    if (cfg.replay_edge.empty() || cfg.replay_llm.empty())
      throw Error("eval: --replay-edge and --replay-llm go together");
    ReplayModels rm;
    rm.edge = Model::load(cfg.replay_edge, {.n_threads = cfg.n_threads});
    rm.llm = Model::load(cfg.replay_llm, {.n_threads = cfg.n_threads});
    rm.cloud_slm = rm.edge;
    if (tty) std::fprintf(log, "replaying the schedules on %s / %s ...\n", cfg.replay_edge.c_str(), cfg.replay_llm.c_str());
    const size_t n = replay_speedups(rows, outcome.summary, rm, ReplayParams{});
    notes.push_back("Speedups replayed (" + std::to_string(n) + " rows) on edge " +
                    fs::path(cfg.replay_edge).filename().string() + " and cloud " +
                    fs::path(cfg.replay_llm).filename().string() +
                    " (`specsteer replay`'s model: the recorded forward passes re-run on these models, RTT 0, both "
                    "prefills included; slm, slm+ and llm+ as their model decoding alone), against the LLM alone; "
                    "tok/s stays the bundled pair's.");
  }
  write_reports(cfg.out_dir, outcome.summary, title, notes);
  manifest["runs"].back()["finished_at"] = utc_now_iso8601();
  manifest["runs"].back()["generated"] = outcome.generated;
  manifest["runs"].back()["skipped"] = outcome.skipped;
  write_json(manifest_path, manifest);
  return outcome;
}

}  // namespace specsteer::eval
