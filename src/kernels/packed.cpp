#include "kernels/packed.h"

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "kernels/quant.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace specsteer::kernels {

static_assert(offsetof(BlockQ8_0, qs) == 2 && offsetof(BlockQ4_0, qs) == 2);

PackedIsa packed_isa() {
#if defined(__x86_64__)
  static const PackedIsa isa = [] {
    if (std::getenv("SPECSTEER_NO_REPACK") != nullptr) return PackedIsa::kNone;
    __builtin_cpu_init();
    const char* want = std::getenv("SPECSTEER_PACKED_ISA");
    const bool force_avx2 = want != nullptr && std::strcmp(want, "avx2") == 0;
    if (!force_avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"))
      return PackedIsa::kAvx512Vnni;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
      return PackedIsa::kAvx2;
    return PackedIsa::kNone;
  }();
  return isa;
#else
  return PackedIsa::kNone;
#endif
}

bool packed_available() { return packed_isa() != PackedIsa::kNone; }

size_t packed_block_bytes(gguf::TensorType t) {
  if (t == gguf::TensorType::Q8_0) return 2 * kPackRows + 32 * kPackRows;
  if (t == gguf::TensorType::Q4_0) return 2 * kPackRows + 16 * kPackRows;
  return 0;
}

namespace {

bool is_k_quant(gguf::TensorType t) {
  return t == gguf::TensorType::Q4_K || t == gguf::TensorType::Q5_K || t == gguf::TensorType::Q6_K;
}
// K-quant layout sizes (packed.h): the super-block header of 16 rows, one
// 32-column block (scales + codes), and a whole 16 x 256 super-block.
constexpr size_t k_header_bytes(gguf::TensorType t) { return t == gguf::TensorType::Q6_K ? 32 : 64; }
constexpr size_t k_block_bytes(gguf::TensorType t) {
  return t == gguf::TensorType::Q4_K ? 32 + 256 : t == gguf::TensorType::Q5_K ? 32 + 256 + 64 : 32 + 256 + 128;
}
constexpr size_t k_super_bytes(gguf::TensorType t) { return k_header_bytes(t) + 8 * k_block_bytes(t); }

// One super-block of one K-quant row as integer codes (0..15, 0..31 or
// 0..63) and scales: per 32 columns for Q4_K/Q5_K (sc, m), per 16 for Q6_K
// (sc holds the int8 scales' bits). The same arithmetic as dequant-inl.h.
struct KCodes {
  uint8_t q[256];
  uint8_t sc[16];
  uint8_t m[8];
  uint16_t d, dmin;
};

void decode_k(gguf::TensorType t, const uint8_t* src, KCodes& out) {
  if (t == gguf::TensorType::Q6_K) {
    BlockQ6_K b;
    std::memcpy(&b, src, sizeof b);
    out.d = b.d;
    out.dmin = 0;
    for (int s = 0; s < 16; ++s) out.sc[s] = static_cast<uint8_t>(b.scales[s]);
    for (int e = 0; e < 256; ++e) {
      const int half = e / 128, quarter = (e % 128) / 32, l = e % 32;
      const uint8_t ql = b.ql[64 * half + l + (quarter % 2) * 32], qh = b.qh[32 * half + l];
      const int low = quarter < 2 ? ql & 0x0F : ql >> 4;
      out.q[e] = static_cast<uint8_t>(low | (((qh >> (2 * quarter)) & 3) << 4));
    }
    return;
  }
  const bool q5 = t == gguf::TensorType::Q5_K;
  BlockQ5_K b5{};
  BlockQ4_K b4{};
  if (q5) std::memcpy(&b5, src, sizeof b5);
  else std::memcpy(&b4, src, sizeof b4);
  out.d = q5 ? b5.d : b4.d;
  out.dmin = q5 ? b5.dmin : b4.dmin;
  const uint8_t* scales = q5 ? b5.scales : b4.scales;
  const uint8_t* qs = q5 ? b5.qs : b4.qs;
  for (int j = 0; j < 8; ++j) get_scale_min_k4(j, scales, &out.sc[j], &out.m[j]);
  for (int g = 0; g < 4; ++g)
    for (int l = 0; l < 32; ++l) {
      int lo = qs[32 * g + l] & 0x0F, hi = qs[32 * g + l] >> 4;
      if (q5) {
        lo += (b5.qh[l] & (1u << (2 * g))) ? 16 : 0;
        hi += (b5.qh[l] & (2u << (2 * g))) ? 16 : 0;
      }
      out.q[64 * g + l] = static_cast<uint8_t>(lo);
      out.q[64 * g + 32 + l] = static_cast<uint8_t>(hi);
    }
}

// Layout, per (row group g, super-block sb), k_super_bytes bytes:
//   header: uint16 d[16] (fp16, row r), then for Q4_K/Q5_K uint16 dmin[16]
//   8 blocks of 32 columns j, each:
//     Q4_K/Q5_K: uint8 sc[16], uint8 m[16] (6-bit scale and min of row r);
//     Q6_K: int8 sc_lo[16], sc_hi[16] (columns 0-15 / 16-31 of the block)
//     then the low nibbles of the codes exactly as packed Q4_0 (256 bytes);
//     Q5_K: 64 bytes whose byte (4r + k) has bit v = the fifth bit of weight
//       4v+k of row r; Q6_K: two 64-byte vectors (vectors 0-3, 4-7) whose
//       byte (4r + k) has bits 2(v%4)..2(v%4)+1 = the top two bits.
void pack_k(const Matrix& w, uint8_t* dst) {
  const size_t in_bytes = gguf::row_bytes(w.type, kQK_K), super = k_super_bytes(w.type);
  const size_t header = k_header_bytes(w.type), block = k_block_bytes(w.type);
  const bool q5 = w.type == gguf::TensorType::Q5_K, q6 = w.type == gguf::TensorType::Q6_K;
  const int64_t nsb = w.cols / static_cast<int64_t>(kQK_K);
  std::vector<KCodes> rows(kPackRows);
  for (int64_t g = 0; g < w.rows / kPackRows; ++g)
    for (int64_t sb = 0; sb < nsb; ++sb) {
      uint8_t* out = dst + static_cast<size_t>(g * nsb + sb) * super;
      std::memset(out, 0, super);
      for (int r = 0; r < kPackRows; ++r) {
        decode_k(w.type, w.row(g * kPackRows + r) + static_cast<size_t>(sb) * in_bytes, rows[r]);
        std::memcpy(out + 2 * r, &rows[r].d, 2);
        if (!q6) std::memcpy(out + 32 + 2 * r, &rows[r].dmin, 2);
      }
      for (int j = 0; j < 8; ++j) {
        uint8_t* blk = out + header + static_cast<size_t>(j) * block;
        uint8_t* codes = blk + 32;
        for (int r = 0; r < kPackRows; ++r) {
          blk[r] = q6 ? rows[r].sc[2 * j] : rows[r].sc[j];
          blk[16 + r] = q6 ? rows[r].sc[2 * j + 1] : rows[r].m[j];
          for (int v = 0; v < 8; ++v)
            for (int k = 0; k < 4; ++k) {
              const uint8_t c = rows[r].q[32 * j + 4 * v + k];
              codes[((v % 4) * kPackRows + r) * 4 + k] |= static_cast<uint8_t>((c & 0x0F) << (4 * (v / 4)));
              if (q5 && (c & 16)) codes[256 + r * 4 + k] |= static_cast<uint8_t>(1u << v);
              if (q6) codes[256 + (v / 4) * 64 + r * 4 + k] |= static_cast<uint8_t>(((c >> 4) & 3) << (2 * (v % 4)));
            }
        }
      }
    }
}

}  // namespace

bool packed_available(gguf::TensorType t) {
  switch (packed_isa()) {
    case PackedIsa::kAvx512Vnni: return is_k_quant(t) || packed_block_bytes(t) > 0;
    case PackedIsa::kAvx2: return is_k_quant(t) || t == gguf::TensorType::Q4_0;  // codes < 64 (packed.h)
    case PackedIsa::kNone: break;
  }
  return false;
}

size_t packed_bytes(const Matrix& w) {
  if (w.rows % kPackRows != 0 || !packed_available(w.type)) return 0;
  if (is_k_quant(w.type)) {
    if (w.cols % static_cast<int64_t>(kQK_K) != 0) return 0;
    return static_cast<size_t>(w.rows / kPackRows) * static_cast<size_t>(w.cols / static_cast<int64_t>(kQK_K)) *
           k_super_bytes(w.type);
  }
  const size_t block = packed_block_bytes(w.type);
  if (block == 0 || w.cols % 32 != 0) return 0;
  return static_cast<size_t>(w.rows / kPackRows) * static_cast<size_t>(w.cols / 32) * block;
}

// Layout, per (row group g, block b), packed_block_bytes bytes:
//   uint16 d[16]        fp16 scale of row g*16+r
//   then the codes of weight 4j+k of row g*16+r at vector j, lane r, byte k:
//   Q8_0: byte (j*16 + r)*4 + k;  Q4_0: nibble (j / 4) of byte ((j%4)*16 + r)*4 + k.
void pack_weights(const Matrix& w, uint8_t* dst) {
  if (packed_bytes(w) == 0)
    throw Error("pack_weights: matrix is not Q8_0/Q4_0 (columns divisible by 32) or Q4_K/Q5_K/Q6_K (by 256) with "
                "rows divisible by 16, or this CPU has no packed kernel for its type");
  if (is_k_quant(w.type)) return pack_k(w, dst);
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

// Code vector V (weights 4V..4V+3 of the 16 rows) of a K-quant block: the
// low nibbles as Q4_0's, plus the fifth bit (Q5_K) or the top two (Q6_K)
// moved into place from their shared planes.
template <gguf::TensorType T, int V>
__attribute__((target("avx512f,avx512bw"), always_inline)) inline __m512i k_code(const uint8_t* codes) {
  const __m512i raw = _mm512_loadu_si512(codes + (V % 4) * 64), low4 = _mm512_set1_epi8(0x0F);
  __m512i c;
  if constexpr (V < 4) c = _mm512_and_si512(raw, low4);
  else c = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4);
  if constexpr (T == gguf::TensorType::Q5_K) {
    // Byte bit V -> bit 4; 16-bit shifts are safe because bit 4 of each byte
    // comes from the same byte for shifts of at most 4 (left) or 3 (right).
    const __m512i hb = _mm512_loadu_si512(codes + 256);
    __m512i bit;
    if constexpr (V <= 4) bit = _mm512_slli_epi16(hb, 4 - V);
    else bit = _mm512_srli_epi16(hb, V - 4);
    c = _mm512_or_si512(c, _mm512_and_si512(bit, _mm512_set1_epi8(0x10)));
  } else if constexpr (T == gguf::TensorType::Q6_K) {
    // Bits 2(V%4)..+1 -> bits 4..5, same-byte argument as above.
    const __m512i h = _mm512_loadu_si512(codes + 256 + (V / 4) * 64);
    __m512i hi;
    if constexpr (V % 4 == 0) hi = _mm512_slli_epi16(h, 4);
    else if constexpr (V % 4 == 1) hi = _mm512_slli_epi16(h, 2);
    else if constexpr (V % 4 == 2) hi = h;
    else hi = _mm512_srli_epi16(h, 2);
    c = _mm512_or_si512(c, _mm512_and_si512(hi, _mm512_set1_epi8(0x30)));
  }
  return c;
}

// One code vector against P positions: Q6_K sums its two 16-column halves
// (vectors 0-3, 4-7) apart, since each half has its own scale.
template <gguf::TensorType T, int V, int P>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"), always_inline)) inline void k_step(
    const uint8_t* codes, const simd::ActBlockQ8* xb, __m512i* lo, __m512i* hi) {
  const __m512i wv = k_code<T, V>(codes);
  for (int p = 0; p < P; ++p) {
    if constexpr (T == gguf::TensorType::Q6_K && V >= 4) hi[p] = dpbusd_bcast(hi[p], wv, xb[p].q + 4 * V);
    else lo[p] = dpbusd_bcast(lo[p], wv, xb[p].q + 4 * V);
  }
}

// As group_kernel for the K-quants, one super-block (8 blocks of 32
// columns) at a time: the codes are unsigned, so a block's sum is
//   Q4_K/Q5_K: d*sc * sum(q*x) - dmin*m * sum(x)
//   Q6_K:      d*sc_lo * (sum_lo(q*x) - 32*sum_lo(x)) + d*sc_hi * (...hi)
// with the per-row scales converted once per block for all P positions.
template <gguf::TensorType T, int P, bool kPrefetch>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void k_group_kernel(const uint8_t* gdata,
                                                                                     int64_t nsb,
                                                                                     const simd::ActBlockQ8* x,
                                                                                     int64_t n, float* out) {
  static_assert(P >= 1 && P <= 16);
  constexpr bool kQ6 = T == gguf::TensorType::Q6_K;
  constexpr size_t kHeader = k_header_bytes(T), kBlock = k_block_bytes(T), kSuper = k_super_bytes(T);
  for (int p = 0; p < P; ++p) _mm512_storeu_ps(out + p * kPackRows, _mm512_setzero_ps());
  for (int64_t sb = 0; sb < nsb; ++sb) {
    const uint8_t* sup = gdata + static_cast<size_t>(sb) * kSuper;
    const __m512 d = _mm512_maskz_cvtph_ps(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sup)));
    __m512 dmin = _mm512_setzero_ps();
    if constexpr (!kQ6) dmin = _mm512_maskz_cvtph_ps(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sup + 32)));
    for (int j = 0; j < 8; ++j) {
      const uint8_t* blk = sup + kHeader + static_cast<size_t>(j) * kBlock;
      if constexpr (kPrefetch) {
        const char* ahead = reinterpret_cast<const char*>(blk + 2 * kSuper);
        for (size_t line = 0; line < kBlock; line += 64) _mm_prefetch(ahead + line, _MM_HINT_T0);
      }
      const simd::ActBlockQ8* xb = x + (sb * 8 + j) * n;
      const uint8_t* codes = blk + 32;
      __m512i lo[P], hi[kQ6 ? P : 1];
      for (int p = 0; p < P; ++p) {
        if constexpr (kQ6) {
          const int32_t sum = -xb[p].offset_q4 / 8;
          lo[p] = _mm512_set1_epi32(-32 * xb[p].sum_lo);
          hi[p] = _mm512_set1_epi32(-32 * (sum - xb[p].sum_lo));
        } else {
          lo[p] = _mm512_setzero_si512();
        }
      }
      k_step<T, 0, P>(codes, xb, lo, hi);
      k_step<T, 1, P>(codes, xb, lo, hi);
      k_step<T, 2, P>(codes, xb, lo, hi);
      k_step<T, 3, P>(codes, xb, lo, hi);
      k_step<T, 4, P>(codes, xb, lo, hi);
      k_step<T, 5, P>(codes, xb, lo, hi);
      k_step<T, 6, P>(codes, xb, lo, hi);
      k_step<T, 7, P>(codes, xb, lo, hi);
      const __m128i sc_bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk));
      const __m128i m_bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16));
      if constexpr (kQ6) {
        const __m512 slo = _mm512_mul_ps(d, _mm512_maskz_cvtepi32_ps(0xFFFF, _mm512_maskz_cvtepi8_epi32(0xFFFF, sc_bytes)));
        const __m512 shi = _mm512_mul_ps(d, _mm512_maskz_cvtepi32_ps(0xFFFF, _mm512_maskz_cvtepi8_epi32(0xFFFF, m_bytes)));
        for (int p = 0; p < P; ++p) {
          float* acc = out + p * kPackRows;
          const __m512 t = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, hi[p]), shi,
                                           _mm512_mul_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, lo[p]), slo));
          _mm512_storeu_ps(acc, _mm512_fmadd_ps(t, _mm512_set1_ps(xb[p].d), _mm512_loadu_ps(acc)));
        }
      } else {
        const __m512 scale = _mm512_mul_ps(d, _mm512_maskz_cvtepi32_ps(0xFFFF, _mm512_maskz_cvtepu8_epi32(0xFFFF, sc_bytes)));
        const __m512 minv = _mm512_mul_ps(dmin, _mm512_maskz_cvtepi32_ps(0xFFFF, _mm512_maskz_cvtepu8_epi32(0xFFFF, m_bytes)));
        for (int p = 0; p < P; ++p) {
          float* acc = out + p * kPackRows;
          const float dx = xb[p].d, dx_sum = dx * static_cast<float>(-xb[p].offset_q4 / 8);
          __m512 a = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, lo[p]), _mm512_mul_ps(scale, _mm512_set1_ps(dx)),
                                     _mm512_loadu_ps(acc));
          _mm512_storeu_ps(acc, _mm512_fnmadd_ps(minv, _mm512_set1_ps(dx_sum), a));
        }
      }
    }
  }
}

// AVX2 has no vpdpbusd: vpmaddubsw multiplies the unsigned codes by the
// signed activation bytes and adds adjacent pairs into int16, and vpmaddwd by
// ones adds those pairs into int32. Pair sums stay below 2 * 63 * 127, so
// they never saturate for codes below 64, and kFlush of them still fit in
// int16 before widening (8 for codes below 16, 4 below 32, 2 below 64). A
// 256-bit vector holds 8 of the 16 rows of a 64-byte code vector: one
// position (and Q5_K) walks a block once per half (rows 0-7, then 8-15, the
// second walk reading L1); passes of several positions walk both halves at
// once (shared_step).
template <gguf::TensorType T>
constexpr int avx2_flush() {
  return T == gguf::TensorType::Q5_K ? 4 : T == gguf::TensorType::Q6_K ? 2 : 8;
}

// Code vector V of half h of a block (Q4_0's layout for T = Q4_0): the low
// nibbles, plus the fifth bit (Q5_K) or the top two (Q6_K), as in k_code.
template <gguf::TensorType T, int V>
__attribute__((target("avx2"), always_inline)) inline __m256i code8(const uint8_t* codes, int h) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + (V % 4) * 64 + 32 * h));
  __m256i c;
  if constexpr (V < 4) c = _mm256_and_si256(raw, low4);
  else c = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
  if constexpr (T == gguf::TensorType::Q5_K) {
    const __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + 256 + 32 * h));
    __m256i bit;
    if constexpr (V <= 4) bit = _mm256_slli_epi16(hb, 4 - V);
    else bit = _mm256_srli_epi16(hb, V - 4);
    c = _mm256_or_si256(c, _mm256_and_si256(bit, _mm256_set1_epi8(0x10)));
  } else if constexpr (T == gguf::TensorType::Q6_K) {
    const __m256i hp = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + 256 + (V / 4) * 64 + 32 * h));
    __m256i hi;
    if constexpr (V % 4 == 0) hi = _mm256_slli_epi16(hp, 4);
    else if constexpr (V % 4 == 1) hi = _mm256_slli_epi16(hp, 2);
    else if constexpr (V % 4 == 2) hi = hp;
    else hi = _mm256_srli_epi16(hp, 2);
    c = _mm256_or_si256(c, _mm256_and_si256(hi, _mm256_set1_epi8(0x30)));
  }
  return c;
}

// The 8 code vectors of half h of a block, decoded once for all positions.
template <gguf::TensorType T>
__attribute__((target("avx2"), always_inline)) inline void code8_all(const uint8_t* codes, int h, __m256i* w) {
  w[0] = code8<T, 0>(codes, h);
  w[1] = code8<T, 1>(codes, h);
  w[2] = code8<T, 2>(codes, h);
  w[3] = code8<T, 3>(codes, h);
  w[4] = code8<T, 4>(codes, h);
  w[5] = code8<T, 5>(codes, h);
  w[6] = code8<T, 6>(codes, h);
  w[7] = code8<T, 7>(codes, h);
}

// Integer sums of the 8 code vectors w against one position's 32 activation
// bytes: lo (vectors 0-7; Q6_K: 0-3) and hi (Q6_K: 4-7), 8 rows each. The
// empty asm keeps the int16 sum one chain in one register: left alone, GCC
// turns the chain into a tree of products that spills with 8 codes live.
template <gguf::TensorType T>
__attribute__((target("avx2"), always_inline)) inline void avx2_sums(const __m256i* w, const int8_t* xq, __m256i& lo,
                                                                     __m256i& hi) {
  constexpr int kFlush = avx2_flush<T>();
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc = _mm256_setzero_si256();
  lo = hi = _mm256_setzero_si256();
  for (int v = 0; v < 8; ++v) {
    int32_t x4;
    std::memcpy(&x4, xq + 4 * v, 4);
    acc = _mm256_add_epi16(acc, _mm256_maddubs_epi16(w[v], _mm256_set1_epi32(x4)));
    asm("" : "+x"(acc));
    if ((v + 1) % kFlush == 0) {
      const __m256i wide = _mm256_madd_epi16(acc, ones);
      if (T == gguf::TensorType::Q6_K && v >= 4) hi = _mm256_add_epi32(hi, wide);
      else lo = _mm256_add_epi32(lo, wide);
      acc = _mm256_setzero_si256();
    }
  }
}

__attribute__((target("avx2,f16c"), always_inline)) inline __m256 fp16x8(const uint8_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
// 8 scale bytes as floats, unsigned (Q4_K/Q5_K) or signed (Q6_K).
template <bool kSigned>
__attribute__((target("avx2"), always_inline)) inline __m256 bytes8(const uint8_t* p) {
  const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return _mm256_cvtepi32_ps(kSigned ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b));
}

// Code vector V of both halves against P positions, one broadcast of each
// position's 4 activation bytes serving both (the position-outer walk below
// broadcasts them once per half; with P sums per half held in registers, this
// walk fits AVX2's 16 only for P <= kSharedMaxP).
constexpr int kSharedMaxP = 6;
template <gguf::TensorType T, int V, int P>
__attribute__((target("avx2"), always_inline)) inline void shared_step(const uint8_t* codes,
                                                                       const simd::ActBlockQ8* xb, __m256i* a0,
                                                                       __m256i* a1) {
  const __m256i w0 = code8<T, V>(codes, 0), w1 = code8<T, V>(codes, 1);
  for (int p = 0; p < P; ++p) {
    int32_t x4;
    std::memcpy(&x4, xb[p].q + 4 * V, 4);
    const __m256i xv = _mm256_set1_epi32(x4);
    a0[p] = _mm256_add_epi16(a0[p], _mm256_maddubs_epi16(w0, xv));
    a1[p] = _mm256_add_epi16(a1[p], _mm256_maddubs_epi16(w1, xv));
    asm("" : "+x"(a0[p]), "+x"(a1[p]));
  }
}

// The int32 sums of a whole block for P positions, both halves (a0: rows
// 0-7, a1: rows 8-15), codes below 16 (Q4_0, Q4_K: one int16 flush).
template <gguf::TensorType T, int P>
__attribute__((target("avx2"), always_inline)) inline void shared_sums(const uint8_t* codes,
                                                                       const simd::ActBlockQ8* xb, __m256i* a0,
                                                                       __m256i* a1) {
  static_assert(avx2_flush<T>() == 8);
  for (int p = 0; p < P; ++p) a0[p] = a1[p] = _mm256_setzero_si256();
  shared_step<T, 0, P>(codes, xb, a0, a1);
  shared_step<T, 1, P>(codes, xb, a0, a1);
  shared_step<T, 2, P>(codes, xb, a0, a1);
  shared_step<T, 3, P>(codes, xb, a0, a1);
  shared_step<T, 4, P>(codes, xb, a0, a1);
  shared_step<T, 5, P>(codes, xb, a0, a1);
  shared_step<T, 6, P>(codes, xb, a0, a1);
  shared_step<T, 7, P>(codes, xb, a0, a1);
  const __m256i ones = _mm256_set1_epi16(1);
  for (int p = 0; p < P; ++p) {
    a0[p] = _mm256_madd_epi16(a0[p], ones);
    a1[p] = _mm256_madd_epi16(a1[p], ones);
  }
}

// Q6_K's codes (below 64) let only 2 vectors share an int16 sum, and each
// 16-column half of a block has its own scale: vectors V and V + 1 of both
// 8-row halves against P positions (P <= kSharedQ6MaxP), into int32 sums.
constexpr int kSharedQ6MaxP = 4;
template <int V, int P>
__attribute__((target("avx2"), always_inline)) inline void q6_shared_pair(const uint8_t* codes,
                                                                          const simd::ActBlockQ8* xb, __m256i* s0,
                                                                          __m256i* s1) {
  constexpr auto T = gguf::TensorType::Q6_K;
  const __m256i a0 = code8<T, V>(codes, 0), a1 = code8<T, V>(codes, 1);
  const __m256i b0 = code8<T, V + 1>(codes, 0), b1 = code8<T, V + 1>(codes, 1);
  const __m256i ones = _mm256_set1_epi16(1);
  for (int p = 0; p < P; ++p) {
    int32_t xa, xn;
    std::memcpy(&xa, xb[p].q + 4 * V, 4);
    std::memcpy(&xn, xb[p].q + 4 * (V + 1), 4);
    const __m256i va = _mm256_set1_epi32(xa), vn = _mm256_set1_epi32(xn);
    const __m256i t0 = _mm256_add_epi16(_mm256_maddubs_epi16(a0, va), _mm256_maddubs_epi16(b0, vn));
    const __m256i t1 = _mm256_add_epi16(_mm256_maddubs_epi16(a1, va), _mm256_maddubs_epi16(b1, vn));
    s0[p] = _mm256_add_epi32(s0[p], _mm256_madd_epi16(t0, ones));
    s1[p] = _mm256_add_epi32(s1[p], _mm256_madd_epi16(t1, ones));
    asm("" : "+x"(s0[p]), "+x"(s1[p]));
  }
}

// group_kernel<true, P> for AVX2: Q4_0, float sums in `out` as there.
template <int P, bool kPrefetch>
__attribute__((target("avx2,fma,f16c"))) void q4_group_avx2(const uint8_t* gdata, int64_t nb,
                                                             const simd::ActBlockQ8* x, int64_t n, float* out) {
  static_assert(P >= 1 && P <= kSharedMaxP);
  constexpr size_t kBlockBytes = 2 * kPackRows + 16 * kPackRows;
  std::memset(out, 0, sizeof(float) * P * kPackRows);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = gdata + static_cast<size_t>(b) * kBlockBytes;
    if constexpr (kPrefetch) {
      const char* ahead = reinterpret_cast<const char*>(blk + kPrefetchBlocks * kBlockBytes);
      for (size_t line = 0; line < kBlockBytes; line += 64) _mm_prefetch(ahead + line, _MM_HINT_T0);
    }
    const simd::ActBlockQ8* xb = x + b * n;
    __m256i a[2][P];
    if constexpr (P >= 2) {
      shared_sums<gguf::TensorType::Q4_0, P>(blk + 2 * kPackRows, xb, a[0], a[1]);
    } else {  // one position: a walk per half measured faster than the shared one
      for (int h = 0; h < 2; ++h) {
        __m256i w[8], unused;
        code8_all<gguf::TensorType::Q4_0>(blk + 2 * kPackRows, h, w);
        avx2_sums<gguf::TensorType::Q4_0>(w, xb[0].q, a[h][0], unused);
      }
    }
    for (int h = 0; h < 2; ++h) {
      const __m256 dw = fp16x8(blk + 16 * h);
      for (int p = 0; p < P; ++p) {
        float* acc = out + p * kPackRows + 8 * h;
        const __m256i sum = _mm256_add_epi32(a[h][p], _mm256_set1_epi32(xb[p].offset_q4));
        _mm256_storeu_ps(acc, _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_mul_ps(dw, _mm256_set1_ps(xb[p].d)),
                                              _mm256_loadu_ps(acc)));
      }
    }
  }
}

// k_group_kernel for AVX2, same arithmetic per half of the 16 rows.
template <gguf::TensorType T, int P, bool kPrefetch>
__attribute__((target("avx2,fma,f16c"))) void k_group_avx2(const uint8_t* gdata, int64_t nsb,
                                                            const simd::ActBlockQ8* x, int64_t n, float* out) {
  constexpr bool kQ6 = T == gguf::TensorType::Q6_K;
  constexpr size_t kHeader = k_header_bytes(T), kBlock = k_block_bytes(T), kSuper = k_super_bytes(T);
  std::memset(out, 0, sizeof(float) * P * kPackRows);
  for (int64_t sb = 0; sb < nsb; ++sb) {
    const uint8_t* sup = gdata + static_cast<size_t>(sb) * kSuper;
    for (int j = 0; j < 8; ++j) {
      const uint8_t* blk = sup + kHeader + static_cast<size_t>(j) * kBlock;
      if constexpr (kPrefetch) {
        const char* ahead = reinterpret_cast<const char*>(blk + 2 * kSuper);
        for (size_t line = 0; line < kBlock; line += 64) _mm_prefetch(ahead + line, _MM_HINT_T0);
      }
      const simd::ActBlockQ8* xb = x + (sb * 8 + j) * n;
      if constexpr (kQ6 && P >= 2 && P <= kSharedQ6MaxP) {
        // Each 16-column half (vectors 0-3, then 4-7) finished on its own, so
        // only one half's sums are live: (sums - 32 * the activations' sum) x
        // d * its scale x the position's d.
        for (int part = 0; part < 2; ++part) {
          __m256i sums[2][P];
          for (int p = 0; p < P; ++p) sums[0][p] = sums[1][p] = _mm256_setzero_si256();
          if (part == 0) {
            q6_shared_pair<0, P>(blk + 32, xb, sums[0], sums[1]);
            q6_shared_pair<2, P>(blk + 32, xb, sums[0], sums[1]);
          } else {
            q6_shared_pair<4, P>(blk + 32, xb, sums[0], sums[1]);
            q6_shared_pair<6, P>(blk + 32, xb, sums[0], sums[1]);
          }
          for (int h = 0; h < 2; ++h) {
            const __m256 scale = _mm256_mul_ps(fp16x8(sup + 16 * h), bytes8<true>(blk + 16 * part + 8 * h));
            for (int p = 0; p < P; ++p) {
              const int32_t sum = -xb[p].offset_q4 / 8;
              const int32_t part_sum = part == 0 ? xb[p].sum_lo : sum - xb[p].sum_lo;
              const __m256i v = _mm256_add_epi32(sums[h][p], _mm256_set1_epi32(-32 * part_sum));
              float* acc = out + p * kPackRows + 8 * h;
              _mm256_storeu_ps(acc, _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), _mm256_mul_ps(scale, _mm256_set1_ps(xb[p].d)),
                                                    _mm256_loadu_ps(acc)));
            }
          }
        }
        continue;
      }
      constexpr bool kShared = T == gguf::TensorType::Q4_K && P >= 2 && P <= kSharedMaxP;
      __m256i a[2][kShared ? P : 1];
      if constexpr (kShared) shared_sums<T, P>(blk + 32, xb, a[0], a[1]);
      for (int h = 0; h < 2; ++h) {
        __m256i w[8];
        if constexpr (!kShared) code8_all<T>(blk + 32, h, w);
        const __m256 d = fp16x8(sup + 16 * h);
        if constexpr (kQ6) {
          const __m256 slo = _mm256_mul_ps(d, bytes8<true>(blk + 8 * h));
          const __m256 shi = _mm256_mul_ps(d, bytes8<true>(blk + 16 + 8 * h));
          for (int p = 0; p < P; ++p) {
            __m256i lo, hi;
            avx2_sums<T>(w, xb[p].q, lo, hi);
            // The codes carry +32: subtract 32 * the activations' sum per 16-column half.
            const int32_t sum = -xb[p].offset_q4 / 8;
            const __m256i l = _mm256_add_epi32(lo, _mm256_set1_epi32(-32 * xb[p].sum_lo));
            const __m256i u = _mm256_add_epi32(hi, _mm256_set1_epi32(-32 * (sum - xb[p].sum_lo)));
            const __m256 t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(u), shi, _mm256_mul_ps(_mm256_cvtepi32_ps(l), slo));
            float* acc = out + p * kPackRows + 8 * h;
            _mm256_storeu_ps(acc, _mm256_fmadd_ps(t, _mm256_set1_ps(xb[p].d), _mm256_loadu_ps(acc)));
          }
        } else {
          const __m256 scale = _mm256_mul_ps(d, bytes8<false>(blk + 8 * h));
          const __m256 minv = _mm256_mul_ps(fp16x8(sup + 32 + 16 * h), bytes8<false>(blk + 16 + 8 * h));
          for (int p = 0; p < P; ++p) {
            __m256i lo, hi;
            if constexpr (kShared) lo = a[h][p];
            else avx2_sums<T>(w, xb[p].q, lo, hi);
            const float dx = xb[p].d, dx_sum = dx * static_cast<float>(-xb[p].offset_q4 / 8);
            float* acc = out + p * kPackRows + 8 * h;
            const __m256 a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lo), _mm256_mul_ps(scale, _mm256_set1_ps(dx)),
                                             _mm256_loadu_ps(acc));
            _mm256_storeu_ps(acc, _mm256_fnmadd_ps(minv, _mm256_set1_ps(dx_sum), a));
          }
        }
      }
    }
  }
}

// Q8_0/Q4_0 (blocks of 32 columns) and the K-quants (super-blocks of 256) as
// one kernel interface: Run<P, kPrefetch>(group data, x, n, out).
template <bool kQ4>
struct LegacyKernel {
  static constexpr int kMaxP = 16;
  static int64_t steps(const Matrix& w) { return w.cols / 32; }
  static size_t group_bytes(const Matrix& w) { return static_cast<size_t>(steps(w)) * packed_block_bytes(w.type); }
  template <int P, bool kPrefetch>
  static void run(const uint8_t* g, int64_t steps, const simd::ActBlockQ8* x, int64_t n, float* out) {
    group_kernel<kQ4, P, kPrefetch>(g, steps, x, n, out);
  }
};
template <gguf::TensorType T>
struct KQuantKernel {
  // Q6_K keeps two integer sums per position in registers: 8 positions fill them.
  static constexpr int kMaxP = T == gguf::TensorType::Q6_K ? 8 : 16;
  static int64_t steps(const Matrix& w) { return w.cols / static_cast<int64_t>(kQK_K); }
  static size_t group_bytes(const Matrix& w) { return static_cast<size_t>(steps(w)) * k_super_bytes(T); }
  template <int P, bool kPrefetch>
  static void run(const uint8_t* g, int64_t steps, const simd::ActBlockQ8* x, int64_t n, float* out) {
    k_group_kernel<T, P, kPrefetch>(g, steps, x, n, out);
  }
};

// The AVX2 kernels under the same interface. Q4_0, Q4_K (at most
// kSharedMaxP positions) and Q6_K (kSharedQ6MaxP) run passes of 2+ positions
// with the shared-broadcast walk (more passes over a group read it from
// cache, and prefill measured faster so than with 16-position passes that
// broadcast twice); Q5_K walks positions outer against 8 code vectors held in
// registers, so any P fits.
struct Avx2Q4Kernel {
  static constexpr int kMaxP = kSharedMaxP;
  static int64_t steps(const Matrix& w) { return w.cols / 32; }
  static size_t group_bytes(const Matrix& w) { return static_cast<size_t>(steps(w)) * packed_block_bytes(w.type); }
  template <int P, bool kPrefetch>
  static void run(const uint8_t* g, int64_t steps, const simd::ActBlockQ8* x, int64_t n, float* out) {
    q4_group_avx2<P, kPrefetch>(g, steps, x, n, out);
  }
};
template <gguf::TensorType T>
struct Avx2KQuantKernel {
  static constexpr int kMaxP = T == gguf::TensorType::Q4_K   ? kSharedMaxP
                                : T == gguf::TensorType::Q6_K ? kSharedQ6MaxP
                                                              : 16;
  static int64_t steps(const Matrix& w) { return w.cols / static_cast<int64_t>(kQK_K); }
  static size_t group_bytes(const Matrix& w) { return static_cast<size_t>(steps(w)) * k_super_bytes(T); }
  template <int P, bool kPrefetch>
  static void run(const uint8_t* g, int64_t steps, const simd::ActBlockQ8* x, int64_t n, float* out) {
    k_group_avx2<T, P, kPrefetch>(g, steps, x, n, out);
  }
};

// Kernel::run for a P known only at run time (1 <= p <= Kernel::kMaxP): a
// verify pass of K + 1 rows is one pass over the weights at P = K + 1, not
// powers of two (5 = 4 + 1 decoded the codes twice).
template <typename Kernel, int P = 1>
void run_p(int p, bool prefetch, const uint8_t* g, int64_t steps, const simd::ActBlockQ8* x, int64_t n, float* out) {
  if (p == P) {
    if (prefetch) Kernel::template run<P, true>(g, steps, x, n, out);
    else Kernel::template run<P, false>(g, steps, x, n, out);
  } else if constexpr (P < Kernel::kMaxP) {
    run_p<Kernel, P + 1>(p, prefetch, g, steps, x, n, out);
  }
}

template <typename Kernel>
void rows_packed_typed(const Matrix& w, const simd::ActBlockQ8* x, int64_t n, float* y, int64_t g0, int64_t g1) {
  const int64_t steps = Kernel::steps(w);
  const size_t group_bytes = Kernel::group_bytes(w);
  float tmp[16 * kPackRows];
  for (int64_t g = g0; g < g1; ++g) {
    const uint8_t* gdata = w.packed + static_cast<size_t>(g) * group_bytes;
    const int64_t r0 = g * kPackRows;
    // Up to kMaxP positions share each pass over the group's weights; only
    // the first pass reads them from memory (and prefetches).
    for (int64_t i = 0; i < n;) {
      const int P = static_cast<int>(std::min<int64_t>(n - i, Kernel::kMaxP));
      run_p<Kernel>(P, i == 0, gdata, steps, x + i, n, tmp);
      for (int p = 0; p < P; ++p)
        std::memcpy(&y[(i + p) * w.rows + r0], tmp + p * kPackRows, kPackRows * sizeof(float));
      i += P;
    }
  }
}

}  // namespace
#endif

void rows_packed(const Matrix& w, const simd::ActBlockQ8* x, int64_t n, float* y, int64_t g0, int64_t g1) {
#if defined(__x86_64__)
  using gguf::TensorType;
  if (!packed_available(w.type)) throw Error("rows_packed: this CPU has no packed kernel for " +
                                             std::string(gguf::type_name(w.type)));
  if (packed_isa() == PackedIsa::kAvx2) {
    switch (w.type) {
      case TensorType::Q4_K: return rows_packed_typed<Avx2KQuantKernel<TensorType::Q4_K>>(w, x, n, y, g0, g1);
      case TensorType::Q5_K: return rows_packed_typed<Avx2KQuantKernel<TensorType::Q5_K>>(w, x, n, y, g0, g1);
      case TensorType::Q6_K: return rows_packed_typed<Avx2KQuantKernel<TensorType::Q6_K>>(w, x, n, y, g0, g1);
      default: return rows_packed_typed<Avx2Q4Kernel>(w, x, n, y, g0, g1);
    }
  }
  switch (w.type) {
    case TensorType::Q4_0: return rows_packed_typed<LegacyKernel<true>>(w, x, n, y, g0, g1);
    case TensorType::Q4_K: return rows_packed_typed<KQuantKernel<TensorType::Q4_K>>(w, x, n, y, g0, g1);
    case TensorType::Q5_K: return rows_packed_typed<KQuantKernel<TensorType::Q5_K>>(w, x, n, y, g0, g1);
    case TensorType::Q6_K: return rows_packed_typed<KQuantKernel<TensorType::Q6_K>>(w, x, n, y, g0, g1);
    default: return rows_packed_typed<LegacyKernel<false>>(w, x, n, y, g0, g1);
  }
#else
  (void)w, (void)x, (void)n, (void)y, (void)g0, (void)g1;
  throw Error("packed kernels need x86-64 with AVX2 or AVX512-VNNI");
#endif
}

}  // namespace specsteer::kernels
