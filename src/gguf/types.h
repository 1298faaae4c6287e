#pragma once
// ggml tensor element types as GGUF stores them, with their block geometry.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace specsteer::gguf {

enum class TensorType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  BF16 = 30,
};

struct TypeTraits {
  std::string_view name;
  uint32_t block_elems;  // elements per block (1 for plain float types)
  uint32_t block_bytes;  // bytes per block
  bool supported;        // can the engine compute with it
};

// Traits for a raw type id; returns nullptr for ids this reader does not know.
const TypeTraits* type_traits(uint32_t type_id);
inline const TypeTraits& traits(TensorType t) { return *type_traits(static_cast<uint32_t>(t)); }
std::string_view type_name(TensorType t);
// Parses "f32", "q8_0", ... (case-insensitive); throws specsteer::Error.
TensorType parse_type_name(std::string_view name);

// Bytes needed for one row of n elements (n must be a multiple of block_elems).
inline size_t row_bytes(TensorType t, size_t n) {
  const auto& tr = traits(t);
  return n / tr.block_elems * tr.block_bytes;
}

}  // namespace specsteer::gguf
