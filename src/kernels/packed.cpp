#include "kernels/packed.h"

#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "common/error.h"
#include "kernels/quant.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace specsteer::kernels {

static_assert(offsetof(BlockQ8_0, qs) == 2 && offsetof(BlockQ4_0, qs) == 2);

bool packed_available() {
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

size_t packed_block_bytes(gguf::TensorType t) {
  if (t == gguf::TensorType::Q8_0) return 2 * kPackRows + 32 * kPackRows;
  if (t == gguf::TensorType::Q4_0) return 2 * kPackRows + 16 * kPackRows;
  return 0;
}

size_t packed_bytes(const Matrix& w) {
  const size_t block = packed_block_bytes(w.type);
  if (block == 0 || w.rows % kPackRows != 0 || w.cols % 32 != 0) return 0;
  return static_cast<size_t>(w.rows / kPackRows) * static_cast<size_t>(w.cols / 32) * block;
}

// Layout, per (row group g, block b), packed_block_bytes bytes:
//   uint16 d[16]        fp16 scale of row g*16+r
//   then the codes of weight 4j+k of row g*16+r at vector j, lane r, byte k:
//   Q8_0: byte (j*16 + r)*4 + k;  Q4_0: nibble (j / 4) of byte ((j%4)*16 + r)*4 + k.
void pack_weights(const Matrix& w, uint8_t* dst) {
  if (packed_bytes(w) == 0)
    throw Error("pack_weights: matrix is not Q8_0/Q4_0 with rows divisible by 16 and columns by 32");
  const bool q4 = w.type == gguf::TensorType::Q4_0;
  const size_t in_block = q4 ? sizeof(BlockQ4_0) : sizeof(BlockQ8_0), out_block = packed_block_bytes(w.type);
  const int64_t nb = w.cols / 32;
  for (int64_t g = 0; g < w.rows / kPackRows; ++g)
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* out = dst + static_cast<size_t>(g * nb + b) * out_block;
      std::memset(out, 0, out_block);
      for (int r = 0; r < kPackRows; ++r) {
        const uint8_t* block = w.row(g * kPackRows + r) + b * in_block;
        // Both block types are the fp16 scale, then the codes.
        std::memcpy(out + 2 * r, block, 2);
        const uint8_t* qs = block + 2;
        uint8_t* codes = out + 2 * kPackRows;
        for (int j = 0; j < 8; ++j)
          for (int k = 0; k < 4; ++k) {
            const int c = 4 * j + k;
            if (q4) {  // element c: low nibble of byte c (c < 16) or high nibble of byte c - 16
              const uint8_t code = c < 16 ? qs[c] & 0x0F : qs[c - 16] >> 4;
              codes[((j % 4) * kPackRows + r) * 4 + k] |= static_cast<uint8_t>(code << (4 * (j / 4)));
            } else {  // int8 weight + 128
              codes[(j * kPackRows + r) * 4 + k] = static_cast<uint8_t>(qs[c] ^ 0x80u);
            }
          }
      }
    }
}

#if defined(__x86_64__)
namespace {

// Blocks ahead to prefetch: at a few positions the arithmetic per block is
// short enough that, without explicit prefetch, load latency and compute add
// up instead of overlapping.
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

// Code vector j (weights 4j..4j+3 of the 16 rows) of a packed block.
template <bool kQ4>
__attribute__((target("avx512f,avx512bw"), always_inline)) inline __m512i code_vector(const uint8_t* blk, int j) {
  const uint8_t* codes = blk + 2 * kPackRows;
  if constexpr (!kQ4) {
    return _mm512_loadu_si512(codes + j * 64);
  } else {
    const __m512i raw = _mm512_loadu_si512(codes + (j % 4) * 64), low4 = _mm512_set1_epi8(0x0F);
    return _mm512_and_si512(j < 4 ? raw : _mm512_srli_epi16(raw, 4), low4);
  }
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
template <bool kQ4, int P, bool kPrefetch>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void group_kernel(const uint8_t* gdata, int64_t nb,
                                                                                   const simd::ActBlockQ8* x,
                                                                                   int64_t n, float* out) {
  static_assert(P >= 1 && P <= 16);
  constexpr size_t kBlockBytes = kQ4 ? 2 * kPackRows + 16 * kPackRows : 2 * kPackRows + 32 * kPackRows;
  for (int p = 0; p < P; ++p) _mm512_storeu_ps(out + p * kPackRows, _mm512_setzero_ps());
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = gdata + static_cast<size_t>(b) * kBlockBytes;
    if constexpr (kPrefetch) {
      const char* ahead = reinterpret_cast<const char*>(blk + kPrefetchBlocks * kBlockBytes);
      for (size_t line = 0; line < kBlockBytes; line += 64) _mm_prefetch(ahead + line, _MM_HINT_T0);
    }
    const simd::ActBlockQ8* xb = x + b * n;
    __m512i isum[P];
    // Start from -offset * sum(x) to cancel the codes' offset.
    for (int p = 0; p < P; ++p) isum[p] = _mm512_set1_epi32(kQ4 ? xb[p].offset_q4 : xb[p].offset_q8);
    for (int j = 0; j < 8; ++j) {
      const __m512i wv = code_vector<kQ4>(blk, j);
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

template <bool kQ4>
void rows_packed_typed(const Matrix& w, const simd::ActBlockQ8* x, int64_t n, float* y, int64_t g0, int64_t g1) {
  const int64_t nb = w.cols / 32;
  const size_t block_bytes = packed_block_bytes(w.type);
  float tmp[16 * kPackRows];
  for (int64_t g = g0; g < g1; ++g) {
    const uint8_t* gdata = w.packed + static_cast<size_t>(g * nb) * block_bytes;
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
          group_kernel<kQ4, P, true>(gdata, nb, x + i, n, tmp);
        else
          group_kernel<kQ4, P, false>(gdata, nb, x + i, n, tmp);
        scatter(P);
      }
    };
    pass.template operator()<16>();
    pass.template operator()<8>();
    pass.template operator()<4>();
    pass.template operator()<2>();
    pass.template operator()<1>();
  }
}

}  // namespace
#endif

void rows_packed(const Matrix& w, const simd::ActBlockQ8* x, int64_t n, float* y, int64_t g0, int64_t g1) {
#if defined(__x86_64__)
  if (w.type == gguf::TensorType::Q4_0) return rows_packed_typed<true>(w, x, n, y, g0, g1);
  return rows_packed_typed<false>(w, x, n, y, g0, g1);
#else
  (void)w, (void)x, (void)n, (void)y, (void)g0, (void)g1;
  throw Error("packed Q8_0/Q4_0 kernels need x86-64 with AVX512-VNNI");
#endif
}

}  // namespace specsteer::kernels
