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

ForwardWork estimate_work(uint64_t prompt_len, uint64_t positions, uint64_t n_generated) {
  if (positions <= prompt_len) return {positions, positions * (positions + 1) / 2};
  const uint64_t extra = positions - prompt_len;
  // Context of generated position j (1-based) is prompt_len + j; mean over
  // j = 1..n is prompt_len + (n + 1) / 2.
  return {positions, prompt_len * (prompt_len + 1) / 2 + extra * (2 * prompt_len + n_generated + 1) / 2};
}

}  // namespace specsteer::eval
