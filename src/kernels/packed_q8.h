#pragma once
// Q8_0 weights repacked 16 rows at a time for AVX512-VNNI: one 512-bit
// vector holds 4 consecutive weights of each of 16 rows (offset by 128 to
// unsigned), so one `vpdpbusd` against 4 broadcast activations advances 16
// row dot products at once and each block's scale is applied to 16 rows with
// one FMA. Same byte count as Q8_0 (544 bytes per 16 rows x 32 columns).
#include <cstddef>
#include <cstdint>

#include "kernels/matmul.h"
#include "kernels/simd.h"

namespace specsteer::kernels {

inline constexpr int64_t kPackRows = 16;
inline constexpr size_t kPackedBlockBytes = 2 * kPackRows + 32 * kPackRows;  // fp16 scales + int8 weights

// True when this CPU runs the packed kernel (x86-64 with AVX512-VNNI) and
// SPECSTEER_NO_REPACK is not set in the environment.
bool packed_q8_available();
// Bytes of the packed copy of a Q8_0 matrix; 0 when it cannot be packed
// (rows not a multiple of 16 or not Q8_0).
size_t packed_q8_bytes(const Matrix& w);
// Writes the packed copy of w (Q8_0, rows % 16 == 0) to dst.
void pack_q8_0(const Matrix& w, uint8_t* dst);
// y[i][r] for the rows of groups [g0, g1) (16 rows each), all n positions.
// x: the quantized activations block-major, block b of position i at
// x[b * n + i] (simd::QuantizedActs::blocks with block_stride n).
void rows_packed_q8(const Matrix& w, const simd::ActBlockQ8* x, int64_t n, float* y, int64_t g0, int64_t g1);

}  // namespace specsteer::kernels
