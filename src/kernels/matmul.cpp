#include "kernels/matmul.h"

#include <vector>

#include "kernels/packed_q8.h"
#include "kernels/quant.h"
#include "kernels/simd.h"

namespace specsteer::kernels {
namespace {

bool is_float_type(gguf::TensorType t) {
  return t == gguf::TensorType::F32 || t == gguf::TensorType::F16 || t == gguf::TensorType::BF16;
}
bool is_q8_family(gguf::TensorType t) { return t == gguf::TensorType::Q8_0 || t == gguf::TensorType::Q4_0; }

// K-quants: dequantize each row once into a per-thread buffer, then float
// dot products against all n positions.
void rows_dequant(const Matrix& w, const float* x, int64_t n, float* y, int64_t r0, int64_t r1) {
  thread_local std::vector<float> buf;
  if (static_cast<int64_t>(buf.size()) < w.cols) buf.resize(static_cast<size_t>(w.cols));
  for (int64_t r = r0; r < r1; ++r) {
    get_row(w, r, buf.data());
    for (int64_t i = 0; i < n; ++i) y[i * w.rows + r] = simd::dot_f32(buf.data(), x + i * w.cols, w.cols);
  }
}

struct ActBuffers {
  std::vector<int16_t> q;
  std::vector<float> d;
  std::vector<uint8_t> u;  // q + 128, for the packed VNNI kernel
};

ActBuffers& act_buffers() {
  thread_local ActBuffers buf;  // grows to the largest batch, then no allocation
  return buf;
}

simd::QuantizedActs quantize(const float* x, int64_t n, int64_t cols) {
  ActBuffers& buf = act_buffers();
  const size_t nq = static_cast<size_t>(n * cols), nd = static_cast<size_t>(n * cols / 32);
  if (buf.q.size() < nq) buf.q.resize(nq);
  if (buf.d.size() < nd) buf.d.resize(nd);
  simd::QuantizedActs a{buf.q.data(), buf.d.data(), cols};
  simd::quantize_acts_q8(x, n, cols, a);
  return a;
}

}  // namespace

namespace simd {
const float* fp16_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (uint32_t h = 0; h < 65536; ++h) t[h] = fp16_to_fp32(static_cast<uint16_t>(h));
    return t;
  }();
  return table.data();
}
}  // namespace simd

void get_row(const Matrix& w, int64_t r, float* dst) {
  dequantize_row(w.type, w.row(r), dst, static_cast<size_t>(w.cols));
}

void matmul_rows(const Matrix& w, const float* x, int64_t n, float* y, int64_t r0, int64_t r1) {
  if (is_float_type(w.type)) return simd::rows_float(w, x, n, y, r0, r1);
  if (is_q8_family(w.type)) {
    const auto a = quantize(x, n, w.cols);
    return w.type == gguf::TensorType::Q8_0 ? simd::rows_q8_0(w, a, n, y, r0, r1) : simd::rows_q4_0(w, a, n, y, r0, r1);
  }
  rows_dequant(w, x, n, y, r0, r1);
}

void matmul(const Matrix& w, const float* x, int64_t n, float* y, ThreadPool& pool) {
  constexpr int64_t kGrain = 16;  // rows per chunk unit: keeps chunk edges cache-line friendly
  if (is_float_type(w.type)) {
    pool.parallel_for(w.rows, kGrain, [&](int64_t r0, int64_t r1) { simd::rows_float(w, x, n, y, r0, r1); });
  } else if (w.packed) {
    const auto a = quantize(x, n, w.cols);
    auto& u = act_buffers().u;
    const size_t nq = static_cast<size_t>(n * w.cols);
    if (u.size() < nq) u.resize(nq);
    for (size_t i = 0; i < nq; ++i) u[i] = static_cast<uint8_t>(a.q[i] + 128);
    pool.parallel_for(w.rows / kPackRows, 1,
                      [&](int64_t g0, int64_t g1) { rows_packed_q8(w, u.data(), a.d, n, y, g0, g1); });
  } else if (is_q8_family(w.type)) {
    // Quantize the activations once, then every thread reads them.
    const auto a = quantize(x, n, w.cols);
    const bool q8 = w.type == gguf::TensorType::Q8_0;
    pool.parallel_for(w.rows, kGrain, [&](int64_t r0, int64_t r1) {
      q8 ? simd::rows_q8_0(w, a, n, y, r0, r1) : simd::rows_q4_0(w, a, n, y, r0, r1);
    });
  } else {
    pool.parallel_for(w.rows, kGrain, [&](int64_t r0, int64_t r1) { rows_dequant(w, x, n, y, r0, r1); });
  }
}

}  // namespace specsteer::kernels
