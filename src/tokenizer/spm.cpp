// SentencePiece-style tokenization as llama.cpp's llm_tokenizer_spm: start
// from UTF-8 characters, repeatedly merge the adjacent pair whose concatenation
// is the vocabulary token with the highest score (leftmost on ties), then map
// leftovers that are not tokens to <0xNN> byte tokens.
#include <queue>
#include <vector>

#include "common/error.h"
#include "tokenizer/impl.h"
#include "tokenizer/utf8.h"

namespace specsteer {

void Tokenizer::Impl::spm_tokenize(std::string_view raw, bool space_prefix, std::vector<int32_t>& out) const {
  std::string s;
  s.reserve(raw.size() * 3 / 2 + 3);
  if (space_prefix) s += "\xE2\x96\x81";
  for (char c : raw) {
    if (c == ' ') {
      s += "\xE2\x96\x81";
    } else {
      s += c;
    }
  }
  if (s.empty()) return;

  struct Sym {
    int prev, next;
    size_t off, n;
  };
  std::vector<Sym> sym;
  for (size_t off = 0; off < s.size();) {
    const size_t len = std::min(s.size() - off, utf8::lead_len(static_cast<unsigned char>(s[off])));
    const int idx = static_cast<int>(sym.size());
    sym.push_back({idx - 1, off + len == s.size() ? -1 : idx + 1, off, len});
    off += len;
  }

  struct Bigram {
    int left, right;
    float score;
    size_t size;
  };
  auto cmp = [](const Bigram& l, const Bigram& r) {
    return l.score < r.score || (l.score == r.score && l.left > r.left);
  };
  std::priority_queue<Bigram, std::vector<Bigram>, decltype(cmp)> queue(cmp);
  auto try_add = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    const std::string_view t(s.data() + sym[l].off, sym[l].n + sym[r].n);
    const int32_t id = find_token(t);
    if (id < 0) return;
    queue.push({l, r, score[id], t.size()});
  };
  for (int i = 1; i < static_cast<int>(sym.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Sym& l = sym[b.left];
    Sym& r = sym[b.right];
    // Stale: one side was merged away or grew since the bigram was queued.
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }

  // Every merged symbol is a token; a single character that is not becomes
  // its bytes (llama.cpp's resegment() reduces to this for valid UTF-8).
  for (int i = 0; i != -1; i = sym[i].next) {
    const std::string_view t(s.data() + sym[i].off, sym[i].n);
    const int32_t id = find_token(t);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    for (char c : t) {
      int32_t bt = spm_byte_token[static_cast<unsigned char>(c)];
      if (bt < 0) bt = unk;
      if (bt < 0)
        throw Error("tokenize: character '" + std::string(t) + "' is not in the vocabulary and there is no byte token " +
                    "or unknown token to fall back on");
      out.push_back(bt);
    }
  }
}

}  // namespace specsteer
