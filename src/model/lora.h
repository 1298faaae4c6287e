#pragma once
// LoRA adapters in llama.cpp's GGUF adapter format (general.type = adapter,
// adapter.type = lora, adapter.lora.alpha, tensors <base>.lora_a/.lora_b):
// y = W x + s_eff * B (A x), s_eff = scale * alpha / r (scale when alpha is 0),
// r = lora_b's ne[0] per weight. An adapter is private to the Sequences that
// name it (SequenceOptions::lora): the Model's weights stay the base, so the
// same Model can serve a personalized edge and the context-free SLM- at once.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kernels/matmul.h"

namespace specsteer::gguf {
class File;
}

namespace specsteer {

class Model;

class LoraAdapter {
 public:
  // Loads and checks an adapter against `base` (architecture, every target a
  // matrix of the base with matching shapes, pairs complete, types f32/f16/
  // bf16/q8_0). Throws Error naming the file and the tensor or key.
  static std::shared_ptr<const LoraAdapter> load(const std::string& path, const Model& base);
  ~LoraAdapter();

  struct Pair {
    kernels::Matrix a;  // [r][n_in]: the input down to r values
    kernels::Matrix b;  // [n_out][r]
    int rank = 0;
  };
  // The pair adapting the base matrix `w` (a matrix of the base model), or nullptr.
  const Pair* find(const kernels::Matrix* w) const;
  // s_eff for a user scale (llama.cpp: scale * alpha / r, or scale when alpha is 0).
  float effective_scale(const Pair& p, float scale) const;
  float alpha() const { return alpha_; }
  size_t n_pairs() const { return pairs_.size(); }
  const std::string& path() const { return path_; }
  const Model* base() const { return base_; }

 private:
  LoraAdapter() = default;
  std::unique_ptr<gguf::File> file_;
  std::string path_;
  const Model* base_ = nullptr;
  float alpha_ = 0;
  std::vector<std::pair<const kernels::Matrix*, Pair>> pairs_;
};

// One adapter and its user scale, as `--lora FILE[:SCALE]` gives them.
struct LoraRef {
  std::shared_ptr<const LoraAdapter> adapter;
  float scale = 1.0f;
};

// Splits "FILE[:SCALE]" (the last ':' followed by a number); throws Error on a
// bad scale or an empty file name.
std::pair<std::string, float> parse_lora_arg(const std::string& arg);
// Loads every `--lora FILE[:SCALE]` argument against `base`.
std::vector<LoraRef> load_lora_args(const std::vector<std::string>& args, const Model& base);

}  // namespace specsteer
