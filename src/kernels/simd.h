#pragma once
// Highway kernels with runtime dispatch (AVX-512/VNNI, AVX2, NEON, ...):
// one binary picks the best instruction set of the machine it runs on.
#include <cstddef>
#include <cstdint>

#include "kernels/matmul.h"

namespace specsteer::kernels::simd {

// One block of 32 activations in the form the packed VNNI kernel reads.
struct ActBlockQ8 {
  int8_t q[32];
  float d;            // fp16-rounded scale
  int32_t offset_q8;  // -128 * sum(q): cancels packed Q8_0 codes' +128 offset
  int32_t offset_q4;  // -8 * sum(q): cancels packed Q4_0 codes' +8 offset
  int32_t sum_lo;     // sum(q[0..15]): Q6_K's 16-wide sub-blocks cancel their +32 offset per half
};

// Activations quantized like llama.cpp's Q8_0 path: per block of 32,
// d = amax/127 (stored rounded to fp16), q = round-half-even(x / d).
struct QuantizedActs {
  // Row-major form for the Highway kernels, widened to int16 so every
  // weight row reuses them without work (both may be null).
  int16_t* q = nullptr;   // [n][cols]
  float* d = nullptr;     // [n][cols/32], the fp16-rounded scales
  int64_t cols = 0;
  // Optional block-major form for the packed VNNI kernel: block b of
  // position i at blocks[b * block_stride + i], so the positions of one
  // block lie side by side and the kernel addresses them from one pointer.
  ActBlockQ8* blocks = nullptr;
  int64_t block_stride = 0;
};
void quantize_acts_q8(const float* x, int64_t n, int64_t cols, QuantizedActs& out);

float dot_f32(const float* a, const float* b, size_t n);
// out = x / rms(x) * w (sum of squares in double; out may alias x).
void rms_norm(const float* x, const float* w, float* out, size_t n, float eps);
// gate[i] = silu(gate[i]) * up[i] (the SwiGLU feed-forward's elementwise step).
void silu_mul(float* gate, const float* up, size_t n);
// Attention over a KV cache: q . k with k in F16 bits, and acc += p * v.
float dot_f16(const float* a, const uint16_t* b, size_t n);
void axpy_f16(float p, const uint16_t* v, float* acc, size_t n);
void axpy_f32(float p, const float* v, float* acc, size_t n);
// One query head over len cached positions whose K/V rows are `stride`
// elements apart: out[hd] = softmax(scale * q.k_t) . v_t (scores: len scratch).
void attend_head(const float* q, const float* k, const float* v, size_t stride, int len, int hd, float scale,
                 float* scores, float* out);
void attend_head(const float* q, const uint16_t* k, const uint16_t* v, size_t stride, int len, int hd, float scale,
                 float* scores, float* out);

// y[i][r] for rows [r0, r1) and all n positions; each weight row is loaded
// once and multiplied against up to 4 positions held in registers.
void rows_float(const Matrix& w, const float* x, int64_t n, float* y, int64_t r0, int64_t r1);  // F32/F16/BF16
void rows_q8_0(const Matrix& w, const QuantizedActs& x, int64_t n, float* y, int64_t r0, int64_t r1);
void rows_q4_0(const Matrix& w, const QuantizedActs& x, int64_t n, float* y, int64_t r0, int64_t r1);

// Dequantizes n elements (whole blocks) of a Q8_0/Q4_0/K-quant row with the
// reference arithmetic, vectorized for the machine; false for other types.
bool dequantize_blocks(gguf::TensorType t, const uint8_t* src, float* dst, size_t n);

// fp16 bits -> float for all 65536 values (built once): one L2 load per block
// scale instead of a conversion call in the innermost loops.
const float* fp16_table();

// Name of the instruction set the dispatcher chose (for bench output).
const char* target_name();

}  // namespace specsteer::kernels::simd
