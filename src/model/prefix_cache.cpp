#include "model/prefix_cache.h"

#include <algorithm>

namespace specsteer {
namespace {

size_t common_prefix(std::span<const int32_t> a, std::span<const int32_t> b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

}  // namespace

size_t PrefixCache::restore(Sequence& seq, std::span<const int32_t> prompt, size_t max_tokens,
                            const std::string& scope) {
  if (budget_ == 0) return 0;
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.lookups;
  auto best = lru_.end();
  size_t best_n = 0;
  for (auto it = lru_.begin(); it != lru_.end(); ++it) {
    if (it->scope != scope || it->kv.computed_by != seq.kv_identity()) continue;
    const size_t n = std::min(common_prefix(it->kv.tokens, prompt), max_tokens);
    if (n > best_n) {
      best = it;
      best_n = n;
    }
  }
  if (best_n == 0 || best_n > seq.capacity()) return 0;
  seq.load_kv(best->kv, best_n);
  lru_.splice(lru_.begin(), lru_, best);
  ++stats_.hits;
  stats_.hit_tokens += best_n;
  return best_n;
}

void PrefixCache::keep(const Sequence& seq, const std::string& scope) {
  if (budget_ == 0 || seq.size() == 0) return;
  const uint64_t per_position = seq.kv_bytes_per_position();
  const size_t n = std::min<uint64_t>(seq.size(), budget_ / std::max<uint64_t>(per_position, 1));
  if (n == 0) return;
  const std::span<const int32_t> tokens(seq.tokens().data(), n);
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = lru_.begin(); it != lru_.end();) {
    if (it->scope != scope || it->kv.computed_by != seq.kv_identity()) {
      ++it;
      continue;
    }
    const size_t common = common_prefix(it->kv.tokens, tokens);
    if (common == tokens.size()) {  // already held (as it is or inside a longer entry)
      lru_.splice(lru_.begin(), lru_, it);
      return;
    }
    if (common == it->kv.n()) {  // the new one extends it: replace
      stats_.bytes -= it->kv.bytes.size();
      it = lru_.erase(it);
      continue;
    }
    ++it;
  }
  // Room first, so the copy is never held on top of a full budget.
  evict_to(budget_ - std::min<uint64_t>(budget_, n * per_position));
  lru_.push_front(Entry{scope, seq.copy_kv(n)});
  stats_.bytes += lru_.front().kv.bytes.size();
  stats_.kept_tokens += n;
}

void PrefixCache::evict_to(uint64_t limit) {
  while (!lru_.empty() && stats_.bytes > limit) {
    stats_.bytes -= lru_.back().kv.bytes.size();
    lru_.pop_back();
    ++stats_.evictions;
  }
}

PrefixCache::Stats PrefixCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.entries = lru_.size();
  return s;
}

void PrefixCache::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  lru_.clear();
  stats_.bytes = 0;
}

}  // namespace specsteer
