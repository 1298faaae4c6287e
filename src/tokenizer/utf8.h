#pragma once
// UTF-8 and GPT-2 byte<->unicode helpers shared by the tokenizers.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace specsteer::utf8 {

// Result of looking at one sequence starting at s[i].
enum class Step { Ok, Invalid, Incomplete };
// Ok: *len = bytes of the code point. Invalid: *len = bytes of the maximal
// invalid subpart (>= 1). Incomplete: the input ends inside a sequence that
// could still become valid (*len = bytes present).
Step next(std::string_view s, size_t i, size_t* len, uint32_t* cp = nullptr);

// Byte offset of the first byte that is not part of valid UTF-8, or npos.
size_t first_invalid(std::string_view s);

// Length of the sequence a lead byte announces (1 for stray bytes), as
// llama.cpp's unicode_len_utf8.
inline size_t lead_len(unsigned char c) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[c >> 4];
}

void append_cp(std::string& out, uint32_t cp);

// GPT-2's reversible byte -> printable code point mapping.
struct ByteMap {
  std::array<uint32_t, 256> byte_to_cp{};
  std::array<std::string, 256> byte_to_utf8;
  std::array<int16_t, 512> cp_to_byte{};  // -1 when the code point is no byte's image
  ByteMap();
};
const ByteMap& gpt2_bytes();

}  // namespace specsteer::utf8
