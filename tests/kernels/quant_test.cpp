// Tensor formats: fp16/bf16 conversion edge cases, hand-built blocks with
// known values for every quantized type, round-trip error bounds and dot
// products against a float reference.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "common/error.h"
#include "kernels/quant.h"

using namespace specsteer;
using namespace specsteer::kernels;
using gguf::TensorType;

namespace {

float f32(uint32_t bits) { return std::bit_cast<float>(bits); }

std::vector<float> gaussian(size_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// The half-precision value nearest to f by exhaustive comparison of the
// neighbours of a candidate (ties to even mantissa): an oracle independent of
// the bit tricks in fp32_to_fp16.
bool is_nearest_half(float f, uint16_t h) {
  if (std::isnan(f)) return std::isnan(fp16_to_fp32(h));
  const double x = f;
  const double v = fp16_to_fp32(h);
  if (std::signbit(v) != std::signbit(x) && v != 0.0) return false;
  const uint16_t mag = h & 0x7FFF;
  for (int delta : {-1, 1}) {
    const int nb = static_cast<int>(mag) + delta;
    if (nb < 0 || nb > 0x7C00) continue;
    const double w = fp16_to_fp32(static_cast<uint16_t>((h & 0x8000) | nb));
    const double dv = std::fabs(v - x), dw = std::fabs(w - x);
    if (std::isinf(v) && !std::isinf(x)) {
      // Overflow to inf is right only when |x| >= 65520 (halfway past 65504).
      if (std::fabs(x) < 65520.0) return false;
      continue;
    }
    if (std::isinf(w)) continue;
    if (dw < dv) return false;
    if (dw == dv && (mag & 1)) return false;  // tie must go to the even mantissa
  }
  return true;
}

}  // namespace

// ------------------------------------------------------------------ fp16

TEST(Fp16, KnownValues) {
  EXPECT_EQ(fp32_to_fp16(0.0f), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3C00);
  EXPECT_EQ(fp32_to_fp16(-2.0f), 0xC000);
  EXPECT_EQ(fp32_to_fp16(0.5f), 0x3800);
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7BFF);                     // max finite
  EXPECT_EQ(fp32_to_fp16(65519.996f), 0x7BFF);                   // just below the halfway point
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);                     // halfway rounds to inf (even)
  EXPECT_EQ(fp32_to_fp16(1e10f), 0x7C00);
  EXPECT_EQ(fp32_to_fp16(-1e10f), 0xFC00);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(fp32_to_fp16(-std::numeric_limits<float>::infinity()), 0xFC00);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -14)), 0x0400);        // smallest normal
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -24)), 0x0001);        // smallest subnormal
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1023.0f, -24)), 0x03FF);     // largest subnormal
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);        // tie -> even (0)
  EXPECT_EQ(fp32_to_fp16(std::ldexp(3.0f, -26)), 0x0001);        // 0.75 ulp -> up
  EXPECT_EQ(fp32_to_fp16(std::ldexp(3.0f, -25)), 0x0002);        // 1.5 ulp tie -> even (2)
  EXPECT_EQ(fp32_to_fp16(std::ldexp(5.0f, -25)), 0x0002);        // 2.5 ulp tie -> even (2)
  EXPECT_EQ(fp32_to_fp16(std::ldexp(2047.0f, -25)), 0x0400);     // carries into the smallest normal
  EXPECT_EQ(fp32_to_fp16(f32(0x00000001)), 0x0000);              // fp32 subnormal
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie -> even
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3C01);
  const uint16_t nan = fp32_to_fp16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7C00, 0x7C00);
  EXPECT_NE(nan & 0x03FF, 0);
  // A signalling NaN whose payload lives only in the low bits must stay NaN.
  EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(f32(0x7F800001)))));

  EXPECT_EQ(fp16_to_fp32(0x3C00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(fp16_to_fp32(0x8000), -0.0f);
  EXPECT_TRUE(std::signbit(fp16_to_fp32(0x8000)));
  EXPECT_EQ(fp16_to_fp32(0x7BFF), 65504.0f);
  EXPECT_EQ(fp16_to_fp32(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(fp16_to_fp32(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7E00)));
  EXPECT_EQ(fp16_to_fp32(0x3555), 0.333251953125f);
}

TEST(Fp16, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = fp16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(f)))) << h;
      continue;
    }
    ASSERT_EQ(fp32_to_fp16(f), h) << "half 0x" << std::hex << h;
  }
}

TEST(Fp16, RandomFloatsRoundToNearestEven) {
  std::mt19937 rng(7);
  // Random bit patterns over the half range (exponents 2^-26 .. 2^17) plus
  // exact ties between neighbouring halves.
  std::uniform_int_distribution<uint32_t> exp(101, 144), mant(0, 0x7FFFFF), sign(0, 1);
  for (int i = 0; i < 200000; ++i) {
    const uint32_t bits = (sign(rng) << 31) | (exp(rng) << 23) | mant(rng);
    const float f = f32(bits);
    ASSERT_TRUE(is_nearest_half(f, fp32_to_fp16(f))) << "bits 0x" << std::hex << bits;
  }
  for (uint32_t h = 0; h < 0x7BFF; ++h) {
    const float mid = static_cast<float>(
        (static_cast<double>(fp16_to_fp32(static_cast<uint16_t>(h))) + fp16_to_fp32(static_cast<uint16_t>(h + 1))) / 2);
    const uint16_t r = fp32_to_fp16(mid);
    ASSERT_EQ(r, (h & 1) ? h + 1 : h) << "tie between 0x" << std::hex << h << " and its successor";
  }
}

// ------------------------------------------------------------------ bf16

TEST(Bf16, KnownValuesAndRounding) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(fp32_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_bf16(f32(0x3F808000)), 0x3F80);  // tie -> even
  EXPECT_EQ(fp32_to_bf16(f32(0x3F818000)), 0x3F82);  // tie -> even (up)
  EXPECT_EQ(fp32_to_bf16(f32(0x3F808001)), 0x3F81);  // above tie -> up
  EXPECT_EQ(fp32_to_bf16(f32(0x3F807FFF)), 0x3F80);  // below tie -> down
  EXPECT_EQ(fp32_to_bf16(f32(0x7F7FFFFF)), 0x7F80);  // max float rounds to inf
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(fp32_to_bf16(f32(0x00010000)), 0x0001);  // subnormal kept
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(f32(0x7F800001)))));  // low-payload NaN stays NaN
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(bf16_to_fp32(0x4049), 3.140625f);
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = bf16_to_fp32(static_cast<uint16_t>(h));
    if (!std::isnan(f)) {
      ASSERT_EQ(fp32_to_bf16(f), h);
    }
  }
}

// ------------------------------------------------------------------ hand-built blocks

TEST(QuantBlocks, Q8_0Known) {
  BlockQ8_0 b;
  b.d = fp32_to_fp16(0.25f);
  for (int i = 0; i < 32; ++i) b.qs[i] = static_cast<int8_t>(i * 8 - 128);
  float y[32];
  dequantize_row(TensorType::Q8_0, &b, y, 32);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(y[i], (i * 8 - 128) * 0.25f) << i;
}

TEST(QuantBlocks, Q8_0RoundsHalfAwayFromZero) {
  // amax 127 => d = 1 exactly, so x*id is x: ties show the rounding rule.
  float x[32] = {127.0f, 2.5f, -2.5f, 0.5f, -0.5f, 1.5f, 3.49f, -126.5f};
  BlockQ8_0 b;
  quantize_row(TensorType::Q8_0, x, &b, 32);
  EXPECT_EQ(fp16_to_fp32(b.d), 1.0f);
  const int expect[8] = {127, 3, -3, 1, -1, 2, 3, -127};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(b.qs[i], expect[i]) << i;
  for (int i = 8; i < 32; ++i) EXPECT_EQ(b.qs[i], 0);
}

TEST(QuantBlocks, Q4_0Known) {
  BlockQ4_0 b;
  b.d = fp32_to_fp16(2.0f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float y[32];
  dequantize_row(TensorType::Q4_0, &b, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], (j - 8) * 2.0f) << j;            // low nibbles: elements 0..15
    EXPECT_EQ(y[j + 16], (7 - j) * 2.0f) << j + 16;  // high nibbles: elements 16..31
  }
}

TEST(QuantBlocks, KScaleUnpacking) {
  // Byte-level layout of the 12 packed bytes, decoded by hand.
  const uint8_t s[12] = {0x41, 0x82, 0xC3, 0x04, 0x45, 0x86, 0xC7, 0x08, 0x21, 0x43, 0x65, 0x87};
  const uint8_t want_sc[8] = {1, 2, 3, 4, 17, 35, 53, 7};
  const uint8_t want_m[8] = {5, 6, 7, 8, 18, 36, 54, 8};
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    get_scale_min_k4(j, s, &sc, &m);
    EXPECT_EQ(sc, want_sc[j]) << j;
    EXPECT_EQ(m, want_m[j]) << j;
  }
  // Through the full Q4_K dequantizer: all quants 1 => value d*sc - dmin*m.
  BlockQ4_K b;
  b.d = fp32_to_fp16(0.5f);
  b.dmin = fp32_to_fp16(0.25f);
  std::memcpy(b.scales, s, 12);
  std::memset(b.qs, 0x11, sizeof(b.qs));
  float y[256];
  dequantize_row(TensorType::Q4_K, &b, y, 256);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(y[i], 0.5f * want_sc[i / 32] - 0.25f * want_m[i / 32]) << i;
}

namespace {

// Independent packer for the K-quant 6-bit scales: sub-blocks 0..3 take the
// low 6 bits of bytes 0..3 (scale) and 4..7 (min); 4..7 put their low 4 bits
// in bytes 8..11 (scale low nibble, min high nibble) and their top 2 bits in
// the top 2 bits of bytes 0..3 (scale) and 4..7 (min).
void pack_k_scales(const uint8_t sc[8], const uint8_t m[8], uint8_t out[12]) {
  for (int j = 0; j < 4; ++j) {
    out[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    out[j + 4] = static_cast<uint8_t>(m[j] | ((m[j + 4] >> 4) << 6));
    out[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
}

}  // namespace

TEST(QuantBlocks, Q4_KKnown) {
  const uint8_t sc[8] = {3, 17, 33, 63, 5, 40, 22, 61};
  const uint8_t m[8] = {0, 1, 62, 15, 16, 47, 31, 9};
  BlockQ4_K b;
  b.d = fp32_to_fp16(0.125f);
  b.dmin = fp32_to_fp16(0.0625f);
  pack_k_scales(sc, m, b.scales);
  int q[256];
  for (int i = 0; i < 256; ++i) q[i] = (i * 7 + i / 32) % 16;
  // Element e of sub-block s: byte 32*(s/2) + e, low nibble for even s.
  for (int g = 0; g < 4; ++g)
    for (int l = 0; l < 32; ++l) b.qs[32 * g + l] = static_cast<uint8_t>(q[64 * g + l] | (q[64 * g + 32 + l] << 4));
  float y[256];
  dequantize_row(TensorType::Q4_K, &b, y, 256);
  for (int i = 0; i < 256; ++i) {
    const int s = i / 32;
    EXPECT_EQ(y[i], 0.125f * sc[s] * q[i] - 0.0625f * m[s]) << i;
  }
}

TEST(QuantBlocks, Q5_KKnown) {
  const uint8_t sc[8] = {63, 1, 2, 30, 47, 16, 8, 33};
  const uint8_t m[8] = {4, 63, 0, 20, 32, 48, 1, 2};
  BlockQ5_K b;
  b.d = fp32_to_fp16(0.25f);
  b.dmin = fp32_to_fp16(0.5f);
  pack_k_scales(sc, m, b.scales);
  int q[256];
  for (int i = 0; i < 256; ++i) q[i] = (i * 13 + 5) % 32;
  std::memset(b.qh, 0, sizeof(b.qh));
  for (int g = 0; g < 4; ++g) {
    for (int l = 0; l < 32; ++l) {
      const int lo = q[64 * g + l], hi = q[64 * g + 32 + l];
      b.qs[32 * g + l] = static_cast<uint8_t>((lo & 15) | ((hi & 15) << 4));
      // Fifth bits: sub-block s uses bit s of qh[l].
      b.qh[l] = static_cast<uint8_t>(b.qh[l] | ((lo >> 4) << (2 * g)) | ((hi >> 4) << (2 * g + 1)));
    }
  }
  float y[256];
  dequantize_row(TensorType::Q5_K, &b, y, 256);
  for (int i = 0; i < 256; ++i) {
    const int s = i / 32;
    EXPECT_EQ(y[i], 0.25f * sc[s] * q[i] - 0.5f * m[s]) << i;
  }
}

TEST(QuantBlocks, Q6_KKnown) {
  BlockQ6_K b;
  b.d = fp32_to_fp16(0.5f);
  const int8_t sc[16] = {-128, 127, 1, -1, 5, -7, 9, 100, -50, 3, 2, 64, -64, 11, 0, 33};
  std::memcpy(b.scales, sc, 16);
  int q[256];
  for (int i = 0; i < 256; ++i) q[i] = (i * 11 + 3) % 64;
  // Halves of 128: element l (0..31) of quarter k goes to ql[l + 32*(k&1)]
  // (low nibble for k<2, high for k>=2) and bits 2k..2k+1 of qh[l].
  std::memset(b.ql, 0, sizeof(b.ql));
  std::memset(b.qh, 0, sizeof(b.qh));
  for (int h = 0; h < 2; ++h) {
    for (int k = 0; k < 4; ++k) {
      for (int l = 0; l < 32; ++l) {
        const int v = q[128 * h + 32 * k + l];
        uint8_t& lb = b.ql[64 * h + l + 32 * (k & 1)];
        lb = static_cast<uint8_t>(lb | ((v & 15) << (k >= 2 ? 4 : 0)));
        b.qh[32 * h + l] = static_cast<uint8_t>(b.qh[32 * h + l] | ((v >> 4) << (2 * k)));
      }
    }
  }
  float y[256];
  dequantize_row(TensorType::Q6_K, &b, y, 256);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(y[i], 0.5f * sc[i / 16] * (q[i] - 32)) << i;
}

// ------------------------------------------------------------------ round trips

namespace {

struct RoundTrip {
  double max_err_over_amax;  // max |x - dequant(quant(x))| / amax of the block
  double rmse_over_sigma;
};

RoundTrip round_trip(TensorType t, const std::vector<float>& x, double sigma) {
  const size_t be = block_elems(t) == 1 ? 256 : block_elems(t);
  std::vector<uint8_t> q(x.size() / block_elems(t) * block_bytes(t));
  quantize_row(t, x.data(), q.data(), x.size());
  std::vector<float> y(x.size());
  dequantize_row(t, q.data(), y.data(), x.size());
  RoundTrip r{0, 0};
  double se = 0;
  for (size_t b = 0; b < x.size() / be; ++b) {
    double amax = 0;
    for (size_t i = 0; i < be; ++i) amax = std::max(amax, std::fabs(static_cast<double>(x[b * be + i])));
    for (size_t i = 0; i < be; ++i) {
      const double e = std::fabs(static_cast<double>(x[b * be + i]) - y[b * be + i]);
      se += e * e;
      if (amax > 0) r.max_err_over_amax = std::max(r.max_err_over_amax, e / amax);
    }
  }
  r.rmse_over_sigma = std::sqrt(se / static_cast<double>(x.size())) / sigma;
  return r;
}

}  // namespace

TEST(QuantRoundTrip, ErrorBoundsPerType) {
  const size_t n = 256 * 64;
  std::vector<float> x = gaussian(n, 42, 0.02f);
  // Heavy-tailed blocks too: a few large outliers, as real weights have.
  for (size_t i = 0; i < n; i += 97) x[i] *= 8.0f;
  struct Case {
    TensorType t;
    double max_rel;  // bound on max error / block amax (justification inline)
    double max_rmse;
  };
  // RMSE bounds (relative to sigma) are about 1.5x what this data measured
  // (F16 2.5e-4, BF16 2.1e-3, Q8_0 0.010, Q4_0 0.16, Q4_K 0.11, Q5_K 0.054,
  // Q6_K 0.030): they catch a broken quantizer, not a slightly different one.
  const Case cases[] = {
      {TensorType::F32, 0.0, 0.0},
      {TensorType::F16, 1.0 / 2048, 1e-3},  // half ulp of an 11-bit significand
      {TensorType::BF16, 1.0 / 256, 4e-3},  // half ulp of an 8-bit significand
      // half a step (amax/127/2) + fp16 rounding of d (127 * d * 2^-11 = amax/2048)
      {TensorType::Q8_0, 0.5 / 127 + 1.0 / 2048, 0.015},
      // one step of amax/8 at the clipped extreme + fp16 rounding of d
      {TensorType::Q4_0, 1.0 / 8 + 1.0 / 1024, 0.24},
      // measured 0.061 / 0.047 / 0.016 of amax; bounds are one full 4/5/6-bit
      // step of the super-block's range (2*amax / levels)
      {TensorType::Q4_K, 2.0 / 15, 0.16},
      {TensorType::Q5_K, 2.0 / 31, 0.08},
      {TensorType::Q6_K, 1.0 / 32, 0.045},
  };
  for (const auto& c : cases) {
    const RoundTrip r = round_trip(c.t, x, 0.02);
    EXPECT_LE(r.max_err_over_amax, c.max_rel) << static_cast<int>(c.t);
    EXPECT_LE(r.rmse_over_sigma, c.max_rmse) << static_cast<int>(c.t);
    if (c.t == TensorType::F32) {
      EXPECT_EQ(r.max_err_over_amax, 0.0);
    }
  }
}

TEST(QuantRoundTrip, KQuantsBeatSimpleFormats) {
  // Sanity on quantizer quality: more bits, less error.
  const std::vector<float> x = gaussian(256 * 32, 5);
  const double q4_0 = round_trip(TensorType::Q4_0, x, 1).rmse_over_sigma;
  const double q4_k = round_trip(TensorType::Q4_K, x, 1).rmse_over_sigma;
  const double q5_k = round_trip(TensorType::Q5_K, x, 1).rmse_over_sigma;
  const double q6_k = round_trip(TensorType::Q6_K, x, 1).rmse_over_sigma;
  const double q8_0 = round_trip(TensorType::Q8_0, x, 1).rmse_over_sigma;
  EXPECT_LT(q4_k, q4_0);
  EXPECT_LT(q5_k, q4_k);
  EXPECT_LT(q6_k, q5_k);
  EXPECT_LT(q8_0, q6_k);
}

TEST(QuantRoundTrip, ZeroAndConstantBlocks) {
  for (TensorType t : {TensorType::Q8_0, TensorType::Q4_0, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}) {
    std::vector<float> zeros(256, 0.0f), consts(256, -0.75f), pos(256, 0.3f);
    for (auto* v : {&zeros, &consts, &pos}) {
      std::vector<uint8_t> q(256 / block_elems(t) * block_bytes(t));
      quantize_row(t, v->data(), q.data(), 256);
      std::vector<float> y(256);
      dequantize_row(t, q.data(), y.data(), 256);
      for (size_t i = 0; i < 256; ++i) {
        ASSERT_TRUE(std::isfinite(y[i]));
        ASSERT_NEAR(y[i], (*v)[i], std::fabs((*v)[i]) * 0.02 + 1e-6) << static_cast<int>(t) << " " << i;
      }
    }
  }
}

TEST(QuantRoundTrip, ExtremeInputsStayDefined) {
  // NaN, inf, FLT_MAX and subnormals must not hit undefined float->int
  // conversions (the sanitizer build checks this); the output is still a
  // block of the right size that decodes.
  std::vector<float> x(256, 0.5f);
  x[0] = std::numeric_limits<float>::quiet_NaN();
  x[40] = std::numeric_limits<float>::infinity();
  x[80] = -std::numeric_limits<float>::max();
  x[120] = std::numeric_limits<float>::denorm_min();
  x[200] = std::numeric_limits<float>::max();
  std::vector<float> tiny(256, 1e-40f);  // amax/127 underflows, 1/d overflows
  for (TensorType t : {TensorType::Q8_0, TensorType::Q4_0, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}) {
    for (const auto* v : {&x, &tiny}) {
      std::vector<uint8_t> q(256 / block_elems(t) * block_bytes(t));
      quantize_row(t, v->data(), q.data(), 256);
      std::vector<float> y(256);
      dequantize_row(t, q.data(), y.data(), 256);
    }
  }
}

// ------------------------------------------------------------------ dot products

TEST(QuantDot, MatchesFloatReferencePerType) {
  const size_t n = 1024;
  const std::vector<float> w = gaussian(n, 11, 0.05f);
  const std::vector<float> x = gaussian(n, 12);
  for (TensorType t : {TensorType::F32, TensorType::F16, TensorType::BF16, TensorType::Q8_0, TensorType::Q4_0,
                       TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}) {
    std::vector<uint8_t> q(n / block_elems(t) * block_bytes(t));
    quantize_row(t, w.data(), q.data(), n);
    std::vector<float> dq(n);
    dequantize_row(t, q.data(), dq.data(), n);
    double exact_dq = 0, exact_w = 0, bound = 0;
    for (size_t i = 0; i < n; ++i) {
      exact_dq += static_cast<double>(dq[i]) * x[i];
      exact_w += static_cast<double>(w[i]) * x[i];
      bound += std::fabs(static_cast<double>(dq[i]) - w[i]) * std::fabs(x[i]);
    }
    const float got = dot_row_reference(t, q.data(), x.data(), n);
    // Against the dequantized row: only the final float rounding differs.
    EXPECT_NEAR(got, exact_dq, 1e-6 * std::fabs(exact_dq) + 1e-9) << static_cast<int>(t);
    // Against the original float weights: within the summed quantization error.
    EXPECT_LE(std::fabs(got - exact_w), bound + 1e-6) << static_cast<int>(t);
  }
}

TEST(QuantDot, PlainTypesAnyLength) {
  const std::vector<float> w = gaussian(300, 1), x = gaussian(300, 2);
  double ref = 0;
  for (size_t i = 0; i < 300; ++i) ref += static_cast<double>(w[i]) * x[i];
  EXPECT_FLOAT_EQ(dot_row_reference(TensorType::F32, w.data(), x.data(), 300), static_cast<float>(ref));
}

// ------------------------------------------------------------------ errors

TEST(QuantErrors, BadLengthAndType) {
  std::vector<float> x(64, 1.0f);
  std::vector<uint8_t> buf(1024);
  EXPECT_THROW(quantize_row(TensorType::Q8_0, x.data(), buf.data(), 33), Error);
  EXPECT_THROW(dequantize_row(TensorType::Q4_K, buf.data(), x.data(), 64), Error);
  EXPECT_THROW(dot_row_reference(TensorType::Q6_K, buf.data(), x.data(), 32), Error);
  EXPECT_THROW(dequantize_row(TensorType::Q8_1, buf.data(), x.data(), 32), Error);
  EXPECT_THROW(quantize_row(TensorType::Q2_K, x.data(), buf.data(), 256), Error);
  try {
    dequantize_row(TensorType::Q4_K, buf.data(), x.data(), 64);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("256"), std::string::npos) << e.what();
  }
  EXPECT_EQ(block_elems(TensorType::Q6_K), 256u);
  EXPECT_EQ(block_bytes(TensorType::Q5_K), 176u);
  EXPECT_FALSE(quant_supported(TensorType::Q8_1));
  EXPECT_TRUE(quant_supported(TensorType::Q4_1));  // dequantized for the float path
}

// ------------------------------------------------- dequantize-only formats

// Random blocks of Q4_1, Q5_0, Q5_1, Q2_K and Q3_K against ggml's format
// written per element (where each code, bit and scale of element e lives),
// a second formulation of the loops in dequant-inl.h.
TEST(DequantOnly, EveryElementFollowsTheFormat) {
  std::mt19937 rng(11);
  auto bytes = [&](uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(rng());
  };
  const uint16_t d_bits = fp32_to_fp16(0.75f), m_bits = fp32_to_fp16(-0.25f);
  const float d = fp16_to_fp32(d_bits), m = fp16_to_fp32(m_bits);
  for (int trial = 0; trial < 20; ++trial) {
    float y[256];
    {
      BlockQ4_1 b;
      bytes(b.qs, sizeof b.qs);
      b.d = d_bits, b.m = m_bits;
      dequantize_row(TensorType::Q4_1, &b, y, 32);
      for (int e = 0; e < 32; ++e) {
        const int q = e < 16 ? b.qs[e] & 15 : b.qs[e - 16] >> 4;
        ASSERT_NEAR(y[e], static_cast<float>(q) * d + m, 1e-4f) << "Q4_1 element " << e;
      }
    }
    {
      BlockQ5_0 b0;
      BlockQ5_1 b1;
      bytes(b0.qs, sizeof b0.qs);
      bytes(b0.qh, sizeof b0.qh);
      std::memcpy(b1.qs, b0.qs, sizeof b0.qs);
      std::memcpy(b1.qh, b0.qh, sizeof b0.qh);
      b0.d = b1.d = d_bits;
      b1.m = m_bits;
      float y1[32];
      dequantize_row(TensorType::Q5_0, &b0, y, 32);
      dequantize_row(TensorType::Q5_1, &b1, y1, 32);
      for (int e = 0; e < 32; ++e) {
        const int nib = e < 16 ? b0.qs[e] & 15 : b0.qs[e - 16] >> 4;
        const int bit = (b0.qh[e / 8] >> (e % 8)) & 1;
        ASSERT_NEAR(y[e], static_cast<float>((nib | bit << 4) - 16) * d, 1e-4f) << "Q5_0 element " << e;
        ASSERT_NEAR(y1[e], static_cast<float>(nib | bit << 4) * d + m, 1e-4f) << "Q5_1 element " << e;
      }
    }
    {
      BlockQ2_K b;
      bytes(b.scales, sizeof b.scales);
      bytes(b.qs, sizeof b.qs);
      b.d = d_bits, b.dmin = m_bits;
      dequantize_row(TensorType::Q2_K, &b, y, 256);
      for (int e = 0; e < 256; ++e) {
        const int n = e / 128, r = e % 128;
        const int q = (b.qs[32 * n + r % 32] >> (2 * (r / 32))) & 3;
        const uint8_t sc = b.scales[e / 16];
        ASSERT_NEAR(y[e], d * static_cast<float>(sc & 15) * static_cast<float>(q) - m * static_cast<float>(sc >> 4), 1e-4f)
            << "Q2_K element " << e;
      }
    }
    {
      BlockQ3_K b;
      bytes(b.hmask, sizeof b.hmask);
      bytes(b.qs, sizeof b.qs);
      bytes(b.scales, sizeof b.scales);
      b.d = d_bits;
      dequantize_row(TensorType::Q3_K, &b, y, 256);
      for (int e = 0; e < 256; ++e) {
        const int n = e / 128, r = e % 128, s = e / 16;
        const int q = (b.qs[32 * n + r % 32] >> (2 * (r / 32))) & 3;
        const bool high = (b.hmask[r % 32] >> (4 * n + r / 32)) & 1;
        // 6-bit scale s: 4 low bits in byte s (s < 8) or the high nibble of byte s-8,
        // 2 high bits in byte 8 + s%4 at bit 2*(s/4).
        const int low = s < 8 ? b.scales[s] & 15 : b.scales[s - 8] >> 4;
        const int sc = (low | ((b.scales[8 + s % 4] >> (2 * (s / 4))) & 3) << 4) - 32;
        ASSERT_NEAR(y[e], d * static_cast<float>(sc) * static_cast<float>(q - (high ? 0 : 4)), 1e-4f) << "Q3_K element " << e;
      }
    }
  }
}
