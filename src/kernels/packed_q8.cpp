#include "kernels/packed_q8.h"

#include <cstdlib>
#include <cstring>

#include "common/error.h"
#include "kernels/quant.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace specsteer::kernels {

bool packed_q8_available() {
#if defined(__x86_64__)
  static const bool ok = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
           std::getenv("SPECSTEER_NO_REPACK") == nullptr;
  }();
  return ok;
#else
  return false;
#endif
}

size_t packed_q8_bytes(const Matrix& w) {
  if (w.type != gguf::TensorType::Q8_0 || w.rows % kPackRows != 0 || w.cols % 32 != 0) return 0;
  return static_cast<size_t>(w.rows / kPackRows) * static_cast<size_t>(w.cols / 32) * kPackedBlockBytes;
}

// Layout, per (row group g, block b), kPackedBlockBytes bytes:
//   uint16 d[16]           fp16 scale of row g*16+r
//   uint8  q[8][16][4]     q[j][r][k] = 128 + weight 4j+k of block b of row g*16+r
// Weights are stored offset to unsigned so that vpdpbusd (unsigned x signed)
// takes them against the signed activations; the offset then contributes
// 128 * sum(activations of the block), a per-position constant the caller
// computes once (xsum) instead of once per row group.
void pack_q8_0(const Matrix& w, uint8_t* dst) {
  if (packed_q8_bytes(w) == 0) throw Error("pack_q8_0: matrix is not Q8_0 with rows divisible by 16");
  const int64_t nb = w.cols / 32;
  for (int64_t g = 0; g < w.rows / kPackRows; ++g)
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* out = dst + static_cast<size_t>(g * nb + b) * kPackedBlockBytes;
      for (int r = 0; r < kPackRows; ++r) {
        BlockQ8_0 blk;
        std::memcpy(&blk, w.row(g * kPackRows + r) + b * sizeof(BlockQ8_0), sizeof(blk));
        std::memcpy(out + 2 * r, &blk.d, 2);
        uint8_t* q = out + 2 * kPackRows;
        for (int j = 0; j < 8; ++j)
          for (int k = 0; k < 4; ++k)
            q[(j * kPackRows + r) * 4 + k] = static_cast<uint8_t>(static_cast<uint8_t>(blk.qs[4 * j + k]) ^ 0x80u);
      }
    }
}

#if defined(__x86_64__)
namespace {

// Blocks ahead to prefetch: a block is 544 bytes of weights, and at a few
// positions the arithmetic per block is short enough that, without explicit
// prefetch, load latency and compute add up instead of overlapping.
constexpr int64_t kPrefetchBlocks = 12;

// P positions against one 16-row group. Only the first pass over a group
// prefetches; later passes (more positions) find it in cache.
template <int P, bool kPrefetch>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void group_kernel(
    const uint8_t* gdata, int64_t nb, const int8_t* xq, const float* xd, const int32_t* xsum, int64_t cols,
    float* out) {
  __m512 acc[P];
  for (int p = 0; p < P; ++p) acc[p] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = gdata + static_cast<size_t>(b) * kPackedBlockBytes;
    if constexpr (kPrefetch) {
      const char* ahead = reinterpret_cast<const char*>(blk + kPrefetchBlocks * kPackedBlockBytes);
      for (size_t line = 0; line < kPackedBlockBytes; line += 64) _mm_prefetch(ahead + line, _MM_HINT_T0);
    }
    // maskz forms: the plain ones use _mm512_undefined_ps, which GCC 12
    // misreports as uninitialized.
    const __m512 dw = _mm512_maskz_cvtph_ps(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
    __m512i wv[8];
    for (int j = 0; j < 8; ++j) wv[j] = _mm512_loadu_si512(blk + 2 * kPackRows + j * 64);
    for (int p = 0; p < P; ++p) {
      const int8_t* xb = xq + p * cols + b * 32;
      const int64_t pb = p * (cols / 32) + b;
      // Start from -128 * sum(x) to cancel the weights' offset.
      __m512i isum = _mm512_set1_epi32(-128 * xsum[pb]);
      for (int j = 0; j < 8; ++j) {
        int32_t four;
        std::memcpy(&four, xb + 4 * j, 4);
        isum = _mm512_dpbusd_epi32(isum, wv[j], _mm512_set1_epi32(four));
      }
      const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(xd[pb]));
      acc[p] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, isum), scale, acc[p]);
    }
  }
  for (int p = 0; p < P; ++p) _mm512_storeu_ps(out + p * kPackRows, acc[p]);
}

}  // namespace
#endif

void rows_packed_q8(const Matrix& w, const int8_t* xq, const float* xd, const int32_t* xsum, int64_t n, float* y,
                    int64_t g0, int64_t g1) {
#if defined(__x86_64__)
  const int64_t nb = w.cols / 32;
  float tmp[16 * kPackRows];
  for (int64_t g = g0; g < g1; ++g) {
    const uint8_t* gdata = w.packed + static_cast<size_t>(g * nb) * kPackedBlockBytes;
    const int64_t r0 = g * kPackRows;
    int64_t i = 0;
    auto scatter = [&](int P) {
      for (int p = 0; p < P; ++p)
        std::memcpy(&y[(i + p) * w.rows + r0], tmp + p * kPackRows, kPackRows * sizeof(float));
    };
    // Blocks of up to 16 positions share each loaded weight vector (16
    // accumulators + 8 weight vectors + temporaries fit the 32 vector
    // registers); only the group's first pass prefetches.
    auto pass = [&]<int P>() {
      for (; i + P <= n; i += P) {
        const int8_t* q = xq + i * w.cols;
        if (i == 0)
          group_kernel<P, true>(gdata, nb, q, xd + i * nb, xsum + i * nb, w.cols, tmp);
        else
          group_kernel<P, false>(gdata, nb, q, xd + i * nb, xsum + i * nb, w.cols, tmp);
        scatter(P);
      }
    };
    pass.template operator()<16>();
    pass.template operator()<8>();
    pass.template operator()<4>();
    pass.template operator()<1>();
  }
#else
  (void)w, (void)xq, (void)xd, (void)xsum, (void)n, (void)y, (void)g0, (void)g1;
  throw Error("packed Q8_0 kernel needs x86-64 with AVX512-VNNI");
#endif
}

}  // namespace specsteer::kernels
