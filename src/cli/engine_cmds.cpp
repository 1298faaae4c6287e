// Engine commands: run, logits, bench.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/options.h"
#include "common/error.h"
#include "common/timer.h"
#include "model/benchmark.h"
#include "model/model.h"
#include "sampling/sampling.h"
#include "tokenizer/tokenizer.h"

namespace specsteer::cli {
namespace {

KvType parse_kv(const std::string& s) {
  if (s == "f32") return KvType::F32;
  if (s == "f16") return KvType::F16;
  throw Error("--kv-type must be f32 or f16, not '" + s + "'");
}

// llama.cpp's default context: enough for chat, and a model's training
// context (40,960 for Qwen3) is not reserved unless asked for.
constexpr int kDefaultContext = 4096;

// Memory of this process from /proc/self/status: "VmRSS" (resident now) or
// "VmHWM" (peak resident); 0 when /proc cannot tell.
uint64_t status_bytes(const std::string& key) {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind(key + ":", 0) == 0) return std::stoull(line.substr(key.size() + 1)) * 1024;
  return 0;
}

// --lora FILE[:SCALE] (repeatable) and --lora-merge on the engine commands.
struct LoraOpts {
  std::vector<std::string> files;
  bool merge = false;
  void add_to(CLI::App* sub) {
    sub->add_option("--lora", files, "LoRA adapter (llama.cpp GGUF), FILE or FILE:SCALE; repeatable");
    sub->add_flag("--lora-merge", merge, "merge the adapters into a private copy of the weights they adapt (re-quantized to their type)");
  }
  // The model with the adapters merged (--lora-merge) or the base model.
  std::shared_ptr<Model> load(const std::string& path, int threads) const {
    LoadOptions lo{.n_threads = threads};
    if (merge) {
      if (files.empty()) throw Error("--lora-merge needs --lora");
      for (const auto& f : files) lo.merge_lora.push_back(parse_lora_arg(f));
    }
    return Model::load(path, lo);
  }
  // Adapters applied per pass (none when merged).
  std::vector<LoraRef> refs(const Model& base) const { return merge ? std::vector<LoraRef>{} : load_lora_args(files, base); }
};

struct RunOpts {
  std::string model, prompt, prompt_file, kv = "f16";
  bool prompt_given = false;
  LoraOpts lora;
  int n = 64, threads = 0, ctx = 0;
  SamplingOptions sampling;
  std::vector<std::string> stop;
  std::string system;
  uint64_t seed = 42;
  bool json = false, no_chat = false;
};

void run(RunOpts o) {
  Stopwatch since_start;
  o.prompt = resolve_prompt(o.prompt, o.prompt_file, o.prompt_given);
  auto model = o.lora.load(o.model, o.threads);
  auto tok = Tokenizer::from_gguf(model->file());
  const sampling::SamplerParams sp = o.sampling.sampler();
  sampling::validate(sp);
  if (o.n < 1) throw Error("settings: max_new (-n) must be >= 1, got " + std::to_string(o.n));
  const sampling::RepeatPenalty repeat = o.sampling.repeat();
  sampling::validate(repeat);
  size_t longest_stop = 0;
  for (const auto& st : o.stop) {
    if (st.empty()) throw Error("-r/--reverse-prompt: a stop string is empty");
    longest_stop = std::max(longest_stop, st.size());
  }
  const bool chat = !o.no_chat && tok->chat_format() != ChatFormat::None;
  const std::string raw = o.system.empty() ? o.prompt : o.system + "\n\n" + o.prompt;
  const auto prompt = tok->encode(chat ? tok->format_chat(o.prompt, o.system) : raw, true, chat);
  if (o.ctx < 0) throw Error("-c must not be negative");
  const int n_ctx = o.ctx > 0 ? o.ctx : std::min(model->config().n_ctx_train, kDefaultContext);
  if (prompt.empty()) throw Error("the prompt tokenized to nothing and the model adds no BOS; give a prompt");
  if (prompt.size() + static_cast<size_t>(o.n) > static_cast<size_t>(n_ctx))
    throw Error("prompt (" + std::to_string(prompt.size()) + " tokens) + -n " + std::to_string(o.n) +
                " exceeds the context size " + std::to_string(n_ctx) + " (set -c to enlarge it)");
  Sequence seq(model, {.n_ctx = n_ctx, .kv_type = parse_kv(o.kv), .lora = o.lora.refs(*model)});
  sampling::Rng rng(o.seed);
  Utf8Stream stream;
  std::vector<int32_t> out;
  std::string text;

  // llama.cpp's repeat penalty over the last --repeat-last-n tokens, prompt included.
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  std::vector<float> penalized;
  auto penalize = [&](std::span<const float> row) -> std::span<const float> {
    if (!repeat.active()) return row;
    penalized.assign(row.begin(), row.end());
    sampling::apply_repeat_penalty(penalized, history, repeat);
    return penalized;
  };
  // Stop strings: the text ends before the first; bytes that could begin
  // one are printed only once they cannot.
  size_t printed = 0;
  std::optional<size_t> stop_at;
  auto print_upto = [&](size_t upto) {
    if (!o.json && upto > printed) {
      std::fwrite(text.data() + printed, 1, upto - printed, stdout);
      std::fflush(stdout);
    }
    printed = std::max(printed, upto);
  };

  Stopwatch sw;
  auto logits = seq.eval(prompt, false);
  const double t_prompt = sw.seconds();
  double t_first = -1;  // since the process started (load included)
  sw.reset();
  for (int i = 0; i < o.n; ++i) {
    int32_t next = sampling::sample(penalize(logits), sp, rng);
    if (i == 0) t_first = since_start.seconds();
    if (tok->is_eog(next)) break;
    out.push_back(next);
    history.push_back(next);
    const size_t before = text.size();
    text += stream.push(tok->token_bytes(next));
    for (const auto& st : o.stop) {
      const size_t at = text.find(st, before >= st.size() ? before - st.size() + 1 : 0);
      if (at != std::string::npos && (!stop_at || at < *stop_at)) stop_at = at;
    }
    if (stop_at) break;
    size_t upto = text.size() - std::min(text.size(), longest_stop ? longest_stop - 1 : 0);
    while (upto > printed && upto < text.size() && (static_cast<uint8_t>(text[upto]) & 0xC0) == 0x80) --upto;
    print_upto(upto);
    if (i + 1 < o.n) logits = seq.eval({&next, 1}, false);
  }
  const double t_gen = sw.seconds();
  if (stop_at) text.resize(*stop_at);
  else text += stream.finish();
  print_upto(text.size());
  const uint64_t kv_used = seq.size() * seq.kv_bytes_per_position();
  const uint64_t kv_reserved = seq.capacity() * seq.kv_bytes_per_position();
  if (!o.json) {
    std::printf("\n");
    std::fprintf(stderr,
                 "memory: model %.1f MiB mapped + %.1f MiB repacked; KV cache (%s) %.1f MiB used of %.1f MiB "
                 "for %d positions; resident %.1f MiB (peak %.1f MiB). load %.2f s, first token %.2f s\n",
                 model->file_bytes() / 1048576.0, model->packed_bytes() / 1048576.0, o.kv.c_str(),
                 kv_used / 1048576.0, kv_reserved / 1048576.0, n_ctx, status_bytes("VmRSS") / 1048576.0,
                 status_bytes("VmHWM") / 1048576.0,
                 model->load_seconds(), t_first);
    return;
  }
  nlohmann::json j = {{"text", text},
                      {"tokens", out},
                      {"n_prompt", prompt.size()},
                      {"n_gen", out.size()},
                      {"prompt_tok_per_s", prompt.size() / std::max(t_prompt, 1e-9)},
                      {"gen_tok_per_s", out.empty() ? 0.0 : out.size() / std::max(t_gen, 1e-9)},
                      {"seed", o.seed},
                      {"temperature", sp.temperature},
                      {"n_ctx", n_ctx},
                      {"kv_type", o.kv},
                      {"load_s", model->load_seconds()},
                      {"time_to_first_token_s", t_first >= 0 ? nlohmann::json(t_first) : nlohmann::json(nullptr)},
                      {"memory",
                       {{"model_file_bytes", model->file_bytes()},
                        {"model_repacked_bytes", model->packed_bytes()},
                        {"kv_bytes_used", kv_used},
                        {"kv_bytes_reserved", kv_reserved},
                        {"resident_bytes", status_bytes("VmRSS")},
                        {"peak_resident_bytes", status_bytes("VmHWM")}}}};
  std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

Registrar run_cmd("run", [](CLI::App& root) {
  auto o = std::make_shared<RunOpts>();
  auto* sub = root.add_subcommand("run", "Generate a continuation of a prompt with one model");
  sub->add_option("-m,--model", o->model, "GGUF model file")->required();
  sub->add_option("-p,--prompt", o->prompt, "Prompt text (- = standard input)");
  sub->add_option("-f,--file", o->prompt_file, "File holding the prompt");
  sub->add_option("-n,--n-predict", o->n, "Tokens to generate (stops earlier at end-of-generation)")
      ->capture_default_str();
  o->sampling.add_to(sub);
  sub->add_option("-s,--seed", o->seed, "RNG seed")->capture_default_str();
  sub->add_option("--system", o->system, "System text (in the chat format's system turn)");
  sub->add_option("-r,--reverse-prompt", o->stop, "Stop string: generation ends before it (repeatable)");
  sub->add_option("-t,--threads", o->threads, "Threads (0 = physical cores)")->capture_default_str();
  sub->add_option("-c,--ctx-size", o->ctx, "Context size (0 = min(the model's, 4096)); the KV cache commits memory as it fills")
      ->capture_default_str();
  sub->add_option("--kv-type", o->kv, "KV cache type: f32 or f16")->capture_default_str();
  sub->add_flag("--no-chat", o->no_chat, "Raw prompt: do not apply the model's chat format");
  sub->add_flag("--json", o->json, "Print one JSON object instead of streaming text");
  o->lora.add_to(sub);
  sub->callback([o, sub] {
    o->prompt_given = sub->get_option("--prompt")->count() > 0;
    run(*o);
  });
});

struct LogitsOpts {
  std::string model, prompt, out, kv = "f16";
  LoraOpts lora;
  int threads = 0;
};

Registrar logits_cmd("logits", [](CLI::App& root) {
  auto o = std::make_shared<LogitsOpts>();
  auto* sub = root.add_subcommand("logits", "Write the last position's logits of a raw prompt (float32 LE)");
  sub->add_option("-m,--model", o->model, "GGUF model file")->required();
  sub->add_option("-p,--prompt", o->prompt, "Prompt text (raw, no chat format)")->required();
  sub->add_option("--out", o->out, "Output file")->required();
  sub->add_option("--kv-type", o->kv, "KV cache type: f32 or f16 (f32 to compare against reference logits)")
      ->capture_default_str();
  sub->add_option("-t,--threads", o->threads, "Threads (default: physical cores)");
  o->lora.add_to(sub);
  sub->callback([o] {
    auto model = o->lora.load(o->model, o->threads);
    auto tok = Tokenizer::from_gguf(model->file());
    const auto ids = tok->encode(o->prompt, true, false);
    if (ids.empty()) throw Error("the prompt tokenized to nothing");
    Sequence seq(model,
                 {.n_ctx = static_cast<int>(ids.size()), .kv_type = parse_kv(o->kv), .lora = o->lora.refs(*model)});
    auto logits = seq.eval(ids, false);
    std::ofstream f(o->out, std::ios::binary | std::ios::trunc);
    if (!f) throw Error(o->out + ": cannot open for writing");
    f.write(reinterpret_cast<const char*>(logits.data()), static_cast<std::streamsize>(logits.size() * sizeof(float)));
    if (!f) throw Error(o->out + ": write failed");
  });
});

struct BenchOpts {
  std::string model, kv = "f16";
  LoraOpts lora;
  int threads = 0, n_prompt = 128, n_gen = 32, reps = 3;
  bool json = false;
};

Registrar bench_cmd("bench", [](CLI::App& root) {
  auto o = std::make_shared<BenchOpts>();
  auto* sub = root.add_subcommand("bench", "Measure prompt and generation speed, verify cost and the bandwidth roofline");
  sub->add_option("-m,--model", o->model, "GGUF model file")->required();
  sub->add_option("-t,--threads", o->threads, "Threads (default: physical cores)");
  sub->add_option("-p,--n-prompt", o->n_prompt, "Prompt tokens");
  sub->add_option("-n,--n-gen", o->n_gen, "Generated tokens");
  sub->add_option("-r,--repetitions", o->reps, "Repetitions (best is reported)");
  sub->add_option("--kv-type", o->kv, "KV cache type: f32 or f16")->capture_default_str();
  sub->add_flag("--json", o->json, "Print one JSON object");
  o->lora.add_to(sub);
  sub->callback([o] {
    auto model = o->lora.load(o->model, o->threads);
    BenchOptions bo{.n_prompt = o->n_prompt,
                    .n_gen = o->n_gen,
                    .repetitions = o->reps,
                    .kv_type = parse_kv(o->kv),
                    .lora = o->lora.refs(*model)};
    BenchResult r = run_benchmark(model, bo);
    const ModelConfig& c = model->config();
    if (o->json) {
      nlohmann::json v = nlohmann::json::array();
      for (const auto& x : r.verify) v.push_back({{"k", x.k}, {"seconds", x.seconds}, {"ratio_to_decode", x.ratio_to_decode}});
      nlohmann::json j = {{"model", o->model}, {"arch", c.arch}, {"threads", model->n_threads()},
                          {"n_params", c.n_params_total()}, {"n_prompt", o->n_prompt}, {"n_gen", o->n_gen},
                          {"pp_tok_per_s", r.pp_tok_per_s}, {"tg_tok_per_s", r.tg_tok_per_s},
                          {"bandwidth_gb_per_s", r.bandwidth_gb_per_s},
                          {"read_bandwidth_gb_per_s", r.read_bandwidth_gb_per_s},
                          {"weight_bytes_per_token", r.weight_bytes_per_token},
                          {"roofline_fraction", r.roofline_fraction}, {"verify", v},
                          {"kv_type", o->kv}, {"load_s", model->load_seconds()},
                          {"model_file_bytes", model->file_bytes()}, {"model_repacked_bytes", model->packed_bytes()}};
      nlohmann::json shares = nlohmann::json::array();
      for (const auto& t : r.decode_by_type)
        shares.push_back({{"type", t.type}, {"share", t.share}, {"calls_per_token", t.calls}});
      j["decode_share_by_type"] = shares;
      j["decode_share_other"] = r.decode_other_share;
      std::cout << j.dump() << "\n";
      return;
    }
    std::printf("| model | arch | params | weights MiB | threads | test | t/s |\n");
    std::printf("| --- | --- | ---: | ---: | ---: | --- | ---: |\n");
    const double mib = r.weight_bytes_per_token / (1024.0 * 1024.0);
    for (int pass = 0; pass < 2; ++pass)
      std::printf("| %s | %s | %.2fM | %.1f | %d | %s%d | %.2f |\n", o->model.c_str(), c.arch.c_str(),
                  c.n_params_total() / 1e6, mib, model->n_threads(), pass == 0 ? "pp" : "tg",
                  pass == 0 ? o->n_prompt : o->n_gen, pass == 0 ? r.pp_tok_per_s : r.tg_tok_per_s);
    std::printf("\nmemory bandwidth: triad %.2f GB/s, streaming read %.2f GB/s; weights per token: %.1f MiB\n",
                r.bandwidth_gb_per_s, r.read_bandwidth_gb_per_s, mib);
    std::printf("decode roofline (read bandwidth / weight bytes): %.1f tok/s; achieved %.0f%%\n",
                r.read_bandwidth_gb_per_s * 1e9 / r.weight_bytes_per_token, 100.0 * r.roofline_fraction);
    std::printf("verify K / decode 1:");
    for (const auto& x : r.verify) std::printf("  K=%d %.2f", x.k, x.ratio_to_decode);
    std::printf("\ndecode time by weight type:");
    for (const auto& t : r.decode_by_type) std::printf("  %s %.0f%% (%llu products/token)", t.type.c_str(), 100 * t.share,
                                                      static_cast<unsigned long long>(t.calls));
    std::printf("  other %.0f%% (attention, norms, activations)", 100 * r.decode_other_share);
    std::printf("\nload %.2f s (%.1f MiB mapped, %.1f MiB repacked); KV cache %s\n", model->load_seconds(),
                model->file_bytes() / 1048576.0, model->packed_bytes() / 1048576.0, o->kv.c_str());
  });
});

}  // namespace
}  // namespace specsteer::cli
