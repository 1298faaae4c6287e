#pragma once
// Internal state of a Tokenizer (not part of the public API).
#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace specsteer {

// llama.cpp's token attribute bits (a token can hold several, e.g. a NORMAL
// "</s>" that the EOG rules promote to CONTROL).
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
};

// text -> token id over the vocabulary strings: open addressing with linear
// probing on a flat array (a node-based map costs a cache miss per probe,
// which dominated loading 150k-token vocabularies). Duplicate texts: the
// last id wins, as in llama.cpp's token_to_id.
class TokenIndex {
 public:
  void build(const std::vector<std::string>& texts);
  int32_t find(std::string_view s) const {
    if (slots_.empty()) return -1;
    const uint64_t h = std::hash<std::string_view>{}(s);
    const uint32_t tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& sl = slots_[i];
      if (sl.id < 0) return -1;
      if (sl.tag == tag && (*texts_)[sl.id] == s) return sl.id;
    }
  }

 private:
  struct Slot {
    uint32_t tag;
    int32_t id;  // -1: empty
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  const std::vector<std::string>* texts_ = nullptr;
};

// (left, right) symbol pair -> (rank, merged symbol), open addressing.
class MergeTable {
 public:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  void reserve(size_t n);
  // Keeps the first entry for a pair (llama.cpp's bpe_ranks.emplace).
  void insert(int32_t l, int32_t r, Merge m);
  const Merge* find(int32_t l, int32_t r) const {
    if (slots_.empty()) return nullptr;
    const uint64_t k = key(l, r);
    for (size_t i = hash(k) & mask_;; i = (i + 1) & mask_) {
      const Slot& sl = slots_[i];
      if (sl.m.rank < 0) return nullptr;
      if (sl.key == k) return &sl.m;
    }
  }

 private:
  static uint64_t key(int32_t l, int32_t r) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  }
  static size_t hash(uint64_t k) { return static_cast<size_t>((k * 0x9E3779B97F4A7C15ull) >> 17); }
  struct Slot {
    uint64_t key;
    Merge m;  // rank -1: empty
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

// A compiled PCRE2 pattern (shared read-only by all threads).
class Regex {
 public:
  explicit Regex(const std::string& pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  // Splits each piece into matches and the gaps between them, as llama.cpp's
  // unicode_regex_split does for one expression.
  void split(const std::vector<std::string_view>& in, std::vector<std::string_view>& out) const;

 private:
  void* code_ = nullptr;  // pcre2_code_8*
  std::string pattern_;
};

struct Tokenizer::Impl {
  std::string model;  // "llama" | "gpt2"
  std::string pre;
  bool spm = false;

  std::vector<std::string> text;  // id -> vocabulary string
  std::vector<float> score;
  std::vector<uint32_t> attr;
  std::vector<std::string> piece;  // id -> bytes (token_bytes)
  TokenIndex token_to_id;

  int32_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1;
  bool add_bos = false, add_eos = false, add_space_prefix = false, ignore_merges = false;
  std::vector<uint8_t> eog;           // id -> 1 when end-of-generation
  std::vector<int32_t> special_ids;   // CONTROL/USER_DEFINED/UNKNOWN, longest text first
  ChatFormat chat = ChatFormat::None;

  // SPM: byte -> <0xNN> token (or the single-byte token, or -1).
  std::array<int32_t, 256> spm_byte_token{};

  // BPE works on symbol ids: vocabulary ids, plus ids >= n_vocab for strings
  // that occur in merges but are not tokens themselves.
  std::vector<std::unique_ptr<Regex>> regexes;
  std::array<int32_t, 256> byte_sym{};  // byte -> symbol of its GPT-2 character
  MergeTable merges;  // (left symbol, right symbol) -> rank and merged symbol
  std::deque<std::string> extra_text;          // symbol id - n_vocab -> string
  std::unordered_map<std::string_view, int32_t> extra_id;

  int n_vocab() const { return static_cast<int>(text.size()); }
  int32_t find_token(std::string_view s) const { return token_to_id.find(s); }
  int32_t symbol_of(std::string_view s);  // load time: find or create
  const std::string& symbol_text(int32_t sym) const {
    return sym < n_vocab() ? text[sym] : extra_text[sym - n_vocab()];
  }

  void load_bpe(const gguf::File& f);
  void load_special(const gguf::File& f);
  std::string make_piece(int32_t id) const;

  void spm_tokenize(std::string_view raw, bool space_prefix, std::vector<int32_t>& out) const;
  void bpe_tokenize(std::string_view raw, std::vector<int32_t>& out) const;
};

}  // namespace specsteer
