#include "tokenizer/byte_vocab.h"

#include <algorithm>
#include <cstdio>

#include "common/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace specsteer {

ByteVocab::ByteVocab(const Tokenizer& tok) : tok_(&tok) {
  const int n = tok.n_vocab();
  bytes_.resize(static_cast<size_t>(n));
  for (int32_t id = 0; id < n; ++id)
    if (tok.is_normal(id) && !tok.is_eog(id)) bytes_[static_cast<size_t>(id)] = tok.token_bytes(id);
  sort_ids();
}

ByteVocab::ByteVocab(std::vector<std::string> bytes_per_id) : bytes_(std::move(bytes_per_id)) { sort_ids(); }

void ByteVocab::sort_ids() {
  for (size_t id = 0; id < bytes_.size(); ++id)
    if (!bytes_[id].empty()) sorted_.push_back(static_cast<int32_t>(id));
  std::sort(sorted_.begin(), sorted_.end(), [&](int32_t a, int32_t b) {
    const int c = bytes_[static_cast<size_t>(a)].compare(bytes_[static_cast<size_t>(b)]);
    return c != 0 ? c < 0 : a < b;
  });
}

std::pair<size_t, size_t> ByteVocab::with_prefix(std::string_view prefix) const {
  auto key = [&](int32_t id) { return std::string_view(bytes_[static_cast<size_t>(id)]); };
  const auto lo = std::lower_bound(sorted_.begin(), sorted_.end(), prefix,
                                   [&](int32_t id, std::string_view p) { return key(id) < p; });
  // The first token past lo that does not start with the prefix.
  const auto hi = std::partition_point(lo, sorted_.end(), [&](int32_t id) { return key(id).starts_with(prefix); });
  return {static_cast<size_t>(lo - sorted_.begin()), static_cast<size_t>(hi - sorted_.begin())};
}

size_t ByteVocab::exact_count(std::string_view s) const {
  const auto [lo, hi] = with_prefix(s);
  size_t n = 0;
  while (lo + n < hi && sorted_bytes(lo + n).size() == s.size()) ++n;
  return n;
}

void ByteVocab::longest_match(std::string_view text, size_t offset, std::vector<int32_t>& out) const {
  size_t i = 0;
  while (i < text.size()) {
    size_t len = 0;
    int32_t best = -1;
    // Grow the prefix while some token still starts with it.
    for (size_t l = 1; i + l <= text.size(); ++l) {
      const auto [lo, hi] = with_prefix(text.substr(i, l));
      if (lo == hi) break;
      if (sorted_bytes(lo).size() == l) {
        len = l;
        best = sorted_[lo];
      }
    }
    if (best < 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned>(static_cast<unsigned char>(text[i])));
      throw Error("tokenizer: no token of this vocabulary spells byte " + std::string(hex) + " at offset " +
                  std::to_string(offset + i));
    }
    out.push_back(best);
    i += len;
  }
}

std::vector<int32_t> ByteVocab::spell(std::string_view text) const {
  std::vector<int32_t> out;
  size_t i = 0;
  while (i < text.size()) {
    // The maximal valid UTF-8 run from i.
    size_t j = i, len = 0;
    while (j < text.size() && utf8::next(text, j, &len) == utf8::Step::Ok) j += len;
    if (j > i) {
      const std::string_view run = text.substr(i, j - i);
      std::vector<int32_t> ids;
      if (tok_) ids = tok_->encode(run, false, false);
      bool same = tok_ != nullptr;
      size_t at = 0;
      for (int32_t id : ids) {
        const std::string& b = spells(id) ? bytes_[static_cast<size_t>(id)] : std::string();
        if (b.empty() || run.compare(at, b.size(), b) != 0) {
          same = false;
          break;
        }
        at += b.size();
      }
      if (same && at == run.size()) out.insert(out.end(), ids.begin(), ids.end());
      else longest_match(run, i, out);  // e.g. SentencePiece's dummy space prefix
      i = j;
      continue;
    }
    // An incomplete or invalid sequence: its bytes one by one.
    utf8::next(text, i, &len);
    longest_match(text.substr(i, std::max<size_t>(len, 1)), i, out);
    i += std::max<size_t>(len, 1);
  }
  return out;
}

}  // namespace specsteer
