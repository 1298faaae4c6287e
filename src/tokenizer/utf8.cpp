#include "tokenizer/utf8.h"

#include "tokenizer/tokenizer.h"

namespace specsteer::utf8 {

Step next(std::string_view s, size_t i, size_t* len, uint32_t* cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    *len = 1;
    if (cp) *cp = b0;
    return Step::Ok;
  }
  size_t n;
  uint32_t v;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2, v = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3, v = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;  // no overlongs
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4, v = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;  // <= U+10FFFF
  } else {
    *len = 1;
    return Step::Invalid;
  }
  for (size_t k = 1; k < n; ++k) {
    if (i + k >= s.size()) {
      *len = k;
      return Step::Incomplete;
    }
    const auto b = static_cast<unsigned char>(s[i + k]);
    const unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) {
      *len = k;
      return Step::Invalid;
    }
    v = (v << 6) | (b & 0x3F);
  }
  *len = n;
  if (cp) *cp = v;
  return Step::Ok;
}

size_t first_invalid(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    // Fast path for ASCII runs.
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    if (next(s, i, &len) != Step::Ok) return i;
    i += len;
  }
  return std::string_view::npos;
}

void append_cp(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

ByteMap::ByteMap() {
  cp_to_byte.fill(-1);
  // Printable bytes map to themselves; the others to 256, 257, ... in order.
  uint32_t n = 0;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    byte_to_cp[b] = printable ? b : 256 + n++;
    cp_to_byte[byte_to_cp[b]] = static_cast<int16_t>(b);
    append_cp(byte_to_utf8[b], byte_to_cp[b]);
  }
}

const ByteMap& gpt2_bytes() {
  static const ByteMap m;
  return m;
}

}  // namespace specsteer::utf8

namespace specsteer {

std::string Utf8Stream::push(std::string_view bytes) {
  pending_.append(bytes);
  std::string out;
  size_t i = 0;
  while (i < pending_.size()) {
    size_t len;
    const auto st = utf8::next(pending_, i, &len);
    if (st == utf8::Step::Incomplete) break;
    if (st == utf8::Step::Ok) {
      out.append(pending_, i, len);
    } else {
      out += "\xEF\xBF\xBD";
    }
    i += len;
  }
  pending_.erase(0, i);
  return out;
}

std::string Utf8Stream::finish() {
  std::string out = pending_.empty() ? std::string() : std::string("\xEF\xBF\xBD");
  pending_.clear();
  return out;
}

}  // namespace specsteer
