#pragma once
// Random-weight GGUF models of real shapes (benchmarks, tests, fuzz seeds),
// and a GGUF v3 writer that streams tensor data to disk so multi-GB models
// never sit in memory.
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"

namespace specsteer::model {

// Writes GGUF v3: collect metadata and tensor infos, then open() writes the
// header and write_tensor() streams each tensor's bytes in declaration order.
class StreamWriter : public gguf::MetadataBuilder {
 public:
  StreamWriter() = default;
  ~StreamWriter();
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;

  // `ne` in ggml order (ne[0] = row length). Returns the tensor's index.
  size_t add_tensor(const std::string& name, gguf::TensorType type, std::vector<uint64_t> ne);
  uint64_t tensor_bytes(size_t index) const;

  // Writes the header and tensor infos. Throws Error on I/O failure.
  void open(const std::string& path, uint32_t alignment = 32);
  // Appends bytes of the current tensor; a tensor may be written in pieces,
  // tensors strictly in order. Overrunning a tensor's size throws.
  void write_tensor_data(std::span<const uint8_t> bytes);
  // Checks every tensor was written completely, flushes; returns file size.
  uint64_t close();

 private:
  void pad_to_alignment();
  void put(const void* p, size_t n);

  std::vector<TensorHeader> tensors_;
  std::string path_;
  std::FILE* f_ = nullptr;
  uint32_t alignment_ = 32;
  uint64_t pos_ = 0;
  size_t cur_ = 0;           // tensor being written
  uint64_t cur_written_ = 0;  // bytes of it written so far
};

struct SynthConfig {
  std::string preset;         // informational (general.name default)
  std::string arch = "qwen3";  // llama | qwen2 | qwen3
  std::string name;            // general.name; empty = "synth-<preset>"
  uint32_t n_embd = 64;
  uint32_t n_layer = 2;
  uint32_t n_head = 4;
  uint32_t n_head_kv = 2;
  uint32_t head_dim = 16;
  uint32_t n_ff = 128;
  uint32_t n_vocab = 512;  // ignored with vocab_from (taken from that file)
  uint32_t n_ctx = 4096;
  bool tied = true;          // no output.weight; logits use token_embd
  float rope_base = 1e6f;
  float rms_eps = 1e-6f;
  float llama3_rope_factor = 0;  // > 0: write rope_freqs.weight (Llama-3.1/3.2 scaling)
  gguf::TensorType type = gguf::TensorType::Q8_0;         // 2-D weights
  gguf::TensorType embd_type = gguf::TensorType::Q8_0;    // token_embd.weight
  gguf::TensorType output_type = gguf::TensorType::Q8_0;  // output.weight (untied)
  // llama-quantize's Q4_K_M / Q5_K_M rule: attn_v and ffn_down of layer i
  // are Q6_K when i < n/8, i >= 7n/8 or (i - n/8) % 3 == 2 (the rest `type`).
  bool k_m_mix = false;
  uint64_t seed = 1;
  float embd_std = 0;      // 0 = 1/sqrt(n_embd)
  std::string vocab_from;  // copy tokenizer.* metadata from this GGUF
};

// Presets: tiny-qwen3, tiny-qwen2, tiny-llama, qwen3-0.6b, qwen3-8b,
// qwen2-0.5b, llama3-1b, llama3-8b. Throws Error for an unknown name.
SynthConfig synth_preset(std::string_view name);
std::vector<std::string> synth_preset_names();

struct SynthStats {
  uint64_t file_bytes = 0;
  uint64_t n_params = 0;
  size_t n_tensors = 0;
};

// Writes a random-weight model. Weights (seeded per tensor from cfg.seed and
// the tensor name, so independent of order):
//   token_embd, output ~ N(0, embd_std^2), default 1/sqrt(n_embd): tied
//     logits of unit-RMS hidden states then have unit variance
//   linear weights ~ N(0, 1/fan_in) (activations keep their scale)
//   norm weights ~ 1 + 0.1 N(0,1); qwen2 q/k/v biases ~ 0.1 N(0,1)
// Tokenizer: byte-level gpt2 BPE (256 byte tokens, a few merges, the arch's
// special tokens, [PAD] filler up to n_vocab), or a copy from vocab_from.
// Memory stays O(one chunk of rows) whatever the model size.
SynthStats synthesize(const SynthConfig& cfg, const std::string& path);

// A random LoRA adapter (llama.cpp's GGUF adapter format) for the model in
// `base_path`: rank r, alpha, the named per-layer targets (attn_q, attn_k,
// attn_v, attn_output, ffn_gate, ffn_up, ffn_down), A and B ~ N(0, std^2) in
// f32 or f16. For benchmarks and tests of the LoRA path at real shapes.
struct SynthLora {
  int rank = 16;
  float alpha = 32;
  std::vector<std::string> targets = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
  std::string type = "f32";
  float std = 0.02f;
  uint64_t seed = 1;
};
// Returns the number of adapted weights; throws Error for an unknown target or type.
size_t synthesize_lora(const std::string& base_path, const SynthLora& opts, const std::string& out_path);

}  // namespace specsteer::model
