// `specsteer gguf info FILE`: metadata and tensor table of a GGUF file.
// `specsteer gguf synth ...`: write a random-weight model of a real shape.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/command.h"
#include "common/error.h"
#include "common/timer.h"
#include "gguf/gguf.h"
#include "model/synth.h"

namespace specsteer::cli {
namespace {

std::string escape(std::string_view s, size_t max_len) {
  std::string out = "\"";
  size_t n = 0;
  for (unsigned char ch : s) {
    if (n++ >= max_len) {
      out += "...";
      break;
    }
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += static_cast<char>(ch);
    } else if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\t') {
      out += "\\t";
    } else if (ch < 0x20 || ch == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", ch);
      out += buf;
    } else {
      out += static_cast<char>(ch);
    }
  }
  out += "\"";
  if (s.size() > max_len) out += " (" + std::to_string(s.size()) + " bytes)";
  return out;
}

std::string scalar_text(const gguf::Value& v) {
  using gguf::ValueType;
  switch (v.type) {
    case ValueType::U8: case ValueType::U16: case ValueType::U32: case ValueType::U64: return std::to_string(v.u);
    case ValueType::I8: case ValueType::I16: case ValueType::I32: case ValueType::I64: return std::to_string(v.i);
    case ValueType::F32: case ValueType::F64: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.9g", v.f);
      return buf;
    }
    case ValueType::BOOL: return v.u ? "true" : "false";
    default: return "?";
  }
}

std::string value_text(std::string_view key, const gguf::Value& v, bool all) {
  using gguf::ValueType;
  const size_t max_str = all ? SIZE_MAX : 60;
  if (v.type == ValueType::STRING) return escape(v.s, max_str);
  if (v.type != ValueType::ARRAY) return scalar_text(v);
  const uint64_t shown = all ? v.count : std::min<uint64_t>(v.count, 6);
  std::string out = "[";
  if (v.elem_type == ValueType::STRING) {
    for (uint64_t i = 0; i < shown; ++i) out += (i ? ", " : "") + escape(v.strings[i], all ? SIZE_MAX : 24);
  } else if (v.is_integer()) {
    const auto ints = v.as_i64s(key);
    for (uint64_t i = 0; i < shown; ++i) out += (i ? ", " : "") + std::to_string(ints[i]);
  } else {
    const auto vals = v.as_f32s(key);  // f32, f64 (display precision) or bool
    for (uint64_t i = 0; i < shown; ++i) {
      char buf[64];
      if (v.elem_type == ValueType::BOOL) {
        std::snprintf(buf, sizeof buf, "%s", vals[i] != 0 ? "true" : "false");
      } else {
        std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(vals[i]));
      }
      out += (i ? ", " : "") + std::string(buf);
    }
  }
  if (shown < v.count) out += ", ... " + std::to_string(v.count - shown) + " more";
  return out + "]";
}

std::string type_text(const gguf::Value& v) {
  if (v.type == gguf::ValueType::ARRAY)
    return std::string(gguf::value_type_name(v.elem_type)) + "[" + std::to_string(v.count) + "]";
  return std::string(gguf::value_type_name(v.type));
}

void info(const std::string& path, bool all) {
  auto f = gguf::File::open(path);
  std::printf("%s: GGUF v%u, %llu bytes, alignment %llu\n", path.c_str(), f->version(),
              static_cast<unsigned long long>(f->size()), static_cast<unsigned long long>(f->alignment()));
  std::printf("metadata (%zu keys):\n", f->metadata().size());
  for (const auto& kv : f->metadata()) {
    std::printf("  %-44s %-14s %s\n", kv.key.c_str(), type_text(kv.value).c_str(),
                value_text(kv.key, kv.value, all).c_str());
  }
  uint64_t total = 0, elems = 0;
  std::printf("tensors (%zu):\n", f->tensors().size());
  std::printf("  %-36s %-6s %-22s %14s %14s\n", "name", "type", "shape", "offset", "bytes");
  for (const auto& t : f->tensors()) {
    std::printf("  %-36s %-6s %-22s %14llu %14llu\n", t.name.c_str(), std::string(gguf::type_name(t.type)).c_str(),
                t.shape_string().c_str(), static_cast<unsigned long long>(t.offset),
                static_cast<unsigned long long>(t.n_bytes));
    total += t.n_bytes;
    elems += t.n_elements;
  }
  std::printf("total: %llu elements, %llu tensor bytes\n", static_cast<unsigned long long>(elems),
              static_cast<unsigned long long>(total));
}

struct SynthOpts {
  std::string preset = "tiny-qwen3", out, type = "q8_0", embd_type, output_type, arch, name, vocab_from;
  int layers = -1, embd = -1, ff = -1, heads = -1, heads_kv = -1, head_dim = -1, vocab = -1, ctx = -1;
  double rope_base = -1, eps = -1, embd_std = 0, rope_factor = -1;
  uint64_t seed = 1;
  bool tied = false, untied = false;
};

void synth(const SynthOpts& o) {
  model::SynthConfig c = model::synth_preset(o.preset);
  // q4_k_m / q5_k_m: llama-quantize's mixes (model::SynthConfig::k_m_mix).
  const bool mix = o.type == "q4_k_m" || o.type == "q5_k_m";
  c.type = gguf::parse_type_name(mix ? o.type.substr(0, 4) : o.type);
  c.k_m_mix = mix;
  const gguf::TensorType head = mix ? gguf::TensorType::Q6_K : c.type;
  c.embd_type = o.embd_type.empty() ? head : gguf::parse_type_name(o.embd_type);
  c.output_type = o.output_type.empty() ? head : gguf::parse_type_name(o.output_type);
  if (!o.arch.empty()) c.arch = o.arch;
  if (!o.name.empty()) c.name = o.name;
  auto set = [](uint32_t& dst, int v, const char* flag) {
    if (v == -1) return;
    if (v <= 0) throw Error(std::string(flag) + " must be positive");
    dst = static_cast<uint32_t>(v);
  };
  set(c.n_layer, o.layers, "--layers");
  set(c.n_embd, o.embd, "--embd");
  set(c.n_ff, o.ff, "--ff");
  set(c.n_head, o.heads, "--heads");
  set(c.n_head_kv, o.heads_kv, "--heads-kv");
  set(c.head_dim, o.head_dim, "--head-dim");
  set(c.n_vocab, o.vocab, "--vocab");
  set(c.n_ctx, o.ctx, "--ctx");
  if (o.rope_base > 0) c.rope_base = static_cast<float>(o.rope_base);
  if (o.eps > 0) c.rms_eps = static_cast<float>(o.eps);
  if (o.rope_factor >= 0) c.llama3_rope_factor = static_cast<float>(o.rope_factor);
  if (o.tied && o.untied) throw Error("--tied and --untied are exclusive");
  if (o.tied) c.tied = true;
  if (o.untied) c.tied = false;
  c.embd_std = static_cast<float>(o.embd_std);
  c.seed = o.seed;
  c.vocab_from = o.vocab_from;
  if (!c.vocab_from.empty() && o.vocab != -1) throw Error("--vocab and --vocab-from are exclusive");

  Stopwatch sw;
  const model::SynthStats s = model::synthesize(c, o.out);
  std::printf("wrote %s: %s %s, %zu tensors, %llu parameters, %llu bytes in %.1f s\n", o.out.c_str(),
              c.arch.c_str(), std::string(gguf::type_name(c.type)).c_str(), s.n_tensors,
              static_cast<unsigned long long>(s.n_params), static_cast<unsigned long long>(s.file_bytes),
              sw.seconds());
}

Registrar reg("gguf", [](CLI::App& root) {
  auto* g = root.add_subcommand("gguf", "Inspect or synthesize GGUF files");
  g->require_subcommand(1);

  auto info_path = std::make_shared<std::string>();
  auto info_all = std::make_shared<bool>(false);
  auto* i = g->add_subcommand("info", "Print a GGUF file's metadata (arrays abbreviated) and tensor table");
  i->add_option("file", *info_path, "GGUF file")->required();
  i->add_flag("--all", *info_all, "Print arrays and strings in full");
  i->callback([=] { info(*info_path, *info_all); });

  auto o = std::make_shared<SynthOpts>();
  std::string presets;
  for (const auto& n : model::synth_preset_names()) presets += (presets.empty() ? "" : ", ") + n;
  auto* s = g->add_subcommand("synth", "Write a random-weight model of a real architecture and shape");
  s->add_option("-o,--out", o->out, "Output GGUF path")->required();
  s->add_option("--preset", o->preset, "Shape preset: " + presets)->capture_default_str();
  s->add_option("--type", o->type, "Type of the 2-D weights: f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k, or the mixes q4_k_m, q5_k_m "
                  "(llama-quantize's: Q6_K embedding/output and attn_v/ffn_down of some layers)")
      ->capture_default_str();
  s->add_option("--embd-type", o->embd_type, "Type of token_embd.weight (default: --type)");
  s->add_option("--output-type", o->output_type, "Type of output.weight when untied (default: --type)");
  s->add_option("--seed", o->seed, "Random seed")->capture_default_str();
  s->add_option("--arch", o->arch, "Override the architecture: llama, qwen2, qwen3");
  s->add_option("--name", o->name, "general.name");
  s->add_option("--layers", o->layers, "Number of blocks");
  s->add_option("--embd", o->embd, "Embedding width");
  s->add_option("--ff", o->ff, "Feed-forward width");
  s->add_option("--heads", o->heads, "Attention heads");
  s->add_option("--heads-kv", o->heads_kv, "Key/value heads");
  s->add_option("--head-dim", o->head_dim, "Width of one head");
  s->add_option("--vocab", o->vocab, "Vocabulary size (byte-level vocab padded with [PAD] tokens)");
  s->add_option("--ctx", o->ctx, "Training context length written to the metadata");
  s->add_option("--rope-base", o->rope_base, "Rope frequency base");
  s->add_option("--eps", o->eps, "RMSNorm epsilon");
  s->add_option("--rope-factor", o->rope_factor, "Llama-3.1 rope scaling factor (writes rope_freqs.weight; 0 = none)");
  s->add_option("--embd-std", o->embd_std, "Std of token_embd/output (default 1/sqrt(n_embd))");
  s->add_option("--vocab-from", o->vocab_from, "Copy the tokenizer metadata from this GGUF");
  s->add_flag("--tied", o->tied, "No output.weight (logits from token_embd)");
  s->add_flag("--untied", o->untied, "Write a separate output.weight");
  s->callback([o] { synth(*o); });

  auto lo = std::make_shared<model::SynthLora>();
  auto lpaths = std::make_shared<std::pair<std::string, std::string>>();
  auto* l = g->add_subcommand("synth-lora", "Write a random LoRA adapter (llama.cpp GGUF format) for a model file");
  l->add_option("-m,--model", lpaths->first, "Base model GGUF")->required();
  l->add_option("-o,--out", lpaths->second, "Output adapter GGUF path")->required();
  l->add_option("--rank", lo->rank, "LoRA rank r")->capture_default_str();
  l->add_option("--alpha", lo->alpha, "adapter.lora.alpha")->capture_default_str();
  l->add_option("--targets", lo->targets, "Adapted weights, comma-separated")->delimiter(',')->capture_default_str();
  l->add_option("--type", lo->type, "Tensor type: f32 or f16")->capture_default_str();
  l->add_option("--std", lo->std, "Standard deviation of A and B")->capture_default_str();
  l->add_option("--seed", lo->seed, "Random seed")->capture_default_str();
  l->callback([lo, lpaths] {
    const size_t n = model::synthesize_lora(lpaths->first, *lo, lpaths->second);
    std::printf("wrote %s: LoRA rank %d over %zu weights of %s\n", lpaths->second.c_str(), lo->rank, n,
                lpaths->first.c_str());
  });
});

}  // namespace
}  // namespace specsteer::cli
