#pragma once
// Internal: the weights of a loaded model as kernel views. Only model/*.cpp
// includes this.
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "kernels/matmul.h"
#include "kernels/thread_pool.h"
#include "model/model.h"

namespace specsteer {

struct LayerWeights {
  const float* attn_norm = nullptr;
  const float* ffn_norm = nullptr;
  kernels::Matrix wq, wk, wv, wo, gate, up, down;
  const float* bq = nullptr;  // qwen2 biases
  const float* bk = nullptr;
  const float* bv = nullptr;
  const float* q_norm = nullptr;  // qwen3 per-head norms [head_dim]
  const float* k_norm = nullptr;
};

// Activations of one forward pass, grown to the largest batch seen. One per
// model: forward passes on a model are serialized (pool_mu) anyway, so
// sessions do not each carry a copy.
struct ForwardScratch {
  std::vector<float> x, xn, q, k, v, att, gate, up, head;
  std::vector<float> rope_cs;  // [row][rope_dim/2][cos, sin]
  std::vector<float> scores;   // attention scores, [pool thread][longest n_ctx in the batch]
  std::vector<float> lora_mid, lora_out;  // LoRA A x and B (A x) of one item's rows
  // Per batch row: its token, the Sequence it extends and its position there.
  std::vector<int32_t> ids;
  std::vector<Sequence*> row_seq;
  std::vector<int> row_pos;
};

struct Model::Impl {
  std::unique_ptr<gguf::File> file;
  ModelConfig cfg;
  kernels::Matrix token_embd;
  kernels::Matrix output;  // == token_embd when tied
  const float* output_norm = nullptr;
  std::vector<LayerWeights> layers;
  // GGUF name -> the layer matrix loaded from it (LoRA adapters name their targets).
  std::map<std::string, const kernels::Matrix*> matrices_by_name;
  std::vector<float> rope_inv_freq;  // [rope_dim/2], freq factors and scaling folded in
  float rope_pos_scale = 1.f;        // linear rope scaling
  // Repacked copies (AVX512-VNNI or AVX2) of quantized matrices (kernels/packed.h); the mmap'd
  // originals then serve only embedding lookups.
  std::vector<std::unique_ptr<uint8_t[]>> packed;
  uint64_t packed_total = 0;  // bytes in `packed`
  std::vector<std::unique_ptr<uint8_t[]>> merged;  // weights with LoRA adapters merged in (LoadOptions::merge_lora)
  double load_s = 0;          // Model::load's wall time
  std::shared_ptr<kernels::ThreadPool> pool;  // the process's shared pool (ThreadPool::shared)
  std::mutex pool_mu;  // one forward pass at a time per model (the scratch)
  ForwardScratch scratch;
};

}  // namespace specsteer
