#pragma once
// Matrix products of quantized weights with float activations. Weights stay
// in their GGUF layout: row-major [rows][cols], each row `row_bytes` long.
#include <cstddef>
#include <cstdint>
#include <span>

#include "gguf/types.h"
#include "kernels/thread_pool.h"

namespace specsteer::kernels {

struct Matrix {
  gguf::TensorType type = gguf::TensorType::F32;
  const uint8_t* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  size_t row_bytes = 0;
  const uint8_t* packed = nullptr;  // optional repacked layout of the same weights (kernels/packed.h)
  const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes; }
};

// y[i][r] = sum_c W[r][c] * x[i][c] for i < n (x is [n][cols], y is [n][rows]).
// Each weight row is read once for all n inputs, so a batch of n positions
// costs about one pass over the weights.
void matmul(const Matrix& w, const float* x, int64_t n, float* y, ThreadPool& pool);

// Several products of the same input x (a layer's Q, K and V, or its gate
// and up projections): x is quantized once and all their rows share one
// parallel loop, so the threads meet once instead of once per matrix.
// Matrices of different types or widths fall back to one product each.
struct MatmulOut {
  const Matrix* w;
  float* y;  // [n][w->rows]
};
void matmul_shared_input(std::span<const MatmulOut> outs, const float* x, int64_t n, ThreadPool& pool);

// Same product, single-threaded over rows [r0, r1) (building block and test oracle).
void matmul_rows(const Matrix& w, const float* x, int64_t n, float* y, int64_t r0, int64_t r1);

// Copies row r of w, dequantized, into dst[cols].
void get_row(const Matrix& w, int64_t r, float* dst);

// Opt-in timing of matrix products by weight type (bench's per-type share
// of decode time). Off by default: then it costs one relaxed load per product.
struct MatmulTimes {
  double seconds[64] = {};  // by gguf::TensorType value
  uint64_t calls[64] = {};
};
void set_matmul_timing(bool on);
MatmulTimes matmul_times();  // totals since timing was last switched on

}  // namespace specsteer::kernels
