// The dispatched SIMD kernels against the scalar reference, for every
// weight type and batch sizes around the 4-position register blocking.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/matmul.h"
#include "kernels/packed_q8.h"
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
                                           Case{TensorType::Q6_K, 256, 1e-6}),
                         [](const auto& info) {
                           return std::string(gguf::type_name(info.param.type)) + "_" + std::to_string(info.param.cols);
                         });

TEST(PackedQ8, MatchesTheRowMajorKernelExactlyEnough) {
  if (!packed_q8_available()) GTEST_SKIP() << "CPU without AVX512-VNNI";
  const int64_t rows = 48, cols = 256;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 1.f);
  const size_t rb = gguf::row_bytes(TensorType::Q8_0, cols);
  std::vector<uint8_t> wq(rows * rb);
  std::vector<float> row(cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (auto& v : row) v = nd(rng) * (1.f + static_cast<float>(r));  // a different scale per row
    quantize_row(TensorType::Q8_0, row.data(), &wq[r * rb], cols);
  }
  Matrix plain{TensorType::Q8_0, wq.data(), rows, cols, rb};
  ASSERT_EQ(packed_q8_bytes(plain), static_cast<size_t>(rows / 16 * cols / 32 * kPackedBlockBytes));
  std::vector<uint8_t> packed(packed_q8_bytes(plain));
  pack_q8_0(plain, packed.data());
  Matrix fast = plain;
  fast.packed = packed.data();
  ThreadPool pool(2);
  for (int64_t n : {1, 3, 4, 5, 16, 17}) {
    std::vector<float> x(n * cols), ya(n * rows), yb(n * rows);
    for (auto& v : x) v = nd(rng);
    matmul(plain, x.data(), n, ya.data(), pool);
    matmul(fast, x.data(), n, yb.data(), pool);
    // Same integer sums and scales; only the float summation order differs.
    for (size_t i = 0; i < ya.size(); ++i) ASSERT_NEAR(yb[i], ya[i], 1e-4f * (1.f + std::fabs(ya[i]))) << "n=" << n;
  }
  Matrix odd = plain;
  odd.rows = 40;
  EXPECT_EQ(packed_q8_bytes(odd), 0u);
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
