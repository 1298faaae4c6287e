#include "kernels/matmul.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <vector>

#include "kernels/packed.h"
#include "kernels/quant.h"
#include "kernels/simd.h"

namespace specsteer::kernels {
namespace {

bool is_float_type(gguf::TensorType t) {
  return t == gguf::TensorType::F32 || t == gguf::TensorType::F16 || t == gguf::TensorType::BF16;
}
bool is_q8_family(gguf::TensorType t) { return t == gguf::TensorType::Q8_0 || t == gguf::TensorType::Q4_0; }

// K-quants: dequantize each row once, a piece at a time into a stack buffer
// (no lazily grown per-thread buffer), then float dot products of the piece
// against all n positions.
void rows_dequant(const Matrix& w, const float* x, int64_t n, float* y, int64_t r0, int64_t r1) {
  constexpr int64_t kPiece = 4096;  // a multiple of every block size (256 at most): 16 KB
  float buf[kPiece];
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t i = 0; i < n; ++i) y[i * w.rows + r] = 0.0f;
    for (int64_t c0 = 0; c0 < w.cols; c0 += kPiece) {
      const int64_t len = std::min(kPiece, w.cols - c0);
      simd::dequantize_blocks(w.type, w.row(r) + gguf::row_bytes(w.type, static_cast<size_t>(c0)), buf,
                              static_cast<size_t>(len));
      for (int64_t i = 0; i < n; ++i)
        y[i * w.rows + r] += simd::dot_f32(buf, x + i * w.cols + c0, static_cast<size_t>(len));
    }
  }
}

struct ActBuffers {
  std::vector<int16_t> q;
  std::vector<float> d;
  std::vector<simd::ActBlockQ8> blocks;  // for the packed VNNI kernel
};

ActBuffers& act_buffers() {
  thread_local ActBuffers buf;  // grows to the largest batch, then no allocation
  return buf;
}

// Quantizes x into this thread's buffers (rows spread over the pool when a
// pool is given): the row-major int16 form, or with `packed_form` the
// block-major form the packed VNNI kernel reads.
simd::QuantizedActs quantize(const float* x, int64_t n, int64_t cols, ThreadPool* pool = nullptr,
                             bool packed_form = false) {
  ActBuffers& buf = act_buffers();
  const size_t nq = static_cast<size_t>(n * cols), nd = static_cast<size_t>(n * cols / 32);
  simd::QuantizedActs a;
  a.cols = cols;
  if (packed_form) {
    if (buf.blocks.size() < nd) buf.blocks.resize(nd);
    a.blocks = buf.blocks.data();
    a.block_stride = n;
  } else {
    if (buf.q.size() < nq) buf.q.resize(nq);
    if (buf.d.size() < nd) buf.d.resize(nd);
    a.q = buf.q.data();
    a.d = buf.d.data();
  }
  auto rows = [&](int64_t r0, int64_t r1) {
    const int64_t nb = cols / 32;
    simd::QuantizedActs part = a;
    if (a.q) {
      part.q = a.q + r0 * cols;
      part.d = a.d + r0 * nb;
    }
    if (a.blocks) part.blocks = a.blocks + r0;  // block_stride stays n
    simd::quantize_acts_q8(x + r0 * cols, r1 - r0, cols, part);
  };
  if (pool && n > 1)
    pool->parallel_for(n, 1, rows);
  else
    rows(0, n);
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

namespace {

enum class Kind { Float, Packed, Q8Family, Dequant };

Kind kind_of(const Matrix& w) {
  if (is_float_type(w.type)) return Kind::Float;
  if (w.packed) return Kind::Packed;
  if (is_q8_family(w.type)) return Kind::Q8Family;
  return Kind::Dequant;
}

// The input in the form a kind of kernel reads, prepared once per product.
struct PreparedInput {
  const float* x = nullptr;
  simd::QuantizedActs a;
};

PreparedInput prepare(Kind kind, const float* x, int64_t n, int64_t cols, ThreadPool& pool) {
  PreparedInput in;
  in.x = x;
  if (kind == Kind::Q8Family || kind == Kind::Packed) in.a = quantize(x, n, cols, &pool, kind == Kind::Packed);
  return in;
}

// Rows [r0, r1) of one product (multiples of kPackRows for packed weights).
void run_rows(Kind kind, const Matrix& w, const PreparedInput& in, int64_t n, float* y, int64_t r0, int64_t r1) {
  switch (kind) {
    case Kind::Float:
      return simd::rows_float(w, in.x, n, y, r0, r1);
    case Kind::Packed:
      return rows_packed(w, in.a.blocks, n, y, r0 / kPackRows, r1 / kPackRows);
    case Kind::Q8Family:
      return w.type == gguf::TensorType::Q8_0 ? simd::rows_q8_0(w, in.a, n, y, r0, r1)
                                              : simd::rows_q4_0(w, in.a, n, y, r0, r1);
    case Kind::Dequant:
      return rows_dequant(w, in.x, n, y, r0, r1);
  }
}

}  // namespace

void matmul(const Matrix& w, const float* x, int64_t n, float* y, ThreadPool& pool) {
  const MatmulOut one{&w, y};
  matmul_shared_input({&one, 1}, x, n, pool);
}

namespace {
std::atomic<bool> g_timing{false};
std::mutex g_times_mu;
MatmulTimes g_times;
}  // namespace

void set_matmul_timing(bool on) {
  std::lock_guard<std::mutex> lock(g_times_mu);
  if (on) g_times = MatmulTimes{};
  g_timing.store(on, std::memory_order_relaxed);
}

MatmulTimes matmul_times() {
  std::lock_guard<std::mutex> lock(g_times_mu);
  return g_times;
}

static void matmul_shared_input_untimed(std::span<const MatmulOut> outs, const float* x, int64_t n, ThreadPool& pool);

void matmul_shared_input(std::span<const MatmulOut> outs, const float* x, int64_t n, ThreadPool& pool) {
  if (!g_timing.load(std::memory_order_relaxed) || outs.empty()) return matmul_shared_input_untimed(outs, x, n, pool);
  for (const MatmulOut& o : outs)
    if (o.w->type != outs[0].w->type) {  // each product under its own type
      for (const MatmulOut& each : outs) matmul_shared_input({&each, 1}, x, n, pool);
      return;
    }
  const auto t0 = std::chrono::steady_clock::now();
  matmul_shared_input_untimed(outs, x, n, pool);
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const size_t type = static_cast<size_t>(outs[0].w->type) % 64;
  std::lock_guard<std::mutex> lock(g_times_mu);
  g_times.seconds[type] += dt;
  ++g_times.calls[type];
}

static void matmul_shared_input_untimed(std::span<const MatmulOut> outs, const float* x, int64_t n, ThreadPool& pool) {
  if (outs.empty()) return;
  const Kind kind = kind_of(*outs[0].w);
  for (const MatmulOut& o : outs)
    if (kind_of(*o.w) != kind || o.w->cols != outs[0].w->cols || o.w->type != outs[0].w->type) {
      for (const MatmulOut& each : outs) matmul_shared_input_untimed({&each, 1}, x, n, pool);
      return;
    }
  // Work unit: one packed 16-row group, or one row (chunked by 16 rows, which
  // keeps chunk edges cache-line friendly).
  const int64_t unit = kind == Kind::Packed ? kPackRows : 1, grain = kind == Kind::Packed ? 1 : 16;
  int64_t units = 0;
  for (const MatmulOut& o : outs) units += o.w->rows / unit;
  // Quantize the activations once; every thread then reads them.
  const PreparedInput in = prepare(kind, x, n, outs[0].w->cols, pool);
  auto rows = [&](int64_t u0, int64_t u1) {
    int64_t base = 0;  // first unit of the current product
    for (const MatmulOut& o : outs) {
      const int64_t count = o.w->rows / unit, lo = std::max(u0, base), hi = std::min(u1, base + count);
      if (lo < hi) run_rows(kind, *o.w, in, n, o.y, (lo - base) * unit, (hi - base) * unit);
      base += count;
    }
  };
  uint64_t work = 0;
  for (const MatmulOut& o : outs) work += static_cast<uint64_t>(o.w->rows) * static_cast<uint64_t>(o.w->cols);
  if (work * static_cast<uint64_t>(n) < kMinParallelWork)
    rows(0, units);
  else
    pool.parallel_for(units, grain, rows);
}

}  // namespace specsteer::kernels
