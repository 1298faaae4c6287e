#include "eval/flops.h"

#include <gtest/gtest.h>

using namespace specsteer;
using namespace specsteer::eval;

namespace {
// tiny-qwen3 fixture shapes (see shared/fixtures/golden/tiny-qwen3-f32).
ModelConfig tiny_qwen3() {
  ModelConfig c;
  c.arch = "qwen3";
  c.n_vocab = 151936;
  c.n_embd = 32;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.head_dim = 16;
  c.n_ff = 128;
  return c;
}
}  // namespace

TEST(Flops, TinyQwen3HandChecked) {
  ModelConfig c = tiny_qwen3();
  // Per layer: Wq 32x64 = 2048, Wk and Wv 32x32 = 1024 each, Wo 64x32 = 2048,
  // gate/up/down 3 x 32x128 = 12288 -> 18432; two layers 36864;
  // output head 151936 x 32 = 4861952. N = 4898816.
  ASSERT_EQ(c.n_params_matmul(), 4898816u);
  // One position attending 10 tokens: 2N + 2 * n_layer * n_ctx * d_attn
  // = 9797632 + 2*2*10*64 = 9797632 + 2560.
  EXPECT_EQ(flops_per_position(c, 10), 9800192u);
  // Prefill of 5 tokens (contexts 1..5 -> attention work 15) then 3 decode
  // steps (contexts 6, 7, 8 -> 21): 8 positions, attention work 36.
  ForwardWork w{8, 36};
  EXPECT_EQ(forward_flops(c, w), 8u * 9797632u + 2u * 2u * 64u * 36u);
  ForwardWork sum;
  sum += ForwardWork{5, 15};
  sum += ForwardWork{3, 21};
  EXPECT_EQ(forward_flops(c, sum), forward_flops(c, w));
  EXPECT_EQ(forward_flops(c, ForwardWork{}), 0u);
}

TEST(Flops, AttentionTermScalesWithContext) {
  ModelConfig c = tiny_qwen3();
  // Doubling the attended context adds exactly 2 * n_layer * d_attn per extra token.
  EXPECT_EQ(flops_per_position(c, 2000) - flops_per_position(c, 1000), 2u * 2u * 64u * 1000u);
}

