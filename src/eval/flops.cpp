#include "eval/flops.h"

namespace specsteer::eval {

uint64_t forward_flops(const ModelConfig& cfg, const ForwardWork& work) {
  const uint64_t n = cfg.n_params_matmul();
  const uint64_t attn = 2ull * static_cast<uint64_t>(cfg.n_layer) * static_cast<uint64_t>(cfg.q_dim());
  return 2ull * n * work.positions + attn * work.attention_work;
}

uint64_t flops_per_position(const ModelConfig& cfg, uint64_t n_ctx) {
  return forward_flops(cfg, ForwardWork{1, n_ctx});
}

}  // namespace specsteer::eval
