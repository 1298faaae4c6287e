#include "kernels/quant.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <string>

#include "common/error.h"

namespace specsteer::kernels {

using gguf::TensorType;

// ---------------------------------------------------------------- fp16/bf16

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  const uint32_t mant = h & 0x3FFu;
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24 is exact in float.
    const float v = std::ldexp(static_cast<float>(mant), -24);
    return (sign != 0u) ? -v : v;
  }
  uint32_t bits;
  if (exp == 31) {
    bits = sign | 0x7F800000u | (mant << 13);  // inf, or NaN with its payload
  } else {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

uint16_t fp32_to_fp16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) {
    // NaN: keep the top payload bits and force the quiet bit so it stays NaN.
    return static_cast<uint16_t>(sign | 0x7E00u | ((ax >> 13) & 0x3FFu));
  }
  if (ax >= 0x47800000u) return static_cast<uint16_t>(sign | 0x7C00u);  // >= 2^16: inf
  if (ax < 0x38800000u) {
    // Below the smallest normal half (2^-14): result is a half subnormal
    // q * 2^-24 with q = round_even(|f| / 2^-24).
    const uint32_t e = ax >> 23;
    if (e < 102) return sign;  // |f| < 2^-25: rounds to zero
    const uint32_t m = (ax & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126 - e;  // 14..24
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;  // may carry into the smallest normal
    return static_cast<uint16_t>(sign | q);
  }
  // Normal range: rebias the exponent, round the 13 dropped mantissa bits; a
  // carry propagates into the exponent (and up to inf at 65520).
  uint32_t h = (ax >> 13) - (112u << 10);
  const uint32_t rem = ax & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

float bf16_to_fp32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

uint16_t fp32_to_bf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  return static_cast<uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

// ---------------------------------------------------------------- geometry

namespace {

std::string type_label(TensorType t) {
  switch (t) {
    case TensorType::F32: return "F32";
    case TensorType::F16: return "F16";
    case TensorType::BF16: return "BF16";
    case TensorType::Q8_0: return "Q8_0";
    case TensorType::Q4_0: return "Q4_0";
    case TensorType::Q4_K: return "Q4_K";
    case TensorType::Q5_K: return "Q5_K";
    case TensorType::Q6_K: return "Q6_K";
    case TensorType::Q4_1: return "Q4_1";
    case TensorType::Q5_0: return "Q5_0";
    case TensorType::Q5_1: return "Q5_1";
    case TensorType::Q2_K: return "Q2_K";
    case TensorType::Q3_K: return "Q3_K";
    default: return "type id " + std::to_string(static_cast<uint32_t>(t));
  }
}

[[noreturn]] void unsupported(const char* fn, TensorType t) {
  throw Error(std::string(fn) + ": tensor type " + type_label(t) + " is not supported");
}

void check_n(const char* fn, TensorType t, size_t n) {
  const size_t be = block_elems(t);
  if (n % be != 0) {
    throw Error(std::string(fn) + ": n=" + std::to_string(n) + " is not a multiple of the " + type_label(t) +
                " block size " + std::to_string(be));
  }
}

// Float -> int that saturates instead of overflowing (NaN -> 0), so extreme
// or non-finite inputs give garbage blocks rather than undefined behaviour.
inline int to_int_sat(float r) {
  if (std::isnan(r)) return 0;
  return static_cast<int>(std::clamp(r, -1e9f, 1e9f));
}
// Round half away from zero, like C roundf (what ggml and gguf-py use).
inline int nearest_int(float x) { return to_int_sat(std::round(x)); }

template <typename B>
B load_block(const uint8_t* p) {
  B b;
  std::memcpy(&b, p, sizeof(B));
  return b;
}

}  // namespace

bool quant_supported(TensorType t) {
  switch (t) {
    case TensorType::F32:
    case TensorType::F16:
    case TensorType::BF16:
    case TensorType::Q8_0:
    case TensorType::Q4_0:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
    case TensorType::Q4_1:
    case TensorType::Q5_0:
    case TensorType::Q5_1:
    case TensorType::Q2_K:
    case TensorType::Q3_K: return true;
    default: return false;
  }
}

size_t block_elems(TensorType t) {
  switch (t) {
    case TensorType::F32:
    case TensorType::F16:
    case TensorType::BF16: return 1;
    case TensorType::Q8_0: return kQK8_0;
    case TensorType::Q4_0:
    case TensorType::Q4_1:
    case TensorType::Q5_0:
    case TensorType::Q5_1: return kQK4_0;
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
    case TensorType::Q2_K:
    case TensorType::Q3_K: return kQK_K;
    default: unsupported("block_elems", t);
  }
}

size_t block_bytes(TensorType t) {
  switch (t) {
    case TensorType::F32: return 4;
    case TensorType::F16:
    case TensorType::BF16: return 2;
    case TensorType::Q8_0: return sizeof(BlockQ8_0);
    case TensorType::Q4_0: return sizeof(BlockQ4_0);
    case TensorType::Q4_K: return sizeof(BlockQ4_K);
    case TensorType::Q5_K: return sizeof(BlockQ5_K);
    case TensorType::Q6_K: return sizeof(BlockQ6_K);
    case TensorType::Q4_1: return sizeof(BlockQ4_1);
    case TensorType::Q5_0: return sizeof(BlockQ5_0);
    case TensorType::Q5_1: return sizeof(BlockQ5_1);
    case TensorType::Q2_K: return sizeof(BlockQ2_K);
    case TensorType::Q3_K: return sizeof(BlockQ3_K);
    default: unsupported("block_bytes", t);
  }
}

// ---------------------------------------------------------------- dequantize

namespace {
#include "kernels/dequant-inl.h"
}  // namespace

void dequantize_row(TensorType t, const void* src, float* dst, size_t n) {
  if (!quant_supported(t)) unsupported("dequantize_row", t);
  check_n("dequantize_row", t, n);
  const auto* p = static_cast<const uint8_t*>(src);
  switch (t) {
    case TensorType::F32: std::memcpy(dst, p, n * sizeof(float)); return;
    case TensorType::F16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        dst[i] = fp16_to_fp32(h);
      }
      return;
    case TensorType::BF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        dst[i] = bf16_to_fp32(h);
      }
      return;
    default: break;
  }
  if (!DequantizeBlocks(t, p, dst, n)) unsupported("dequantize_row", t);
}

// ---------------------------------------------------------------- quantize

namespace {

BlockQ8_0 quant_q8_0(const float* x) {
  // ggml / gguf-py reference: d = amax/127 in float, q = roundf(x * (1/d)).
  float amax = 0.0f;
  for (size_t i = 0; i < kQK8_0; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  BlockQ8_0 b;
  b.d = fp32_to_fp16(d);
  for (size_t i = 0; i < kQK8_0; ++i) b.qs[i] = static_cast<int8_t>(std::clamp(nearest_int(x[i] * id), -127, 127));
  return b;
}

BlockQ4_0 quant_q4_0(const float* x) {
  // ggml reference: d = (signed value of largest magnitude) / -8, so that value
  // maps exactly to q = 0 and the other extreme gets the unused 16th level.
  float amax = 0.0f, maxv = 0.0f;
  for (size_t i = 0; i < kQK4_0; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      maxv = x[i];
    }
  }
  const float d = maxv / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  BlockQ4_0 b;
  b.d = fp32_to_fp16(d);
  auto q = [&](float v) { return static_cast<uint8_t>(std::clamp(to_int_sat(std::trunc(v * id + 8.5f)), 0, 15)); };
  for (size_t j = 0; j < kQK4_0 / 2; ++j) {
    b.qs[j] = static_cast<uint8_t>(q(x[j]) | (q(x[j + kQK4_0 / 2]) << 4));
  }
  return b;
}

// Affine fit for one sub-block: value ~= scale*q - mn with q in 0..nmax,
// scale >= 0, mn >= 0. Tries a range of initial scales, refits scale/min by
// least squares for each assignment and keeps the lowest squared error.
void fit_affine(const float* x, int n, int nmax, float* scale, float* mn) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  lo = std::min(lo, 0.0f);  // the format's min is subtracted, so offsets are <= 0
  if (hi <= lo) {
    *scale = 0.0f;
    *mn = -lo;
    return;
  }
  float best_err = INFINITY, best_s = (hi - lo) / nmax, best_m = -lo;
  for (int step = -10; step <= 10; ++step) {
    const float iscale = (static_cast<float>(nmax) + 0.1f * static_cast<float>(step)) / (hi - lo);
    double sl = 0, sl2 = 0, sx = 0, sxl = 0;
    int q[32];
    for (int i = 0; i < n; ++i) {
      q[i] = std::clamp(nearest_int(iscale * (x[i] - lo)), 0, nmax);
      sl += q[i];
      sl2 += static_cast<double>(q[i]) * q[i];
      sx += x[i];
      sxl += static_cast<double>(x[i]) * q[i];
    }
    // Least squares for x ~= s*q + b.
    const double det = n * sl2 - sl * sl;
    double s, b;
    if (det > 0) {
      s = (n * sxl - sl * sx) / det;
      b = (sl2 * sx - sl * sxl) / det;
    } else {
      s = (hi - lo) / nmax;
      b = lo;
    }
    if (b > 0) {  // offset must stay <= 0: refit the scale alone
      b = 0;
      s = sl2 > 0 ? sxl / sl2 : 0;
    }
    if (s < 0) s = 0;
    double err = 0;
    for (int i = 0; i < n; ++i) {
      const double e = s * q[i] + b - x[i];
      err += e * e;
    }
    if (err < best_err) {
      best_err = static_cast<float>(err);
      best_s = static_cast<float>(s);
      best_m = static_cast<float>(-b);
    }
  }
  *scale = best_s;
  *mn = best_m;
}

// Shared by Q4_K (nmax 15) and Q5_K (nmax 31): 8 sub-block scales/mins,
// quantized to 6 bits against fp16 super-scales; returns the final q values.
void quant_kx(const float* x, int nmax, uint16_t* d_out, uint16_t* dmin_out, uint8_t* scales, uint8_t* q) {
  float sc[8], mn[8];
  float max_sc = 0, max_mn = 0;
  for (int s = 0; s < 8; ++s) {
    fit_affine(x + 32 * s, 32, nmax, &sc[s], &mn[s]);
    max_sc = std::max(max_sc, sc[s]);
    max_mn = std::max(max_mn, mn[s]);
  }
  const float inv_sc = max_sc > 0 ? 63.0f / max_sc : 0.0f;
  const float inv_mn = max_mn > 0 ? 63.0f / max_mn : 0.0f;
  uint8_t ls[8], lm[8];
  for (int s = 0; s < 8; ++s) {
    ls[s] = static_cast<uint8_t>(std::clamp(nearest_int(inv_sc * sc[s]), 0, 63));
    lm[s] = static_cast<uint8_t>(std::clamp(nearest_int(inv_mn * mn[s]), 0, 63));
  }
  *d_out = fp32_to_fp16(max_sc / 63.0f);
  *dmin_out = fp32_to_fp16(max_mn / 63.0f);
  std::memset(scales, 0, kKScaleSize);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      scales[j] = ls[j];
      scales[j + 4] = lm[j];
    } else {
      scales[j + 4] = static_cast<uint8_t>((ls[j] & 0x0F) | ((lm[j] & 0x0F) << 4));
      scales[j - 4] = static_cast<uint8_t>(scales[j - 4] | ((ls[j] >> 4) << 6));
      scales[j] = static_cast<uint8_t>(scales[j] | ((lm[j] >> 4) << 6));
    }
  }
  // Requantize against the scales the decoder will actually see.
  const float d = fp16_to_fp32(*d_out), dmin = fp16_to_fp32(*dmin_out);
  for (int s = 0; s < 8; ++s) {
    uint8_t scq, mq;
    get_scale_min_k4(s, scales, &scq, &mq);
    const float ds = d * scq, dm = dmin * mq;
    for (int i = 0; i < 32; ++i) {
      const int v = ds > 0 ? nearest_int((x[32 * s + i] + dm) / ds) : 0;
      q[32 * s + i] = static_cast<uint8_t>(std::clamp(v, 0, nmax));
    }
  }
}

BlockQ4_K quant_q4_k(const float* x) {
  BlockQ4_K b;
  uint8_t q[kQK_K];
  quant_kx(x, 15, &b.d, &b.dmin, b.scales, q);
  for (int g = 0; g < 4; ++g) {
    for (int l = 0; l < 32; ++l) {
      b.qs[32 * g + l] = static_cast<uint8_t>(q[64 * g + l] | (q[64 * g + 32 + l] << 4));
    }
  }
  return b;
}

BlockQ5_K quant_q5_k(const float* x) {
  BlockQ5_K b;
  uint8_t q[kQK_K];
  quant_kx(x, 31, &b.d, &b.dmin, b.scales, q);
  std::memset(b.qh, 0, sizeof(b.qh));
  for (int g = 0; g < 4; ++g) {
    for (int l = 0; l < 32; ++l) {
      const uint8_t lo = q[64 * g + l], hi = q[64 * g + 32 + l];
      b.qs[32 * g + l] = static_cast<uint8_t>((lo & 0x0F) | ((hi & 0x0F) << 4));
      if (lo & 0x10) b.qh[l] = static_cast<uint8_t>(b.qh[l] | (1u << (2 * g)));
      if (hi & 0x10) b.qh[l] = static_cast<uint8_t>(b.qh[l] | (2u << (2 * g)));
    }
  }
  return b;
}

// Symmetric fit for one Q6_K sub-block of 16: value ~= scale * l, l in -32..31.
// Returns the (signed) scale maximizing sum(x*l)^2 / sum(l^2) over a few
// candidate inverse scales, i.e. minimizing the least-squares error.
float fit_symmetric(const float* x, int n) {
  float amax = 0, maxv = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      maxv = x[i];
    }
  }
  if (amax == 0) return 0;
  float best_scale = 0;
  double best_q = -1;
  for (int step = -9; step <= 9; ++step) {
    const float iscale = -(32.0f + 0.1f * static_cast<float>(step)) / maxv;
    double sxl = 0, sl2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * x[i]), -32, 31);
      sxl += static_cast<double>(x[i]) * l;
      sl2 += static_cast<double>(l) * l;
    }
    if (sl2 > 0 && sxl * sxl / sl2 > best_q) {
      best_q = sxl * sxl / sl2;
      best_scale = static_cast<float>(sxl / sl2);
    }
  }
  return best_scale;
}

BlockQ6_K quant_q6_k(const float* x) {
  BlockQ6_K b;
  float sc[16];
  float amax = 0, maxv = 0;
  for (int s = 0; s < 16; ++s) {
    sc[s] = fit_symmetric(x + 16 * s, 16);
    if (std::fabs(sc[s]) > amax) {
      amax = std::fabs(sc[s]);
      maxv = sc[s];
    }
  }
  uint8_t L[kQK_K];
  if (amax == 0) {
    b.d = 0;
    std::memset(b.scales, 0, sizeof(b.scales));
    std::memset(L, 32, sizeof(L));
  } else {
    const float iscale = -128.0f / maxv;
    b.d = fp32_to_fp16(1.0f / iscale);
    for (int s = 0; s < 16; ++s) b.scales[s] = static_cast<int8_t>(std::clamp(nearest_int(iscale * sc[s]), -128, 127));
    const float d = fp16_to_fp32(b.d);
    for (int s = 0; s < 16; ++s) {
      const float ds = d * b.scales[s];
      for (int i = 0; i < 16; ++i) {
        const int l = ds != 0 ? std::clamp(nearest_int(x[16 * s + i] / ds), -32, 31) : 0;
        L[16 * s + i] = static_cast<uint8_t>(l + 32);
      }
    }
  }
  for (int n = 0; n < 2; ++n) {
    for (int l = 0; l < 32; ++l) {
      const uint8_t* Ln = L + 128 * n;
      const uint8_t q1 = Ln[l], q2 = Ln[l + 32], q3 = Ln[l + 64], q4 = Ln[l + 96];
      b.ql[64 * n + l] = static_cast<uint8_t>((q1 & 0x0F) | ((q3 & 0x0F) << 4));
      b.ql[64 * n + l + 32] = static_cast<uint8_t>((q2 & 0x0F) | ((q4 & 0x0F) << 4));
      b.qh[32 * n + l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
    }
  }
  return b;
}

template <typename B>
void store_block(uint8_t* p, const B& b) {
  std::memcpy(p, &b, sizeof(B));
}

}  // namespace

void quantize_row(TensorType t, const float* src, void* dst, size_t n) {
  if (!quant_supported(t)) unsupported("quantize_row", t);
  check_n("quantize_row", t, n);
  auto* p = static_cast<uint8_t*>(dst);
  switch (t) {
    case TensorType::F32: std::memcpy(p, src, n * sizeof(float)); return;
    case TensorType::F16:
    case TensorType::BF16:
      for (size_t i = 0; i < n; ++i) {
        const uint16_t h = t == TensorType::F16 ? fp32_to_fp16(src[i]) : fp32_to_bf16(src[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
      return;
    default: break;
  }
  const size_t be = block_elems(t), bb = block_bytes(t);
  for (size_t b = 0; b < n / be; ++b, p += bb, src += be) {
    switch (t) {
      case TensorType::Q8_0: store_block(p, quant_q8_0(src)); break;
      case TensorType::Q4_0: store_block(p, quant_q4_0(src)); break;
      case TensorType::Q4_K: store_block(p, quant_q4_k(src)); break;
      case TensorType::Q5_K: store_block(p, quant_q5_k(src)); break;
      case TensorType::Q6_K: store_block(p, quant_q6_k(src)); break;
      default: unsupported("quantize_row", t);
    }
  }
}

float dot_row_reference(TensorType t, const void* row, const float* x, size_t n) {
  if (!quant_supported(t)) unsupported("dot_row_reference", t);
  check_n("dot_row_reference", t, n);
  const size_t be = block_elems(t) == 1 ? 256 : block_elems(t);  // chunk size for the temp buffer
  const size_t bb = block_bytes(t) * (block_elems(t) == 1 ? 256 : 1);
  float tmp[kQK_K];
  double acc = 0;
  const auto* p = static_cast<const uint8_t*>(row);
  size_t i = 0;
  for (; i + be <= n; i += be, p += bb) {
    dequantize_row(t, p, tmp, be);
    for (size_t j = 0; j < be; ++j) acc += static_cast<double>(tmp[j]) * x[i + j];
  }
  if (i < n) {  // plain float types: tail shorter than one chunk
    dequantize_row(t, p, tmp, n - i);
    for (size_t j = 0; j < n - i; ++j) acc += static_cast<double>(tmp[j]) * x[i + j];
  }
  return static_cast<float>(acc);
}

}  // namespace specsteer::kernels
