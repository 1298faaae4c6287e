#pragma once
// One vocabulary seen as byte strings, for pairing models whose vocabularies
// differ (cross-tokenizer SpecSteer, paper appendix A.4): the tokens whose
// bytes start with a prefix (a contiguous range of the tokens sorted by their
// bytes), the tokens that spell exactly some bytes, and a tokenization of
// arbitrary bytes (text that may end inside a UTF-8 character).
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace specsteer {

class Tokenizer;

class ByteVocab {
 public:
  explicit ByteVocab(const Tokenizer& tok);
  // A vocabulary given as each id's bytes ("" = outside the byte space), for
  // tests; spell() then splits by longest match.
  explicit ByteVocab(std::vector<std::string> bytes_per_id);
  ByteVocab(const ByteVocab&) = delete;
  ByteVocab& operator=(const ByteVocab&) = delete;

  int n_vocab() const { return static_cast<int>(bytes_.size()); }
  // Tokens that spell text: normal tokens (byte tokens included) with at
  // least one byte. Control, added, unused and end-of-generation tokens are
  // outside the byte space.
  bool spells(int32_t id) const { return id >= 0 && static_cast<size_t>(id) < bytes_.size() && !bytes_[id].empty(); }
  const std::string& bytes(int32_t id) const { return bytes_.at(static_cast<size_t>(id)); }
  // Every spelling token, ordered by its bytes (ties by id).
  std::span<const int32_t> sorted() const { return sorted_; }
  const std::string& sorted_bytes(size_t pos) const { return bytes_[static_cast<size_t>(sorted_[pos])]; }
  // Positions [lo, hi) in sorted() of the tokens whose bytes start with
  // `prefix` (every token when it is empty). Tokens spelling `prefix` itself
  // come first in that range.
  std::pair<size_t, size_t> with_prefix(std::string_view prefix) const;
  // Number of tokens at the head of with_prefix(s) that spell exactly s.
  size_t exact_count(std::string_view s) const;
  // A tokenization of arbitrary bytes: each maximal valid UTF-8 run as the
  // tokenizer encodes it (no special tokens parsed) when that decodes back
  // to the same bytes, else longest-match; a byte of an incomplete or
  // invalid sequence as the token spelling it. Throws Error naming the byte
  // offset when no token spells a byte.
  std::vector<int32_t> spell(std::string_view text) const;

 private:
  void longest_match(std::string_view text, size_t offset, std::vector<int32_t>& out) const;
  void sort_ids();
  const Tokenizer* tok_ = nullptr;
  std::vector<std::string> bytes_;  // per id; "" outside the byte space
  std::vector<int32_t> sorted_;
};

}  // namespace specsteer
