#pragma once
// Forward-pass FLOPs from real model shapes and counted work, following the
// paper's appendix A.7 / table 11 (Kaplan et al. 2020): per forward position
// 2*N (N = matmul parameters incl. the output head) plus attention
// 2*n_layer*n_ctx*d_attn, n_ctx being the context that position attended.
#include <cstdint>

#include "model/model.h"

namespace specsteer::eval {

struct ForwardWork {
  uint64_t positions = 0;       // Sequence::positions_evaluated()
  uint64_t attention_work = 0;  // Sequence::attention_work(): sum of attended lengths
  ForwardWork& operator+=(const ForwardWork& o) {
    positions += o.positions;
    attention_work += o.attention_work;
    return *this;
  }
};

// Exact integer count (fits in 64 bits for any realistic model and run).
uint64_t forward_flops(const ModelConfig& cfg, const ForwardWork& work);

// FLOPs of one position attending n_ctx tokens (for per-token tables).
uint64_t flops_per_position(const ModelConfig& cfg, uint64_t n_ctx);

}  // namespace specsteer::eval
