// Highway implementations, compiled once per target by foreach_target.h.
#include "kernels/simd.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/simd.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"
#include "kernels/quant.h"

HWY_BEFORE_NAMESPACE();
namespace specsteer::kernels::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// The block dequantizers, compiled for this target (see dequant-inl.h).
#include "kernels/dequant-inl.h"

template <class D, class V>
HWY_INLINE float SumLanes(D d, V v) {
  return hn::GetLane(hn::SumOfLanes(d, v));
}

float DotF32(const float* a, const float* b, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  auto s0 = hn::Zero(d), s1 = hn::Zero(d);
  size_t i = 0;
  for (; i + 2 * L <= n; i += 2 * L) {
    s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
    s1 = hn::MulAdd(hn::LoadU(d, a + i + L), hn::LoadU(d, b + i + L), s1);
  }
  for (; i + L <= n; i += L) s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
  float s = SumLanes(d, hn::Add(s0, s1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Attention over an F16 KV cache: q . k and acc += p * v with the cache row
// widened to float in registers.
float DotF16(const float* a, const uint16_t* b, size_t n) {
  const hn::ScalableTag<float> d;
  const hn::Rebind<hwy::float16_t, decltype(d)> dh;
  const auto* bh = reinterpret_cast<const hwy::float16_t*>(b);
  const size_t L = hn::Lanes(d);
  auto s0 = hn::Zero(d);
  size_t i = 0;
  for (; i + L <= n; i += L) s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::PromoteTo(d, hn::LoadU(dh, bh + i)), s0);
  float s = SumLanes(d, s0);
  for (; i < n; ++i) s += a[i] * fp16_to_fp32(b[i]);
  return s;
}

void AxpyF16(float p, const uint16_t* v, float* acc, size_t n) {
  const hn::ScalableTag<float> d;
  const hn::Rebind<hwy::float16_t, decltype(d)> dh;
  const auto* vh = reinterpret_cast<const hwy::float16_t*>(v);
  const size_t L = hn::Lanes(d);
  const auto pv = hn::Set(d, p);
  size_t i = 0;
  for (; i + L <= n; i += L)
    hn::StoreU(hn::MulAdd(pv, hn::PromoteTo(d, hn::LoadU(dh, vh + i)), hn::LoadU(d, acc + i)), d, acc + i);
  for (; i < n; ++i) acc[i] += p * fp16_to_fp32(v[i]);
}

void AxpyF32(float p, const float* v, float* acc, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  const auto pv = hn::Set(d, p);
  size_t i = 0;
  for (; i + L <= n; i += L) hn::StoreU(hn::MulAdd(pv, hn::LoadU(d, v + i), hn::LoadU(d, acc + i)), d, acc + i);
  for (; i < n; ++i) acc[i] += p * v[i];
}

// Loads L cache values from an F32 or F16 row as floats.
template <class D>
HWY_INLINE hn::Vec<D> LoadKv(D d, const float* p) {
  return hn::LoadU(d, p);
}
template <class D>
HWY_INLINE hn::Vec<D> LoadKv(D d, const uint16_t* p) {
  const hn::Rebind<hwy::float16_t, D> dh;
  return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
}
HWY_INLINE float KvScalar(const float* p) { return *p; }
HWY_INLINE float KvScalar(const uint16_t* p) { return fp16_to_fp32(*p); }

// q . k_t for positions [t, t + P): the query chunk is loaded once for P
// keys, and the P sums (and their horizontal reductions) are independent,
// so they overlap instead of forming one latency chain per position.
template <int P, typename KV>
HWY_INLINE void KeyScores(const float* q, const KV* k, size_t stride, int t, size_t hd, float scale, float* scores) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  hn::Vec<decltype(d)> acc[P];
  for (int p = 0; p < P; ++p) acc[p] = hn::Zero(d);
  size_t c = 0;
  for (; c + L <= hd; c += L) {
    const auto qv = hn::LoadU(d, q + c);
    for (int p = 0; p < P; ++p) acc[p] = hn::MulAdd(qv, LoadKv(d, k + static_cast<size_t>(t + p) * stride + c), acc[p]);
  }
  for (int p = 0; p < P; ++p) {
    float s = SumLanes(d, acc[p]);
    for (size_t r = c; r < hd; ++r) s += q[r] * KvScalar(k + static_cast<size_t>(t + p) * stride + r);
    scores[t + p] = s * scale;
  }
}

// out[c0 .. c0 + V*L) = sum_t p_t * v_t over all len positions, the V output
// vectors held in registers while the cache rows stream past.
template <int V, typename KV>
HWY_INLINE void WeightedValues(const float* p, const KV* v, size_t stride, int len, size_t c0, float* out) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  hn::Vec<decltype(d)> acc[V];
  for (int j = 0; j < V; ++j) acc[j] = hn::Zero(d);
  for (int t = 0; t < len; ++t) {
    const auto pv = hn::Set(d, p[t]);
    const KV* row = v + static_cast<size_t>(t) * stride + c0;
    for (int j = 0; j < V; ++j) acc[j] = hn::MulAdd(pv, LoadKv(d, row + j * L), acc[j]);
  }
  for (int j = 0; j < V; ++j) hn::StoreU(acc[j], d, out + c0 + j * L);
}

// One query head against len cached positions (rows `stride` elements apart):
// out = softmax(scale * q.K) . V, scores as scratch (len floats).
template <typename KV>
void AttendHeadT(const float* q, const KV* k, const KV* v, size_t stride, int len, int hd, float scale,
                 float* scores, float* out) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d), dim = static_cast<size_t>(hd);
  int t = 0;
  for (; t + 8 <= len; t += 8) KeyScores<8>(q, k, stride, t, dim, scale, scores);
  for (; t + 4 <= len; t += 4) KeyScores<4>(q, k, stride, t, dim, scale, scores);
  for (; t < len; ++t) KeyScores<1>(q, k, stride, t, dim, scale, scores);
  // Softmax: max, exp (vectorized), sum in double, normalized probabilities.
  auto vmax = hn::Set(d, -INFINITY);
  size_t i = 0;
  const size_t n = static_cast<size_t>(len);
  for (; i + L <= n; i += L) vmax = hn::Max(vmax, hn::LoadU(d, scores + i));
  float mx = hn::GetLane(hn::MaxOfLanes(d, vmax));
  for (; i < n; ++i) mx = std::max(mx, scores[i]);
  const auto vmx = hn::Set(d, mx);
  for (i = 0; i + L <= n; i += L) hn::StoreU(hn::Exp(d, hn::Sub(hn::LoadU(d, scores + i), vmx)), d, scores + i);
  for (; i < n; ++i) scores[i] = std::exp(scores[i] - mx);
  double sum = 0;
  for (i = 0; i < n; ++i) sum += scores[i];
  const float inv = static_cast<float>(1.0 / sum);
  for (i = 0; i < n; ++i) scores[i] *= inv;
  size_t c = 0;
  // 8 independent FMA chains keep both FMA pipes busy (4 left them waiting
  // on latency).
  for (; c + 8 * L <= dim; c += 8 * L) WeightedValues<8>(scores, v, stride, len, c, out);
  for (; c + 4 * L <= dim; c += 4 * L) WeightedValues<4>(scores, v, stride, len, c, out);
  for (; c + L <= dim; c += L) WeightedValues<1>(scores, v, stride, len, c, out);
  for (; c < dim; ++c) {
    float s = 0;
    for (int u = 0; u < len; ++u) s += scores[u] * KvScalar(v + static_cast<size_t>(u) * stride + c);
    out[c] = s;
  }
}

void AttendHeadF32(const float* q, const float* k, const float* v, size_t stride, int len, int hd, float scale,
                   float* scores, float* out) {
  AttendHeadT(q, k, v, stride, len, hd, scale, scores, out);
}
void AttendHeadF16(const float* q, const uint16_t* k, const uint16_t* v, size_t stride, int len, int hd, float scale,
                   float* scores, float* out) {
  AttendHeadT(q, k, v, stride, len, hd, scale, scores, out);
}

// RMS norm with the sum of squares in double (as ggml does), vectorized:
// float x float is exact in double, so only the summation order differs from
// a scalar loop.
void RmsNorm(const float* x, const float* w, float* out, size_t n, float eps) {
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> dh;
  const size_t L = hn::Lanes(dd);
  auto s0 = hn::Zero(dd), s1 = hn::Zero(dd);
  size_t i = 0;
  for (; i + 2 * L <= n; i += 2 * L) {
    const auto a = hn::PromoteTo(dd, hn::LoadU(dh, x + i));
    const auto b = hn::PromoteTo(dd, hn::LoadU(dh, x + i + L));
    s0 = hn::MulAdd(a, a, s0);
    s1 = hn::MulAdd(b, b, s1);
  }
  double ss = hn::GetLane(hn::SumOfLanes(dd, hn::Add(s0, s1)));
  for (; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float scale = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + eps);
  const hn::ScalableTag<float> df;
  const size_t Lf = hn::Lanes(df);
  const auto vs = hn::Set(df, scale);
  size_t j = 0;
  for (; j + Lf <= n; j += Lf) hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(df, x + j), vs), hn::LoadU(df, w + j)), df, out + j);
  for (; j < n; ++j) out[j] = x[j] * scale * w[j];
}

// gate[i] = silu(gate[i]) * up[i]. exp(-x) is clamped at e^88, where silu(x)
// is already -0 to float precision (and Highway's Exp is valid up to 104).
void SiluMul(float* gate, const float* up, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  const auto one = hn::Set(d, 1.0f), cap = hn::Set(d, 88.0f);
  size_t i = 0;
  for (; i + L <= n; i += L) {
    const auto x = hn::LoadU(d, gate + i);
    const auto e = hn::Exp(d, hn::Min(hn::Neg(x), cap));
    hn::StoreU(hn::Mul(hn::Div(x, hn::Add(one, e)), hn::LoadU(d, up + i)), d, gate + i);
  }
  for (; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(std::min(-gate[i], 88.0f))) * up[i];
}

// Loads L weights starting at column c as floats, whatever the storage type.
template <gguf::TensorType T, class D>
HWY_INLINE hn::Vec<D> LoadWeights(D d, const uint8_t* row, size_t c) {
  if constexpr (T == gguf::TensorType::F32) {
    return hn::LoadU(d, reinterpret_cast<const float*>(row) + c);
  } else if constexpr (T == gguf::TensorType::F16) {
    const hn::Rebind<hwy::float16_t, D> dh;
    return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(row) + c));
  } else {
    const hn::Rebind<hwy::bfloat16_t, D> db;
    return hn::PromoteTo(d, hn::LoadU(db, reinterpret_cast<const hwy::bfloat16_t*>(row) + c));
  }
}

template <gguf::TensorType T>
HWY_INLINE float ScalarWeight(const uint8_t* row, size_t c) {
  if constexpr (T == gguf::TensorType::F32) {
    return reinterpret_cast<const float*>(row)[c];
  } else {
    uint16_t bits;
    __builtin_memcpy(&bits, row + 2 * c, 2);
    return T == gguf::TensorType::F16 ? fp16_to_fp32(bits) : bf16_to_fp32(bits);
  }
}

// Rows are processed in tiles of kRowTile: each group of 4 positions is
// reused by every row of the tile from L1, and the tile's weights by every
// group, so large batches stay compute-bound instead of streaming the whole
// activation block through the cache once per row.
constexpr int64_t kRowTile = 8;

// Up to 4 positions against one row: the row streams from memory once.
template <gguf::TensorType T, int P>
HWY_INLINE void FloatRowBlock(const uint8_t* row, const float* x, int64_t cols, float* out) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d), n = static_cast<size_t>(cols);
  hn::Vec<decltype(d)> acc[P];
  for (int p = 0; p < P; ++p) acc[p] = hn::Zero(d);
  size_t c = 0;
  for (; c + L <= n; c += L) {
    const auto w = LoadWeights<T>(d, row, c);
    for (int p = 0; p < P; ++p) acc[p] = hn::MulAdd(w, hn::LoadU(d, x + p * cols + c), acc[p]);
  }
  for (int p = 0; p < P; ++p) {
    float s = SumLanes(d, acc[p]);
    for (size_t k = c; k < n; ++k) s += ScalarWeight<T>(row, k) * x[p * cols + k];
    out[p] = s;
  }
}

// The tile walk shared by every row kernel: block(row, i, P, out) computes
// positions i..i+P-1 of one row (P = 4, then 1 for the remainder).
template <class Block>
HWY_INLINE void TiledRows(const Matrix& w, int64_t n, float* y, int64_t r0, int64_t r1, const Block& block) {
  float tmp[4];
  for (int64_t t0 = r0; t0 < r1; t0 += kRowTile) {
    const int64_t t1 = std::min(r1, t0 + kRowTile);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
      for (int64_t r = t0; r < t1; ++r) {
        block(r, i, 4, tmp);
        for (int p = 0; p < 4; ++p) y[(i + p) * w.rows + r] = tmp[p];
      }
    for (; i < n; ++i)
      for (int64_t r = t0; r < t1; ++r) {
        block(r, i, 1, tmp);
        y[i * w.rows + r] = tmp[0];
      }
  }
}

template <gguf::TensorType T>
void FloatRows(const Matrix& w, const float* x, int64_t n, float* y, int64_t r0, int64_t r1) {
  TiledRows(w, n, y, r0, r1, [&](int64_t r, int64_t i, int P, float* out) {
    if (P == 4)
      FloatRowBlock<T, 4>(w.row(r), x + i * w.cols, w.cols, out);
    else
      FloatRowBlock<T, 1>(w.row(r), x + i * w.cols, w.cols, out);
  });
}

void RowsFloat(const Matrix& w, const float* x, int64_t n, float* y, int64_t r0, int64_t r1) {
  switch (w.type) {
    case gguf::TensorType::F16: return FloatRows<gguf::TensorType::F16>(w, x, n, y, r0, r1);
    case gguf::TensorType::BF16: return FloatRows<gguf::TensorType::BF16>(w, x, n, y, r0, r1);
    default: return FloatRows<gguf::TensorType::F32>(w, x, n, y, r0, r1);
  }
}

void QuantizeActsQ8(const float* x, int64_t n, int64_t cols, QuantizedActs& out) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<int32_t, decltype(df)> di;
  const size_t L = hn::Lanes(df);
  const int64_t nb = cols / 32;
  const bool simd = L <= 32 && 32 % L == 0;
  HWY_ALIGN int32_t q[32];
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t b = 0; b < nb; ++b) {
      const float* xb = x + i * cols + b * 32;
      float amax = 0;
      if (simd) {
        auto m = hn::Zero(df);
        for (size_t k = 0; k < 32; k += L) m = hn::Max(m, hn::Abs(hn::LoadU(df, xb + k)));
        amax = hn::GetLane(hn::MaxOfLanes(df, m));
      } else {
        for (int k = 0; k < 32; ++k) amax = std::max(amax, std::fabs(xb[k]));
      }
      const float dd = amax / 127.0f;
      const float id = dd != 0.0f ? 1.0f / dd : 0.0f;
      const float d_rounded = fp16_to_fp32(fp32_to_fp16(dd));
      if (simd) {
        const auto vid = hn::Set(df, id);
        // NearestInt rounds half to even, as llama.cpp's x86 quantizer does.
        for (size_t k = 0; k < 32; k += L) hn::Store(hn::NearestInt(hn::Mul(hn::LoadU(df, xb + k), vid)), di, q + k);
      } else {
        for (int k = 0; k < 32; ++k) q[k] = static_cast<int32_t>(std::nearbyint(xb[k] * id));
      }
      if (out.q) {
        int16_t* qb = out.q + i * cols + b * 32;
        for (int k = 0; k < 32; ++k) qb[k] = static_cast<int16_t>(q[k]);
        out.d[i * nb + b] = d_rounded;
      }
      if (out.blocks) {
        ActBlockQ8& blk = out.blocks[b * out.block_stride + i];
        int32_t sum = 0, sum_lo = 0;
        for (int k = 0; k < 32; ++k) {
          blk.q[k] = static_cast<int8_t>(q[k]);
          sum += q[k];
          if (k == 15) sum_lo = sum;
        }
        blk.d = d_rounded;
        blk.offset_q8 = -128 * sum;
        blk.offset_q4 = -8 * sum;
        blk.sum_lo = sum_lo;
      }
    }
  }
}

// Integer dot products of one quantized weight row with up to 4 positions.
// Widened int16 weights x int16 activations -> pairwise int32 sums (madd),
// scaled per block by d_w * d_x into float accumulators.
template <bool kQ4, int P>
HWY_INLINE void QuantRowBlock(const uint8_t* row, const QuantizedActs& x, int64_t pos0, int64_t nb, float* out,
                              const float* f16) {
  const hn::CappedTag<int16_t, kQ4 ? 16 : 32> d16;
  const hn::Repartition<int32_t, decltype(d16)> d32;
  const hn::Repartition<float, decltype(d16)> df;
  const size_t L = hn::Lanes(d16);
  hn::Vec<decltype(df)> acc[P];
  for (int p = 0; p < P; ++p) acc[p] = hn::Zero(df);
  const int64_t cols = x.cols;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = row + b * (kQ4 ? sizeof(BlockQ4_0) : sizeof(BlockQ8_0));
    uint16_t dbits;
    __builtin_memcpy(&dbits, blk, 2);
    const float dw = f16[dbits];
    hn::Vec<decltype(d32)> isum[P], isum1[P];
    for (int p = 0; p < P; ++p) isum[p] = isum1[p] = hn::Zero(d32);
    for (size_t c = 0; c < 32; c += L) {
      hn::Vec<decltype(d16)> wv;
      if constexpr (kQ4) {
        // Byte j holds element j (low nibble) and j+16 (high nibble).
        const hn::Rebind<uint8_t, decltype(d16)> du8;
        const hn::RebindToUnsigned<decltype(d16)> du16;
        const size_t half = c % 16;
        const auto bytes = hn::PromoteTo(du16, hn::LoadU(du8, blk + 2 + half));
        const auto nib = c < 16 ? hn::And(bytes, hn::Set(du16, 0xF)) : hn::ShiftRight<4>(bytes);
        wv = hn::Sub(hn::BitCast(d16, nib), hn::Set(d16, 8));
      } else {
        const hn::Rebind<int8_t, decltype(d16)> d8;
        wv = hn::PromoteTo(d16, hn::LoadU(d8, reinterpret_cast<const int8_t*>(blk + 2) + c));
      }
      for (int p = 0; p < P; ++p) {
        const auto xv = hn::LoadU(d16, x.q + (pos0 + p) * cols + b * 32 + c);
        isum[p] = hn::ReorderWidenMulAccumulate(d32, wv, xv, isum[p], isum1[p]);
      }
    }
    for (int p = 0; p < P; ++p) {
      const auto s = hn::RearrangeToOddPlusEven(isum[p], isum1[p]);
      acc[p] = hn::MulAdd(hn::Set(df, dw * x.d[(pos0 + p) * nb + b]), hn::ConvertTo(df, s), acc[p]);
    }
  }
  for (int p = 0; p < P; ++p) out[p] = SumLanes(df, acc[p]);
}

template <bool kQ4>
void QuantRows(const Matrix& w, const QuantizedActs& x, int64_t n, float* y, int64_t r0, int64_t r1) {
  const int64_t nb = w.cols / 32;
  const float* f16 = fp16_table();
  TiledRows(w, n, y, r0, r1, [&](int64_t r, int64_t i, int P, float* out) {
    if (P == 4)
      QuantRowBlock<kQ4, 4>(w.row(r), x, i, nb, out, f16);
    else
      QuantRowBlock<kQ4, 1>(w.row(r), x, i, nb, out, f16);
  });
}

void RowsQ8_0(const Matrix& w, const QuantizedActs& x, int64_t n, float* y, int64_t r0, int64_t r1) {
  QuantRows<false>(w, x, n, y, r0, r1);
}
void RowsQ4_0(const Matrix& w, const QuantizedActs& x, int64_t n, float* y, int64_t r0, int64_t r1) {
  QuantRows<true>(w, x, n, y, r0, r1);
}

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace specsteer::kernels::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace specsteer::kernels::simd {

HWY_EXPORT(DotF32);
HWY_EXPORT(SiluMul);
HWY_EXPORT(RmsNorm);
HWY_EXPORT(DotF16);
HWY_EXPORT(AxpyF16);
HWY_EXPORT(AxpyF32);
HWY_EXPORT(AttendHeadF32);
HWY_EXPORT(AttendHeadF16);
HWY_EXPORT(RowsFloat);
HWY_EXPORT(QuantizeActsQ8);
HWY_EXPORT(DequantizeBlocks);
HWY_EXPORT(RowsQ8_0);
HWY_EXPORT(RowsQ4_0);
HWY_EXPORT(TargetName);

float dot_f32(const float* a, const float* b, size_t n) { return HWY_DYNAMIC_DISPATCH(DotF32)(a, b, n); }
void rms_norm(const float* x, const float* w, float* out, size_t n, float eps) {
  HWY_DYNAMIC_DISPATCH(RmsNorm)(x, w, out, n, eps);
}
void silu_mul(float* gate, const float* up, size_t n) { HWY_DYNAMIC_DISPATCH(SiluMul)(gate, up, n); }
float dot_f16(const float* a, const uint16_t* b, size_t n) { return HWY_DYNAMIC_DISPATCH(DotF16)(a, b, n); }
void axpy_f16(float p, const uint16_t* v, float* acc, size_t n) { HWY_DYNAMIC_DISPATCH(AxpyF16)(p, v, acc, n); }
void axpy_f32(float p, const float* v, float* acc, size_t n) { HWY_DYNAMIC_DISPATCH(AxpyF32)(p, v, acc, n); }
void attend_head(const float* q, const float* k, const float* v, size_t stride, int len, int hd, float scale,
                 float* scores, float* out) {
  HWY_DYNAMIC_DISPATCH(AttendHeadF32)(q, k, v, stride, len, hd, scale, scores, out);
}
void attend_head(const float* q, const uint16_t* k, const uint16_t* v, size_t stride, int len, int hd, float scale,
                 float* scores, float* out) {
  HWY_DYNAMIC_DISPATCH(AttendHeadF16)(q, k, v, stride, len, hd, scale, scores, out);
}
void rows_float(const Matrix& w, const float* x, int64_t n, float* y, int64_t r0, int64_t r1) {
  HWY_DYNAMIC_DISPATCH(RowsFloat)(w, x, n, y, r0, r1);
}
void quantize_acts_q8(const float* x, int64_t n, int64_t cols, QuantizedActs& out) {
  HWY_DYNAMIC_DISPATCH(QuantizeActsQ8)(x, n, cols, out);
}
bool dequantize_blocks(gguf::TensorType t, const uint8_t* src, float* dst, size_t n) {
  return HWY_DYNAMIC_DISPATCH(DequantizeBlocks)(t, src, dst, n);
}
void rows_q8_0(const Matrix& w, const QuantizedActs& x, int64_t n, float* y, int64_t r0, int64_t r1) {
  HWY_DYNAMIC_DISPATCH(RowsQ8_0)(w, x, n, y, r0, r1);
}
void rows_q4_0(const Matrix& w, const QuantizedActs& x, int64_t n, float* y, int64_t r0, int64_t r1) {
  HWY_DYNAMIC_DISPATCH(RowsQ4_0)(w, x, n, y, r0, r1);
}
const char* target_name() { return HWY_DYNAMIC_DISPATCH(TargetName)(); }

}  // namespace specsteer::kernels::simd
#endif
