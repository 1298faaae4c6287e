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

// acc += 4 unsigned weight bytes per lane x the 4 signed activation bytes at
// x4, broadcast by the instruction itself ({1to16}): no separate broadcast
// uop, which would otherwise compete with vpdpbusd for issue slots.
__attribute__((target("avx512f,avx512vnni"), always_inline)) inline __m512i dpbusd_bcast(__m512i acc, __m512i w,
                                                                                     const int8_t* x4) {
  using AliasedI32 = int32_t __attribute__((may_alias));
  asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*reinterpret_cast<const AliasedI32*>(x4)));
  return acc;
}

// P (<= 16) positions against one 16-row group, in one pass over its blocks
// so that arithmetic overlaps the weights' arrival from memory. Per block the
// positions are the inner loop: P independent vpdpbusd chains are in flight,
// which hides its 4-cycle latency (one chain per position ran at half the
// core's vpdpbusd throughput, and 8 at a time still left it idle). The P
// integer sums take the registers; the float accumulators live in `out` (L1),
// touched once per block. xb: the block of the first position; the others
// follow it, so every activation address is xb plus a constant. Only the
// first pass over a group prefetches; later passes find it in cache.
template <int P, bool kPrefetch>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void group_kernel(const uint8_t* gdata, int64_t nb,
                                                                                   const simd::ActBlockQ8* x,
                                                                                   int64_t n, float* out) {
  static_assert(P >= 1 && P <= 16);
  for (int p = 0; p < P; ++p) _mm512_storeu_ps(out + p * kPackRows, _mm512_setzero_ps());
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = gdata + static_cast<size_t>(b) * kPackedBlockBytes;
    if constexpr (kPrefetch) {
      const char* ahead = reinterpret_cast<const char*>(blk + kPrefetchBlocks * kPackedBlockBytes);
      for (size_t line = 0; line < kPackedBlockBytes; line += 64) _mm_prefetch(ahead + line, _MM_HINT_T0);
    }
    const simd::ActBlockQ8* xb = x + b * n;
    __m512i isum[P];
    // Start from -128 * sum(x) to cancel the weights' offset.
    for (int p = 0; p < P; ++p) isum[p] = _mm512_set1_epi32(xb[p].offset);
    for (int j = 0; j < 8; ++j) {
      const __m512i wv = _mm512_loadu_si512(blk + 2 * kPackRows + j * 64);
      for (int p = 0; p < P; ++p) isum[p] = dpbusd_bcast(isum[p], wv, xb[p].q + 4 * j);
    }
    // maskz forms: the plain ones use _mm512_undefined_ps, which GCC 12
    // misreports as uninitialized.
    const __m512 dw = _mm512_maskz_cvtph_ps(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
    for (int p = 0; p < P; ++p) {
      const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(xb[p].d));
      float* acc = out + p * kPackRows;
      _mm512_storeu_ps(acc, _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, isum[p]), scale, _mm512_loadu_ps(acc)));
    }
  }
}

}  // namespace
#endif

void rows_packed_q8(const Matrix& w, const simd::ActBlockQ8* x, int64_t n, float* y, int64_t g0, int64_t g1) {
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
    // Up to 16 positions share each pass over the group's weights.
    auto pass = [&]<int P>() {
      for (; i + P <= n; i += P) {
        if (i == 0)
          group_kernel<P, true>(gdata, nb, x + i, n, tmp);
        else
          group_kernel<P, false>(gdata, nb, x + i, n, tmp);
        scatter(P);
      }
    };
    pass.template operator()<16>();
    pass.template operator()<8>();
    pass.template operator()<4>();
    pass.template operator()<1>();
  }
#else
  (void)w, (void)x, (void)n, (void)y, (void)g0, (void)g1;
  throw Error("packed Q8_0 kernel needs x86-64 with AVX512-VNNI");
#endif
}

}  // namespace specsteer::kernels
