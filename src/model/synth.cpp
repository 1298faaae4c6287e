#include "model/synth.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>
#include <numbers>
#include <random>

#include "common/error.h"
#include "kernels/quant.h"

namespace specsteer::model {

using gguf::TensorType;
using gguf::ValueType;

// ---------------------------------------------------------------- StreamWriter

StreamWriter::~StreamWriter() {
  if (f_) std::fclose(f_);
}

size_t StreamWriter::add_tensor(const std::string& name, TensorType type, std::vector<uint64_t> ne) {
  if (f_) throw Error("gguf writer: tensor '" + name + "' added after open()");
  tensors_.push_back(make_tensor(name, type, std::move(ne)));
  return tensors_.size() - 1;
}

uint64_t StreamWriter::tensor_bytes(size_t index) const { return tensors_.at(index).bytes; }

void StreamWriter::put(const void* p, size_t n) {
  if (n && std::fwrite(p, 1, n, f_) != n) throw Error(path_ + ": write failed: " + std::strerror(errno));
  pos_ += n;
}

void StreamWriter::pad_to_alignment() {
  static const uint8_t zeros[64] = {};
  uint64_t pad = (alignment_ - pos_ % alignment_) % alignment_;
  while (pad > 0) {
    const size_t k = static_cast<size_t>(std::min<uint64_t>(pad, sizeof(zeros)));
    put(zeros, k);
    pad -= k;
  }
}

void StreamWriter::open(const std::string& path, uint32_t alignment) {
  if (f_) throw Error("gguf writer: open() called twice");
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) throw Error("gguf writer: alignment must be a power of two");
  path_ = path;
  alignment_ = alignment;
  f_ = std::fopen(path.c_str(), "wb");
  if (!f_) throw Error(path + ": cannot open for writing: " + std::strerror(errno));
  const std::vector<uint8_t> h = encode_header(tensors_, alignment);
  put(h.data(), h.size());
  pad_to_alignment();
  cur_ = 0;
  cur_written_ = 0;
}

void StreamWriter::write_tensor_data(std::span<const uint8_t> bytes) {
  if (!f_) throw Error("gguf writer: write_tensor_data() before open()");
  if (bytes.empty()) return;
  if (cur_ >= tensors_.size()) throw Error(path_ + ": more tensor data written than declared");
  const TensorHeader& t = tensors_[cur_];
  if (bytes.size() > t.bytes - cur_written_) {
    throw Error(path_ + ": tensor '" + t.name + "' overrun: " + std::to_string(cur_written_ + bytes.size()) +
                " bytes written, " + std::to_string(t.bytes) + " declared");
  }
  put(bytes.data(), bytes.size());
  cur_written_ += bytes.size();
  if (cur_written_ == t.bytes) {
    pad_to_alignment();
    ++cur_;
    cur_written_ = 0;
  }
}

uint64_t StreamWriter::close() {
  if (!f_) throw Error("gguf writer: close() before open()");
  // Zero-byte tensors cannot exist (dimensions are >= 1), so every declared
  // tensor must have been completed.
  if (cur_ != tensors_.size()) {
    const std::string name = cur_ < tensors_.size() ? tensors_[cur_].name : "?";
    std::fclose(f_);
    f_ = nullptr;
    throw Error(path_ + ": tensor '" + name + "' was not fully written");
  }
  const bool ok = std::fflush(f_) == 0;
  const bool closed = std::fclose(f_) == 0;
  f_ = nullptr;
  if (!ok || !closed) throw Error(path_ + ": write failed: " + std::strerror(errno));
  return pos_;
}

// ---------------------------------------------------------------- presets

namespace {

SynthConfig make(std::string preset, std::string arch, uint32_t embd, uint32_t layers, uint32_t heads,
                 uint32_t heads_kv, uint32_t head_dim, uint32_t ff, uint32_t vocab, bool tied, float rope_base,
                 float eps) {
  SynthConfig c;
  c.preset = std::move(preset);
  c.arch = std::move(arch);
  c.n_embd = embd;
  c.n_layer = layers;
  c.n_head = heads;
  c.n_head_kv = heads_kv;
  c.head_dim = head_dim;
  c.n_ff = ff;
  c.n_vocab = vocab;
  c.tied = tied;
  c.rope_base = rope_base;
  c.rms_eps = eps;
  return c;
}

}  // namespace

std::vector<std::string> synth_preset_names() {
  return {"tiny-qwen3", "tiny-qwen2", "tiny-llama", "qwen3-0.6b", "qwen3-8b", "qwen3-32b", "qwen2-0.5b", "llama3-1b", "llama3-8b"};
}

SynthConfig synth_preset(std::string_view name) {
  // Shapes follow the published configs of the models the presets are named after.
  if (name == "tiny-qwen3") return make("tiny-qwen3", "qwen3", 64, 2, 4, 2, 16, 128, 512, true, 1e6f, 1e-6f);
  if (name == "tiny-qwen2") return make("tiny-qwen2", "qwen2", 64, 2, 4, 2, 16, 128, 512, true, 1e6f, 1e-6f);
  if (name == "tiny-llama") return make("tiny-llama", "llama", 64, 2, 4, 2, 16, 128, 512, true, 5e5f, 1e-5f);
  if (name == "qwen3-0.6b") return make("qwen3-0.6b", "qwen3", 1024, 28, 16, 8, 128, 3072, 151936, true, 1e6f, 1e-6f);
  if (name == "qwen3-8b") return make("qwen3-8b", "qwen3", 4096, 36, 32, 8, 128, 12288, 151936, false, 1e6f, 1e-6f);
  if (name == "qwen3-32b") return make("qwen3-32b", "qwen3", 5120, 64, 64, 8, 128, 25600, 151936, false, 1e6f, 1e-6f);
  if (name == "qwen2-0.5b") return make("qwen2-0.5b", "qwen2", 896, 24, 14, 2, 64, 4864, 151936, true, 1e6f, 1e-6f);
  if (name == "llama3-1b") {  // Llama-3.2-1B: tied, rope scaling factor 32
    SynthConfig c = make("llama3-1b", "llama", 2048, 16, 32, 8, 64, 8192, 128256, true, 5e5f, 1e-5f);
    c.llama3_rope_factor = 32;
    return c;
  }
  if (name == "llama3-8b") {  // Llama-3.1-8B: untied, rope scaling factor 8
    SynthConfig c = make("llama3-8b", "llama", 4096, 32, 32, 8, 128, 14336, 128256, false, 5e5f, 1e-5f);
    c.llama3_rope_factor = 8;
    return c;
  }
  std::string names;
  for (const auto& n : synth_preset_names()) names += (names.empty() ? "" : ", ") + n;
  throw Error("unknown synth preset '" + std::string(name) + "' (known: " + names + ")");
}

// ---------------------------------------------------------------- synthesis

namespace {

// xoshiro256** seeded through splitmix64: fast, good quality, reproducible.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto& w : s_) {
      seed += 0x9E3779B97F4A7C15ull;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      w = z ^ (z >> 31);
    }
  }
  uint64_t next() {
    const uint64_t r = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return r;
  }
  // Uniform in (0, 1].
  double uniform() { return (static_cast<double>(next() >> 11) + 1.0) * 0x1.0p-53; }
  // Box-Muller; caches the second value.
  float normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double r = std::sqrt(-2.0 * std::log(uniform()));
    const double a = 2.0 * std::numbers::pi * uniform();
    spare_ = static_cast<float>(r * std::sin(a));
    has_spare_ = true;
    return static_cast<float>(r * std::cos(a));
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
  float spare_ = 0;
  bool has_spare_ = false;
};

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
  return h;
}

enum class Init { Gaussian, Norm, Bias, RopeFreqs };

struct Spec {
  std::string name;
  std::vector<uint64_t> ne;
  TensorType type;
  Init init;
  float std = 0;
};

// GPT-2 byte-level alphabet: printable bytes map to themselves, the rest to
// U+0100 upward, so every byte is a visible one-character token.
std::vector<std::string> byte_tokens() {
  std::vector<std::string> out(256);
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const uint32_t cp = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + extra++);
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    out[b] = s;
  }
  return out;
}

struct Vocab {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<std::string> merges;
};

// Byte-level BPE vocab: 256 bytes, a handful of English merges, the arch's
// special tokens, then [PAD<id>] UNUSED filler to n_vocab.
Vocab byte_vocab(const SynthConfig& c, uint32_t* bos, uint32_t* eos, uint32_t* eot) {
  Vocab v;
  const auto bytes = byte_tokens();
  for (const auto& t : bytes) {
    v.tokens.push_back(t);
    v.types.push_back(1);  // NORMAL
  }
  const std::string sp = bytes[' '];
  const std::pair<std::string, std::string> pairs[] = {
      {sp, "t"}, {"h", "e"}, {"i", "n"}, {"r", "e"}, {"o", "n"}, {sp + "t", "he"}, {"e", "r"}, {sp, "a"},
      {"a", "n"}, {sp, "s"}, {"o", "r"}, {"e", "n"}, {sp, "w"}, {"a", "t"}, {sp, "o"}, {"i", "s"},
      {"in", "g"}, {sp, "c"}, {"e", "s"}, {"l", "l"}, {sp, "b"}, {"o", "u"}, {sp, "m"}, {"e", "d"},
  };
  for (const auto& [a, b] : pairs) {
    v.merges.push_back(a + " " + b);
    v.tokens.push_back(a + b);
    v.types.push_back(1);
  }
  std::vector<std::string> specials;
  if (c.arch == "llama") {
    specials = {"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"};
  } else {
    specials = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  }
  const uint32_t first_special = static_cast<uint32_t>(v.tokens.size());
  for (const auto& s : specials) {
    v.tokens.push_back(s);
    v.types.push_back(3);  // CONTROL
  }
  if (c.n_vocab < v.tokens.size()) {
    throw Error("synth: n_vocab " + std::to_string(c.n_vocab) + " is smaller than the built-in byte-level vocab (" +
                std::to_string(v.tokens.size()) + " tokens); raise --vocab or use --vocab-from");
  }
  for (uint32_t id = static_cast<uint32_t>(v.tokens.size()); id < c.n_vocab; ++id) {
    v.tokens.push_back("[PAD" + std::to_string(id) + "]");
    v.types.push_back(5);  // UNUSED
  }
  if (c.arch == "llama") {
    *bos = first_special;
    *eos = first_special + 1;
    *eot = first_special + 4;
  } else {
    *bos = first_special;      // <|endoftext|>
    *eos = first_special + 2;  // <|im_end|>
    *eot = first_special + 2;
  }
  return v;
}

constexpr const char* kChatMLTemplate =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
    "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
constexpr const char* kLlama3Template =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 "
    "%}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

uint32_t file_type_id(TensorType t) {
  switch (t) {
    case TensorType::F32: return 0;
    case TensorType::F16: return 1;
    case TensorType::Q4_0: return 2;
    case TensorType::Q8_0: return 7;
    case TensorType::Q4_K: return 14;  // MOSTLY_Q4_K_S
    case TensorType::Q5_K: return 16;  // MOSTLY_Q5_K_S
    case TensorType::Q6_K: return 18;
    case TensorType::BF16: return 32;
    default: return 0;
  }
}

// Llama-3.1 rope scaling factors per frequency pair (what the converter
// stores in rope_freqs.weight): 1 for short wavelengths, `factor` for long
// ones, smooth in between. Original context 8192, low/high freq factors 1/4.
std::vector<float> llama3_rope_freqs(const SynthConfig& c) {
  const double low_ff = 1.0, high_ff = 4.0, old_ctx = 8192.0;
  const double low_wl = old_ctx / low_ff, high_wl = old_ctx / high_ff;
  std::vector<float> out;
  for (uint32_t i = 0; i < c.head_dim; i += 2) {
    const double freq = 1.0 / std::pow(static_cast<double>(c.rope_base), static_cast<double>(i) / c.head_dim);
    const double wl = 2.0 * std::numbers::pi / freq;
    double f;
    if (wl < high_wl) {
      f = 1.0;
    } else if (wl > low_wl) {
      f = c.llama3_rope_factor;
    } else {
      const double smooth = (old_ctx / wl - low_ff) / (high_ff - low_ff);
      f = 1.0 / ((1.0 - smooth) / c.llama3_rope_factor + smooth);
    }
    out.push_back(static_cast<float>(f));
  }
  return out;
}

void check_config(const SynthConfig& c) {
  if (c.arch != "llama" && c.arch != "qwen2" && c.arch != "qwen3")
    throw Error("synth: unknown architecture '" + c.arch + "' (expected llama, qwen2 or qwen3)");
  auto positive = [](const char* what, uint32_t v) {
    if (v == 0) throw Error(std::string("synth: ") + what + " must be positive");
  };
  positive("n_embd", c.n_embd);
  positive("n_layer", c.n_layer);
  positive("n_head", c.n_head);
  positive("n_head_kv", c.n_head_kv);
  positive("head_dim", c.head_dim);
  positive("n_ff", c.n_ff);
  positive("n_ctx", c.n_ctx);
  if (c.n_head % c.n_head_kv != 0)
    throw Error("synth: n_head " + std::to_string(c.n_head) + " is not a multiple of n_head_kv " +
                std::to_string(c.n_head_kv));
  if (c.head_dim % 2 != 0) throw Error("synth: head_dim must be even (rope rotates pairs)");
  for (TensorType t : {c.type, c.embd_type, c.output_type}) {
    if (!kernels::quant_supported(t))
      throw Error("synth: tensor type " + std::string(gguf::type_name(t)) + " cannot be quantized");
  }
}

}  // namespace

SynthStats synthesize(const SynthConfig& cfg, const std::string& path) {
  SynthConfig c = cfg;
  check_config(c);

  StreamWriter w;
  const std::string& a = c.arch;
  auto key = [&](const char* k) { return a + "." + k; };

  // Tokenizer first (it fixes n_vocab when copied from another file).
  std::unique_ptr<gguf::File> vocab_src;
  std::vector<std::pair<std::string, const gguf::Value*>> tok_kv;
  Vocab vocab;
  uint32_t bos = 0, eos = 0, eot = 0;
  if (!c.vocab_from.empty()) {
    vocab_src = gguf::File::open(c.vocab_from);
    const gguf::Value* toks = vocab_src->find("tokenizer.ggml.tokens");
    if (!toks) throw Error(c.vocab_from + ": no tokenizer.ggml.tokens to copy the vocabulary from");
    c.n_vocab = static_cast<uint32_t>(toks->as_strings("tokenizer.ggml.tokens").size());
    for (const auto& kv : vocab_src->metadata())
      if (kv.key.rfind("tokenizer.", 0) == 0) tok_kv.emplace_back(kv.key, &kv.value);
  } else {
    vocab = byte_vocab(c, &bos, &eos, &eot);
  }
  if (c.n_vocab == 0) throw Error("synth: n_vocab must be positive");

  const std::string name = !c.name.empty() ? c.name : "synth-" + (c.preset.empty() ? c.arch : c.preset);
  w.add_string("general.architecture", a);
  w.add_string("general.name", name);
  w.add_u32(key("context_length"), c.n_ctx);
  w.add_u32(key("embedding_length"), c.n_embd);
  w.add_u32(key("block_count"), c.n_layer);
  w.add_u32(key("feed_forward_length"), c.n_ff);
  w.add_u32(key("attention.head_count"), c.n_head);
  w.add_u32(key("attention.head_count_kv"), c.n_head_kv);
  w.add_u32(key("attention.key_length"), c.head_dim);
  w.add_u32(key("attention.value_length"), c.head_dim);
  w.add_u32(key("rope.dimension_count"), c.head_dim);
  w.add_f32(key("rope.freq_base"), c.rope_base);
  w.add_f32(key("attention.layer_norm_rms_epsilon"), c.rms_eps);
  w.add_u32(key("vocab_size"), c.n_vocab);
  w.add_u32("general.file_type", file_type_id(c.type));
  w.add_u32("general.quantization_version", 2);
  const float embd_std = c.embd_std > 0 ? c.embd_std : 1.0f / std::sqrt(static_cast<float>(c.n_embd));
  w.add_u64("specsteer.synth.seed", c.seed);
  w.add_f32("specsteer.synth.embd_std", embd_std);
  if (vocab_src) {
    for (const auto& [k, v] : tok_kv) w.add_value(k, *v);
  } else {
    w.add_string("tokenizer.ggml.model", "gpt2");
    w.add_string("tokenizer.ggml.pre", a == "llama" ? "llama-bpe" : "qwen2");
    w.add_strings("tokenizer.ggml.tokens", vocab.tokens);
    w.add_array("tokenizer.ggml.token_type", ValueType::I32, vocab.types.data(), vocab.types.size());
    w.add_strings("tokenizer.ggml.merges", vocab.merges);
    w.add_u32("tokenizer.ggml.bos_token_id", bos);
    w.add_u32("tokenizer.ggml.eos_token_id", eos);
    if (a == "llama") {
      w.add_u32("tokenizer.ggml.eot_token_id", eot);
      w.add_bool("tokenizer.ggml.add_bos_token", true);
      w.add_string("tokenizer.chat_template", kLlama3Template);
    } else {
      w.add_u32("tokenizer.ggml.padding_token_id", bos);
      w.add_bool("tokenizer.ggml.add_bos_token", false);
      w.add_string("tokenizer.chat_template", kChatMLTemplate);
    }
  }
  vocab = Vocab{};  // free the strings before the big part

  // Tensor list, in the order llama.cpp's converter writes them.
  const uint64_t E = c.n_embd, F = c.n_ff, Q = uint64_t{c.n_head} * c.head_dim, KV = uint64_t{c.n_head_kv} * c.head_dim;
  std::vector<Spec> specs;
  auto lin = [&](std::string n, uint64_t in, uint64_t out, TensorType t) {
    specs.push_back({std::move(n), {in, out}, t, Init::Gaussian, 1.0f / std::sqrt(static_cast<float>(in))});
  };
  const auto more_bits = [&](uint32_t i) {
    const uint32_t n = c.n_layer;
    return c.k_m_mix && (i < n / 8 || i >= 7 * n / 8 || (i >= n / 8 && (i - n / 8) % 3 == 2));
  };
  auto norm = [&](std::string n, uint64_t len) { specs.push_back({std::move(n), {len}, TensorType::F32, Init::Norm}); };
  specs.push_back({"token_embd.weight", {E, c.n_vocab}, c.embd_type, Init::Gaussian, embd_std});
  if (c.llama3_rope_factor > 0) specs.push_back({"rope_freqs.weight", {c.head_dim / 2}, TensorType::F32, Init::RopeFreqs});
  for (uint32_t l = 0; l < c.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    norm(p + "attn_norm.weight", E);
    const TensorType mixed = more_bits(l) ? TensorType::Q6_K : c.type;
    lin(p + "attn_q.weight", E, Q, c.type);
    lin(p + "attn_k.weight", E, KV, c.type);
    lin(p + "attn_v.weight", E, KV, mixed);
    if (a == "qwen2") {
      specs.push_back({p + "attn_q.bias", {Q}, TensorType::F32, Init::Bias});
      specs.push_back({p + "attn_k.bias", {KV}, TensorType::F32, Init::Bias});
      specs.push_back({p + "attn_v.bias", {KV}, TensorType::F32, Init::Bias});
    }
    if (a == "qwen3") {
      norm(p + "attn_q_norm.weight", c.head_dim);
      norm(p + "attn_k_norm.weight", c.head_dim);
    }
    lin(p + "attn_output.weight", Q, E, c.type);
    norm(p + "ffn_norm.weight", E);
    lin(p + "ffn_gate.weight", E, F, c.type);
    lin(p + "ffn_up.weight", E, F, c.type);
    lin(p + "ffn_down.weight", F, E, mixed);
  }
  norm("output_norm.weight", E);
  if (!c.tied) specs.push_back({"output.weight", {E, c.n_vocab}, c.output_type, Init::Gaussian, embd_std});

  SynthStats stats;
  for (const auto& s : specs) {
    w.add_tensor(s.name, s.type, s.ne);
    uint64_t n = 1;
    for (uint64_t d : s.ne) n *= d;
    stats.n_params += n;
  }
  stats.n_tensors = specs.size();

  w.open(path);
  std::vector<float> buf;
  std::vector<uint8_t> out;
  const std::vector<float> rope_freqs = c.llama3_rope_factor > 0 ? llama3_rope_freqs(c) : std::vector<float>{};
  for (const auto& s : specs) {
    Rng rng(c.seed * 0x9E3779B97F4A7C15ull ^ fnv1a(s.name));
    const uint64_t row = s.ne[0];
    const uint64_t rows = s.ne.size() > 1 ? s.ne[1] : 1;
    // About 1M floats per chunk: bounded memory, few write calls.
    const uint64_t chunk_rows = std::max<uint64_t>(1, (uint64_t{1} << 20) / row);
    for (uint64_t r0 = 0; r0 < rows; r0 += chunk_rows) {
      const uint64_t nr = std::min(chunk_rows, rows - r0);
      const size_t n = static_cast<size_t>(nr * row);
      buf.resize(n);
      switch (s.init) {
        case Init::Gaussian:
          for (auto& x : buf) x = s.std * rng.normal();
          break;
        case Init::Norm:
          for (auto& x : buf) x = 1.0f + 0.1f * rng.normal();
          break;
        case Init::Bias:
          for (auto& x : buf) x = 0.1f * rng.normal();
          break;
        case Init::RopeFreqs: std::copy(rope_freqs.begin(), rope_freqs.end(), buf.begin()); break;
      }
      out.resize(n / kernels::block_elems(s.type) * kernels::block_bytes(s.type));
      kernels::quantize_row(s.type, buf.data(), out.data(), n);
      w.write_tensor_data(out);
    }
  }
  stats.file_bytes = w.close();
  return stats;
}

size_t synthesize_lora(const std::string& base_path, const SynthLora& o, const std::string& out_path) {
  if (o.rank < 1) throw Error("synth-lora: --rank must be >= 1");
  if (!(o.alpha >= 0) || !std::isfinite(o.alpha)) throw Error("synth-lora: --alpha must be finite and >= 0");
  if (o.type != "f32" && o.type != "f16") throw Error("synth-lora: --type must be f32 or f16, not '" + o.type + "'");
  static const std::vector<std::string> kKnown = {"attn_q",   "attn_k", "attn_v", "attn_output",
                                                  "ffn_gate", "ffn_up", "ffn_down"};
  for (const auto& t : o.targets)
    if (std::find(kKnown.begin(), kKnown.end(), t) == kKnown.end())
      throw Error("synth-lora: unknown target '" + t + "' (attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up, ffn_down)");
  auto base = gguf::File::open(base_path);
  const auto arch = base->get_string("general.architecture");
  if (!arch) throw Error(base_path + ": no general.architecture");
  gguf::Writer w;
  w.add_string("general.architecture", *arch);
  w.add_string("general.type", "adapter");
  w.add_string("general.name", "synth-lora-r" + std::to_string(o.rank));
  w.add_string("adapter.type", "lora");
  w.add_f32("adapter.lora.alpha", o.alpha);
  std::mt19937_64 rng(o.seed);
  std::normal_distribution<float> normal(0.0f, o.std);
  const bool f16 = o.type == "f16";
  auto tensor = [&](const std::string& name, uint64_t ne0, uint64_t ne1) {
    std::vector<uint8_t> bytes(ne0 * ne1 * (f16 ? 2 : 4));
    for (uint64_t i = 0; i < ne0 * ne1; ++i) {
      const float v = normal(rng);
      if (f16) {
        const uint16_t h = kernels::fp32_to_fp16(v);
        std::memcpy(&bytes[i * 2], &h, 2);
      } else {
        std::memcpy(&bytes[i * 4], &v, 4);
      }
    }
    w.add_tensor(name, f16 ? gguf::TensorType::F16 : gguf::TensorType::F32, {ne0, ne1}, std::move(bytes));
  };
  size_t n = 0;
  for (uint64_t il = 0;; ++il) {
    bool any = false;
    for (const auto& t : o.targets) {
      const std::string name = "blk." + std::to_string(il) + "." + t + ".weight";
      const gguf::TensorInfo* info = base->find_tensor(name);
      if (!info) continue;
      any = true;
      const uint64_t r = static_cast<uint64_t>(o.rank);
      tensor(name + ".lora_a", info->ne[0], r);  // A: [n_in, r]
      tensor(name + ".lora_b", r, info->ne[1]);  // B: [r, n_out]
      ++n;
    }
    if (!any) break;
  }
  if (n == 0) throw Error(base_path + ": none of the targets is a tensor of this model");
  w.write(out_path);
  return n;
}

}  // namespace specsteer::model
