#pragma once
// Q8_0 and Q4_0 weights repacked 16 rows at a time for AVX512-VNNI: per
// block of 32 columns, one 512-bit vector holds 4 consecutive weights of each
// of 16 rows as unsigned bytes, so one `vpdpbusd` against 4 broadcast
// activations advances 16 row dot products at once and each block's scale is
// applied to 16 rows with one FMA. Same byte count as the GGUF layout.
//   Q8_0: weight + 128, 8 vectors (544 bytes per 16 rows x 32 columns).
//   Q4_0: the 4-bit codes (weight + 8), two per byte: the low nibbles form
//         vectors 0-3 and the high nibbles vectors 4-7 (288 bytes).
// The offset (128 or 8) times the block's activation sum is subtracted once
// per position (simd::ActBlockQ8), not once per row. The K-quants use the
// same code vectors per 32 columns (packed.cpp). On AVX2 the same layout is
// read as two 256-bit halves (rows 0-7, 8-15) by `vpmaddubsw`.
#include <cstddef>
#include <cstdint>

#include "kernels/matmul.h"
#include "kernels/simd.h"

namespace specsteer::kernels {

inline constexpr int64_t kPackRows = 16;

// Which packed kernels this CPU runs. AVX512-VNNI runs every packed type;
// AVX2 (with FMA and F16C) runs the types whose codes are below 64 (Q4_0 and
// the K-quants), where vpmaddubsw's int16 pair sums cannot saturate.
// SPECSTEER_NO_REPACK in the environment turns packing off;
// SPECSTEER_PACKED_ISA=avx2 picks the AVX2 kernels on a VNNI CPU (tests).
enum class PackedIsa { kNone, kAvx2, kAvx512Vnni };
PackedIsa packed_isa();
// True when this CPU has a packed kernel for some type.
bool packed_available();
// True when this CPU has a packed kernel for weights of type t.
bool packed_available(gguf::TensorType t);
// Bytes of one packed block (16 rows x 32 columns) of type t; 0 if t has no
// packed form.
size_t packed_block_bytes(gguf::TensorType t);
// Bytes of the packed copy of w; 0 when it cannot be packed (type without a
// packed form, rows not a multiple of 16, columns not whole blocks) or this
// CPU has no packed kernel for its type (packed_available(w.type)).
size_t packed_bytes(const Matrix& w);
// Writes the packed copy of w (packed_bytes(w) > 0) to dst.
void pack_weights(const Matrix& w, uint8_t* dst);
// y[i][r] for the rows of groups [g0, g1) (16 rows each), all n positions.
// x: the quantized activations block-major, block b of position i at
// x[b * n + i] (simd::QuantizedActs::blocks with block_stride n).
void rows_packed(const Matrix& w, const simd::ActBlockQ8* x, int64_t n, float* y, int64_t g0, int64_t g1);

}  // namespace specsteer::kernels
