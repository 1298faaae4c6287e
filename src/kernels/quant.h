#pragma once
// Tensor element formats exactly as ggml/GGUF lay them out, with reference
// (scalar, obviously-correct) conversions. Fast kernels elsewhere use the
// block structs below and are tested against dequantize_row / dot_row_reference.
#include <cstddef>
#include <cstdint>

#include "gguf/types.h"

namespace specsteer::kernels {

// IEEE binary16 and bfloat16 conversions; fp32 -> 16-bit rounds to nearest
// even, keeps signed zero, subnormals, infinities and (quieted) NaN.
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);

inline constexpr size_t kQK8_0 = 32;
inline constexpr size_t kQK4_0 = 32;
inline constexpr size_t kQK_K = 256;      // super-block of the K-quants
inline constexpr size_t kKScaleSize = 12;  // packed 6-bit scales+mins of Q4_K/Q5_K

// value = qs[i] * d
struct BlockQ8_0 {
  uint16_t d;  // fp16
  int8_t qs[kQK8_0];
};
// value = ((nibble) - 8) * d; byte j holds element j (low) and j+16 (high)
struct BlockQ4_0 {
  uint16_t d;  // fp16
  uint8_t qs[kQK4_0 / 2];
};
// 8 sub-blocks of 32: value = d*sc[s]*q - dmin*m[s], q in 0..15; sc/m are
// 6-bit, packed by get_scale_min_k4. qs: 4 groups of 32 bytes, group g holds
// sub-block 2g in the low nibbles and 2g+1 in the high nibbles.
struct BlockQ4_K {
  uint16_t d;     // fp16 scale of the scales
  uint16_t dmin;  // fp16 scale of the mins
  uint8_t scales[kKScaleSize];
  uint8_t qs[kQK_K / 2];
};
// As Q4_K with a fifth bit: bit (2g) of qh[l] belongs to element l of
// sub-block 2g, bit (2g+1) to element l of sub-block 2g+1.
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
// 16 sub-blocks of 16: value = d * scales[s] * (q - 32), q in 0..63 from 4 low
// bits in ql and 2 high bits in qh (two halves of 128, see dequantize_row).
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;  // fp16
};
// Formats computed through the reference (dequantize-then-float) path only.
// value = nibble * d + m (byte j: element j low, j+16 high)
struct BlockQ4_1 {
  uint16_t d, m;  // fp16
  uint8_t qs[kQK4_0 / 2];
};
// value = ((nibble | fifth bit << 4) - 16) * d; bit j of qh belongs to element j
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQK4_0 / 2];
};
// value = (nibble | fifth bit << 4) * d + m
struct BlockQ5_1 {
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[kQK4_0 / 2];
};
// 16 sub-blocks of 16: value = d*(sc & 15)*q - dmin*(sc >> 4), q in 0..3
// (2 bits of qs, four sub-block rows per byte column).
struct BlockQ2_K {
  uint8_t scales[kQK_K / 16];
  uint8_t qs[kQK_K / 4];
  uint16_t d, dmin;
};
// 16 sub-blocks of 16: value = d*(sc - 32)*(q - (hmask bit ? 0 : 4)), q in
// 0..3 from qs, 6-bit scales packed in 12 bytes.
struct BlockQ3_K {
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[12];
  uint16_t d;
};
static_assert(sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 && sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);

// Unpacks the 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block.
inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Elements per block and bytes per block for the types this module handles
// (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K with fast kernels; Q4_1,
// Q5_0, Q5_1, Q2_K, Q3_K dequantized for the float path); Error for any
// other type.
size_t block_elems(gguf::TensorType t);
size_t block_bytes(gguf::TensorType t);
bool quant_supported(gguf::TensorType t);

// n must be a multiple of the type's block size; throws Error otherwise (and
// for unsupported types).
void dequantize_row(gguf::TensorType t, const void* src, float* dst, size_t n);
// Reference quantizers. Q8_0 and Q4_0 follow ggml's reference rounding; the
// K-quants search per-sub-block scales (not bit-identical to ggml, but the
// output is a valid block that dequantize_row decodes exactly).
void quantize_row(gguf::TensorType t, const float* src, void* dst, size_t n);
// sum_i dequant(row)[i] * x[i], accumulated in double.
float dot_row_reference(gguf::TensorType t, const void* row, const float* x, size_t n);

}  // namespace specsteer::kernels
