// Byte-level BPE as llama.cpp's llm_tokenizer_bpe: split the text with the
// pre-tokenizer regexes (PCRE2, UTF + UCP), map each word's bytes to GPT-2's
// printable characters, then merge adjacent symbols by lowest merge rank
// (leftmost on ties) with a priority queue. Symbols are integer ids, so the
// merge table is a hash map of id pairs.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cstdio>
#include <queue>
#include <vector>

#include "common/error.h"
#include "tokenizer/impl.h"
#include "tokenizer/utf8.h"

namespace specsteer {
namespace {

// llama.cpp's expressions for each pre-tokenizer (the (?i:...) of the
// original HF patterns is spelled out with character classes).
const char* const kContractions = R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]))";
const std::string kLlama3 = std::string(kContractions) +
                            R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const std::string kQwen2 = std::string(kContractions) +
                           R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const std::string kQwen35 =
    std::string(kContractions) +
    R"(|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const std::string kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";

}  // namespace

Regex::Regex(const std::string& pattern) : pattern_(pattern) {
  int err = 0;
  PCRE2_SIZE erroff = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP, &err, &erroff, nullptr);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw Error("tokenizer: cannot compile pre-tokenizer regex at offset " + std::to_string(erroff) + ": " +
                reinterpret_cast<const char*>(msg));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional speed-up; the interpreter is the fallback
  code_ = code;
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

void Regex::split(const std::vector<std::string_view>& in, std::vector<std::string_view>& out) const {
  auto* code = static_cast<pcre2_code*>(code_);
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
  if (!md) throw Error("tokenizer: out of memory for regex match data");
  struct Free {
    pcre2_match_data* md;
    ~Free() { pcre2_match_data_free(md); }
  } guard{md};
  for (std::string_view piece : in) {
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
    size_t pos = 0, last = 0;
    while (pos < piece.size()) {
      // The input was validated as UTF-8 before splitting.
      int rc = pcre2_match(code, subject, piece.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(code, subject, piece.size(), pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        throw Error("tokenize: pre-tokenizer regex failed near byte " + std::to_string(pos) + " of a " +
                    std::to_string(piece.size()) + "-byte piece: " + reinterpret_cast<const char*>(msg));
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      const size_t s = ov[0], e = ov[1];
      if (e <= s) {  // empty match (none of our patterns has one): step one character
        pos = s + utf8::lead_len(static_cast<unsigned char>(piece[s]));
        continue;
      }
      if (s > last) out.push_back(piece.substr(last, s - last));  // unmatched gap is a word too
      out.push_back(piece.substr(s, e - s));
      last = pos = e;
    }
    if (last < piece.size()) out.push_back(piece.substr(last));
  }
}

void MergeTable::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  slots_.assign(cap, Slot{0, {-1, -1}});
  mask_ = cap - 1;
  size_ = 0;
}

void MergeTable::insert(int32_t l, int32_t r, Merge m) {
  if ((size_ + 1) * 2 > slots_.size()) {  // grow (only when reserve() undercounted)
    std::vector<Slot> old;
    old.swap(slots_);
    reserve(std::max<size_t>(16, old.size()));
    for (const Slot& sl : old)
      if (sl.m.rank >= 0) insert(static_cast<int32_t>(sl.key >> 32), static_cast<int32_t>(sl.key & 0xFFFFFFFFu), sl.m);
  }
  const uint64_t k = key(l, r);
  for (size_t i = hash(k) & mask_;; i = (i + 1) & mask_) {
    Slot& sl = slots_[i];
    if (sl.m.rank < 0) {
      sl = Slot{k, m};
      ++size_;
      return;
    }
    if (sl.key == k) return;
  }
}

int32_t Tokenizer::Impl::symbol_of(std::string_view s) {
  if (int32_t id = find_token(s); id >= 0) return id;
  if (auto it = extra_id.find(s); it != extra_id.end()) return it->second;
  extra_text.emplace_back(s);
  const int32_t id = n_vocab() + static_cast<int32_t>(extra_text.size() - 1);
  extra_id.emplace(extra_text.back(), id);
  return id;
}

void Tokenizer::Impl::load_bpe(const gguf::File& f) {
  // Pre-tokenizer, by llama.cpp's names for it.
  std::vector<std::string> exprs;
  if (pre.empty() || pre == "default") {
    if (pre.empty())
      std::fprintf(stderr, "warning: %s: no tokenizer.ggml.pre, using llama.cpp's 'default' BPE pre-tokenizer\n",
                   f.path().c_str());
    exprs = {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"};
  } else if (pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe") {
    exprs = {kLlama3};
    ignore_merges = true;
    add_bos = true;
  } else if (pre == "qwen2" || pre == "deepseek-r1-qwen") {
    exprs = {kQwen2};
  } else if (pre == "qwen35") {
    exprs = {kQwen35};
  } else if (pre == "gpt-2" || pre == "phi-2") {
    exprs = {kGpt2};
  } else {
    throw Error(f.path() + ": tokenizer.ggml.pre = '" + pre +
                "' is not a supported pre-tokenizer (supported: qwen2, qwen35, llama-bpe, llama3, gpt-2, default)");
  }
  for (const auto& e : exprs) regexes.push_back(std::make_unique<Regex>(e));

  const auto& bm = utf8::gpt2_bytes();
  for (int b = 0; b < 256; ++b) byte_sym[b] = symbol_of(bm.byte_to_utf8[b]);

  constexpr const char* kKeyMerges = "tokenizer.ggml.merges";
  const gguf::Value* mv = f.find(kKeyMerges);
  if (!mv) throw Error(f.path() + ": missing metadata key " + kKeyMerges + " (required by gpt2 tokenizers)");
  const std::vector<std::string_view> lines = mv->as_strings(kKeyMerges);
  merges.reserve(lines.size());
  std::string joined;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    const size_t sp = line.find(' ', 1);
    if (sp == std::string_view::npos) continue;  // llama.cpp keeps it as ("", ""), which never matches
    const std::string_view first = line.substr(0, sp), second = line.substr(sp + 1);
    const int32_t l = symbol_of(first), r = symbol_of(second);
    joined.assign(first);
    joined.append(second);
    const int32_t res = symbol_of(joined);
    merges.insert(l, r, {static_cast<int32_t>(i), res});
  }
}

void Tokenizer::Impl::bpe_tokenize(std::string_view raw, std::vector<int32_t>& out) const {
  std::vector<std::string_view> words{raw}, next;
  for (const auto& re : regexes) {
    next.clear();
    re->split(words, next);
    words.swap(next);
  }

  const auto& bm = utf8::gpt2_bytes();
  struct Sym {
    int32_t id;
    int prev, next;
  };
  struct Bigram {
    int32_t rank;
    int left, right;
    int32_t lid, rid, result;
  };
  auto cmp = [](const Bigram& a, const Bigram& b) {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  };
  std::vector<Sym> sym;
  std::vector<Bigram> heap_storage;
  std::string mapped;

  for (std::string_view w : words) {
    if (ignore_merges) {  // llama-bpe: a word that is a whole token is taken as is
      mapped.clear();
      for (char c : w) mapped += bm.byte_to_utf8[static_cast<unsigned char>(c)];
      if (int32_t id = find_token(mapped); id >= 0) {
        out.push_back(id);
        continue;
      }
    }
    if (w.empty()) continue;
    sym.clear();
    for (size_t i = 0; i < w.size(); ++i) {
      const int idx = static_cast<int>(i);
      sym.push_back({byte_sym[static_cast<unsigned char>(w[i])], idx - 1, i + 1 == w.size() ? -1 : idx + 1});
    }
    heap_storage.clear();
    std::priority_queue<Bigram, std::vector<Bigram>, decltype(cmp)> queue(cmp, std::move(heap_storage));
    auto add = [&](int l, int r) {
      if (l < 0 || r < 0) return;
      const MergeTable::Merge* mg = merges.find(sym[l].id, sym[r].id);
      if (!mg) return;
      queue.push({mg->rank, l, r, sym[l].id, sym[r].id, mg->result});
    };
    for (int i = 1; i < static_cast<int>(sym.size()); ++i) add(i - 1, i);
    while (!queue.empty()) {
      const Bigram b = queue.top();
      queue.pop();
      Sym& l = sym[b.left];
      Sym& r = sym[b.right];
      // Stale: a side was merged away (id -1) or changed since it was queued.
      if (l.id < 0 || r.id < 0 || l.id != b.lid || r.id != b.rid) continue;
      l.id = b.result;
      r.id = -1;
      l.next = r.next;
      if (r.next >= 0) sym[r.next].prev = b.left;
      add(l.prev, b.left);
      add(b.left, l.next);
    }
    for (int i = 0; i != -1; i = sym[i].next) {
      const int32_t id = sym[i].id;
      if (id < n_vocab()) {
        out.push_back(id);
        continue;
      }
      // Not a token: llama.cpp looks each byte of the symbol's string up as a
      // one-byte token and drops the bytes that are not.
      for (char c : symbol_text(id)) {
        if (int32_t t = find_token(std::string_view(&c, 1)); t >= 0) out.push_back(t);
      }
    }
  }
}

}  // namespace specsteer
