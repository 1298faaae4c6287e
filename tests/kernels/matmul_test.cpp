// The dispatched SIMD kernels against the scalar reference, for every
// weight type and batch sizes around the 4-position register blocking.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <random>

#include "kernels/matmul.h"
#include "kernels/packed.h"
#include "kernels/quant.h"
#include "kernels/simd.h"

namespace specsteer::kernels {
namespace {

using gguf::TensorType;

struct Case {
  TensorType type;
  int64_t cols;
  double rel_tol;  // relative to sum |w*x|: covers activation quantization for Q8_0/Q4_0
};

class MatmulTest : public ::testing::TestWithParam<Case> {};

TEST_P(MatmulTest, MatchesReferenceForEveryBatchSize) {
  const Case c = GetParam();
  const int64_t rows = 37;  // not a multiple of the thread grain
  std::mt19937 rng(42);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> wf(rows * c.cols);
  for (auto& v : wf) v = nd(rng);
  const size_t rb = gguf::row_bytes(c.type, c.cols);
  std::vector<uint8_t> wq(rows * rb);
  for (int64_t r = 0; r < rows; ++r) quantize_row(c.type, &wf[r * c.cols], &wq[r * rb], c.cols);
  Matrix m{c.type, wq.data(), rows, c.cols, rb};
  ThreadPool pool(2);
  for (int64_t n : {1, 2, 3, 4, 5, 8, 16, 17}) {
    std::vector<float> x(n * c.cols), y(n * rows, NAN);
    for (auto& v : x) v = nd(rng);
    matmul(m, x.data(), n, y.data(), pool);
    std::vector<float> deq(c.cols);
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(c.type, &wq[r * rb], deq.data(), c.cols);
      for (int64_t i = 0; i < n; ++i) {
        double ref = dot_row_reference(c.type, &wq[r * rb], &x[i * c.cols], c.cols);
        double mag = 0;
        for (int64_t k = 0; k < c.cols; ++k) mag += std::fabs(deq[k] * x[i * c.cols + k]);
        ASSERT_NEAR(y[i * rows + r], ref, c.rel_tol * mag + 1e-5)
            << gguf::type_name(c.type) << " n=" << n << " row " << r << " pos " << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, MatmulTest,
                         ::testing::Values(Case{TensorType::F32, 173, 1e-6}, Case{TensorType::F32, 256, 1e-6},
                                           Case{TensorType::F16, 77, 1e-6}, Case{TensorType::BF16, 64, 1e-6},
                                           Case{TensorType::Q8_0, 256, 1e-2}, Case{TensorType::Q4_0, 96, 1e-2},
                                           Case{TensorType::Q4_K, 512, 1e-6}, Case{TensorType::Q5_K, 256, 1e-6},
                                           Case{TensorType::Q6_K, 256, 1e-6},
                                           // wider than the K-quant path's 4096-column dequantization piece
                                           Case{TensorType::Q4_K, 4352, 1e-6}),
                         [](const auto& info) {
                           return std::string(gguf::type_name(info.param.type)) + "_" + std::to_string(info.param.cols);
                         });

class Packed : public ::testing::TestWithParam<TensorType> {};

// Gaussian rows quantized to `type`, row r scaled by scale(r); zero_row (if >= 0) gets a zero first super-block.
template <typename Scale>
std::vector<uint8_t> quantized_rows(TensorType type, int64_t rows, int64_t cols, std::mt19937& rng, Scale scale,
                                    int64_t zero_row = -1) {
  std::normal_distribution<float> nd(0.f, 1.f);
  const size_t rb = gguf::row_bytes(type, cols);
  std::vector<uint8_t> wq(rows * rb);
  std::vector<float> row(cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (auto& v : row) v = nd(rng) * scale(r);
    if (r == zero_row) std::fill(row.begin(), row.begin() + 256, 0.0f);
    quantize_row(type, row.data(), &wq[r * rb], cols);
  }
  return wq;
}

TEST_P(Packed, MatchesTheRowMajorKernelExactlyEnough) {
  const TensorType type = GetParam();
  if (!packed_available(type)) GTEST_SKIP() << "no packed kernel for this type on this CPU";
  const int64_t rows = 48, cols = 256;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 1.f);
  const size_t rb = gguf::row_bytes(type, cols);
  // a different scale per row
  std::vector<uint8_t> wq = quantized_rows(type, rows, cols, rng, [](int64_t r) { return 1.f + float(r); });
  // Extreme codes must survive the packed layout's offset: a -128 Q8_0
  // weight (never written by the quantizer, legal in a file), Q4_0 nibbles
  // 0 and 15 in both halves of a byte.
  if (type == TensorType::Q8_0) wq[rb + 2] = 0x80;
  if (type == TensorType::Q4_0) wq[rb + 2] = 0xF0, wq[rb + 3] = 0x0F;
  Matrix plain{type, wq.data(), rows, cols, rb};
  ASSERT_EQ(packed_bytes(plain), static_cast<size_t>(rows / 16 * cols / 32 * packed_block_bytes(type)));
  ASSERT_EQ(packed_bytes(plain), wq.size());  // same bytes as the GGUF layout
  std::vector<uint8_t> packed(packed_bytes(plain));
  pack_weights(plain, packed.data());
  Matrix fast = plain;
  fast.packed = packed.data();
  ThreadPool pool(2);
  for (int64_t n : {1, 3, 4, 5, 16, 17, 29}) {
    std::vector<float> x(n * cols), ya(n * rows), yb(n * rows);
    for (auto& v : x) v = nd(rng);
    matmul(plain, x.data(), n, ya.data(), pool);
    matmul(fast, x.data(), n, yb.data(), pool);
    // Same integer sums and scales; only the float summation order differs.
    for (size_t i = 0; i < ya.size(); ++i) ASSERT_NEAR(yb[i], ya[i], 1e-4f * (1.f + std::fabs(ya[i]))) << "n=" << n;
  }
  Matrix odd = plain;
  odd.rows = 40;
  EXPECT_EQ(packed_bytes(odd), 0u);
}

INSTANTIATE_TEST_SUITE_P(Kernels, Packed, ::testing::Values(TensorType::Q8_0, TensorType::Q4_0),
                         [](const auto& info) { return std::string(gguf::type_name(info.param)); });

TEST(PackedLayout, OnlyQ8_0AndQ4_0HaveA32ColumnPackedBlock) {
  for (TensorType t : {TensorType::F32, TensorType::F16, TensorType::Q4_K, TensorType::Q6_K})
    EXPECT_EQ(packed_block_bytes(t), 0u) << gguf::type_name(t);
}

// The K-quants repacked for VNNI (16 rows x 256 columns per super-block,
// integer codes against activations quantized per 32): against the exact
// float reference within the activation quantization's error, like Q8_0;
// extreme codes (0 and the largest) and extreme scales survive the layout;
// the packed copy is the GGUF size plus at most a few percent.
class PackedK : public ::testing::TestWithParam<TensorType> {};

TEST_P(PackedK, MatchesTheReferenceWithinActivationQuantization) {
  const TensorType type = GetParam();
  if (!packed_available(type)) GTEST_SKIP() << "no packed kernel for this type on this CPU";
  const int64_t rows = 48, cols = 512;
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 1.f);
  const size_t rb = gguf::row_bytes(type, cols);
  // row 5 starts with a super-block of zero scales
  std::vector<uint8_t> wq = quantized_rows(type, rows, cols, rng, [](int64_t r) { return 1.f + float(r % 7); }, 5);
  // Extreme codes in row 1: all code bits set in its first super-block, then cleared in row 2.
  if (type == TensorType::Q4_K) {
    std::fill_n(&wq[rb + 16], 128, 0xFF);
    std::fill_n(&wq[2 * rb + 16], 128, 0x00);
  } else if (type == TensorType::Q5_K) {
    std::fill_n(&wq[rb + 16], 32 + 128, 0xFF);
    std::fill_n(&wq[2 * rb + 16], 32 + 128, 0x00);
  } else {
    std::fill_n(&wq[rb], 128 + 64, 0xFF);
    std::fill_n(&wq[2 * rb], 128 + 64, 0x00);
    wq[rb + 192] = 0x80;  // scale -128
  }
  Matrix plain{type, wq.data(), rows, cols, rb};
  ASSERT_GT(packed_bytes(plain), 0u);
  EXPECT_GE(packed_bytes(plain), wq.size());
  EXPECT_LE(packed_bytes(plain), wq.size() * 103 / 100) << "the packed copy should cost about the GGUF bytes";
  std::vector<uint8_t> packed(packed_bytes(plain));
  pack_weights(plain, packed.data());
  Matrix fast = plain;
  fast.packed = packed.data();
  ThreadPool pool(2);
  std::vector<float> deq(cols);
  for (int64_t n : {1, 2, 3, 7, 8, 9, 16, 17, 33}) {
    std::vector<float> x(n * cols), y(n * rows);
    for (auto& v : x) v = nd(rng);
    matmul(fast, x.data(), n, y.data(), pool);
    // The activations exactly as the kernel sees them (8-bit per 32, fp16-rounded scales).
    std::vector<int16_t> xq(n * cols);
    std::vector<float> xd(n * cols / 32);
    simd::QuantizedActs acts;
    acts.q = xq.data();
    acts.d = xd.data();
    acts.cols = cols;
    simd::quantize_acts_q8(x.data(), n, cols, acts);
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(type, &wq[r * rb], deq.data(), cols);
      for (int64_t i = 0; i < n; ++i) {
        const double ref = dot_row_reference(type, &wq[r * rb], &x[i * cols], cols);
        double mag = 0, exact = 0;
        for (int64_t k = 0; k < cols; ++k) {
          mag += std::fabs(deq[k] * x[i * cols + k]);
          exact += double(deq[k]) * xd[(i * cols + k) / 32] * xq[i * cols + k];
        }
        // Against quantized activations the integer path is exact up to float rounding ...
        ASSERT_NEAR(y[i * rows + r], exact, 2e-5 * mag + 1e-5)
            << gguf::type_name(type) << " n=" << n << " row " << r << " pos " << i;
        // ... and against float activations within their quantization error.
        ASSERT_NEAR(y[i * rows + r], ref, 1e-2 * mag + 1e-5)
            << gguf::type_name(type) << " n=" << n << " row " << r << " pos " << i;
      }
    }
  }
  Matrix narrow = plain;
  narrow.cols = 480;  // not whole super-blocks
  EXPECT_EQ(packed_bytes(narrow), 0u);
}

INSTANTIATE_TEST_SUITE_P(Kernels, PackedK, ::testing::Values(TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K),
                         [](const auto& info) { return std::string(gguf::type_name(info.param)); });

TEST(SharedInputMatmul, EqualsOneProductPerMatrix) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 1.f);
  const int64_t cols = 64;
  auto make = [&](TensorType t, int64_t rows, std::vector<uint8_t>& store) {
    const size_t rb = gguf::row_bytes(t, cols);
    store.resize(rows * rb);
    std::vector<float> row(cols);
    for (int64_t r = 0; r < rows; ++r) {
      for (auto& v : row) v = nd(rng);
      quantize_row(t, row.data(), &store[r * rb], cols);
    }
    return Matrix{t, store.data(), rows, cols, rb};
  };
  std::vector<uint8_t> sa, sb, sc, pa, pb;
  Matrix a = make(TensorType::Q8_0, 48, sa), b = make(TensorType::Q8_0, 32, sb), f = make(TensorType::F32, 19, sc);
  ThreadPool pool(2);
  auto check = [&](std::vector<Matrix> ms) {
    for (int64_t n : {1, 4, 9}) {
      std::vector<float> x(n * cols);
      for (auto& v : x) v = nd(rng);
      std::vector<std::vector<float>> want(ms.size()), got(ms.size());
      std::vector<MatmulOut> outs;
      for (size_t i = 0; i < ms.size(); ++i) {
        want[i].resize(n * ms[i].rows);
        got[i].assign(n * ms[i].rows, NAN);
        matmul(ms[i], x.data(), n, want[i].data(), pool);
      }
      for (size_t i = 0; i < ms.size(); ++i) outs.push_back({&ms[i], got[i].data()});
      matmul_shared_input(outs, x.data(), n, pool);
      for (size_t i = 0; i < ms.size(); ++i) ASSERT_EQ(got[i], want[i]) << "matrix " << i << " n=" << n;
    }
  };
  check({a, b});     // one loop over both
  check({a, f, b});  // mixed types: one product each
  if (packed_available(a.type)) {
    pa.resize(packed_bytes(a));
    pb.resize(packed_bytes(b));
    pack_weights(a, pa.data());
    pack_weights(b, pb.data());
    Matrix ap = a, bp = b;
    ap.packed = pa.data();
    bp.packed = pb.data();
    check({ap, bp});
  }
}

TEST(Attention, F16AndF32HelpersMatchScalar) {
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (size_t n : {1u, 15u, 16u, 17u, 128u}) {
    std::vector<float> q(n), v32(n), acc(n), want(n);
    std::vector<uint16_t> k16(n), v16(n);
    for (size_t i = 0; i < n; ++i) {
      q[i] = nd(rng);
      k16[i] = fp32_to_fp16(nd(rng));
      v16[i] = fp32_to_fp16(nd(rng));
      v32[i] = nd(rng);
      acc[i] = want[i] = nd(rng);
    }
    double dot = 0;
    for (size_t i = 0; i < n; ++i) dot += static_cast<double>(q[i]) * fp16_to_fp32(k16[i]);
    EXPECT_NEAR(simd::dot_f16(q.data(), k16.data(), n), dot, 1e-4 * (1 + std::fabs(dot))) << n;
    simd::axpy_f16(0.5f, v16.data(), acc.data(), n);
    simd::axpy_f32(-2.f, v32.data(), acc.data(), n);
    for (size_t i = 0; i < n; ++i) {
      want[i] += 0.5f * fp16_to_fp32(v16[i]);
      want[i] += -2.f * v32[i];
      EXPECT_NEAR(acc[i], want[i], 1e-5f * (1 + std::fabs(want[i]))) << n << " " << i;
    }
  }
}

TEST(RowOps, RmsNormAndSiluMulMatchScalar) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 2.f);
  for (size_t n : {1u, 7u, 16u, 33u, 1024u}) {
    std::vector<float> x(n), w(n), out(n), gate(n), up(n);
    for (size_t i = 0; i < n; ++i) x[i] = nd(rng), w[i] = nd(rng), gate[i] = 20 * nd(rng), up[i] = nd(rng);
    double ss = 0;
    for (float v : x) ss += static_cast<double>(v) * v;
    const float scale = 1.0f / std::sqrt(static_cast<float>(ss / n) + 1e-6f);
    simd::rms_norm(x.data(), w.data(), out.data(), n, 1e-6f);
    for (size_t i = 0; i < n; ++i) EXPECT_NEAR(out[i], x[i] * scale * w[i], 1e-6f * (1 + std::fabs(out[i]))) << n;
    simd::rms_norm(x.data(), w.data(), x.data(), n, 1e-6f);  // in place
    EXPECT_EQ(x, out);
    std::vector<float> want(n);
    for (size_t i = 0; i < n; ++i) want[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
    simd::silu_mul(gate.data(), up.data(), n);
    for (size_t i = 0; i < n; ++i) EXPECT_NEAR(gate[i], want[i], 1e-5f * (1 + std::fabs(want[i]))) << n;
  }
}

TEST(QuantizedActs, FollowLlamaCppRounding) {
  // 32 values whose scale is exactly 1: q must be round-half-even of x.
  std::vector<float> x(32, 0.f);
  x[0] = 127.f;
  x[1] = 2.5f;   // -> 2 (half to even)
  x[2] = 3.5f;   // -> 4
  x[3] = -2.5f;  // -> -2
  x[4] = 0.49f;
  std::vector<int16_t> q(32);
  std::vector<float> d(1);
  simd::QuantizedActs a{q.data(), d.data(), 32};
  simd::quantize_acts_q8(x.data(), 1, 32, a);
  EXPECT_EQ(d[0], 1.f);
  EXPECT_EQ(q[0], 127);
  EXPECT_EQ(q[1], 2);
  EXPECT_EQ(q[2], 4);
  EXPECT_EQ(q[3], -2);
  EXPECT_EQ(q[4], 0);
  std::vector<float> zeros(32, 0.f);
  simd::quantize_acts_q8(zeros.data(), 1, 32, a);
  EXPECT_EQ(d[0], 0.f);
  EXPECT_EQ(q[0], 0);
}

TEST(ThreadPool, CoversRangeExactlyOnceAndIsReusable) {
  ThreadPool pool(3);
  for (int64_t n : {1, 5, 16, 17, 1000}) {
    std::vector<std::atomic<int>> hits(n);
    for (int rep = 0; rep < 50; ++rep)
      pool.parallel_for(n, 4, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[i]++;
      });
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 50) << "n=" << n << " i=" << i;
  }
}

}  // namespace
}  // namespace specsteer::kernels
