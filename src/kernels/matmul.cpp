#include "kernels/matmul.h"

#include <vector>

#include "kernels/quant.h"

namespace specsteer::kernels {
namespace {

inline float dot_f32(const float* a, const float* b, int64_t n) {
  // Four independent accumulators let the compiler pipeline the adds.
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

}  // namespace

void get_row(const Matrix& w, int64_t r, float* dst) {
  dequantize_row(w.type, w.row(r), dst, static_cast<size_t>(w.cols));
}

void matmul_rows(const Matrix& w, const float* x, int64_t n, float* y, int64_t r0, int64_t r1) {
  thread_local std::vector<float> buf;
  if (static_cast<int64_t>(buf.size()) < w.cols) buf.resize(static_cast<size_t>(w.cols));
  for (int64_t r = r0; r < r1; ++r) {
    const float* row;
    if (w.type == gguf::TensorType::F32) {
      row = reinterpret_cast<const float*>(w.row(r));
    } else {
      get_row(w, r, buf.data());
      row = buf.data();
    }
    for (int64_t i = 0; i < n; ++i) y[i * w.rows + r] = dot_f32(row, x + i * w.cols, w.cols);
  }
}

void matmul(const Matrix& w, const float* x, int64_t n, float* y, ThreadPool& pool) {
  pool.parallel_for(w.rows, 16, [&](int64_t r0, int64_t r1) { matmul_rows(w, x, n, y, r0, r1); });
}

}  // namespace specsteer::kernels
