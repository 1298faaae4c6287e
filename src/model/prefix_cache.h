#pragma once
// A prefix KV cache (llama-server's cache_prompt, vLLM's prefix caching): the
// K and V of a finished Sequence are kept, so a new Sequence whose prompt
// starts with the same tokens copies those positions instead of computing
// them again — the next turn of a chat re-reads only its new message.
//
// Entries live in scopes (a user, a conversation, or "" for everyone: the
// caller decides who may share) and are told apart by what computed them
// (Sequence::kv_identity: model, KV type, adapters); a lookup never crosses
// either. A position's K and V depend only on the tokens up to it, so a kept
// prefix is exact for any prompt that shares it. A new Sequence copies the
// positions it reuses (its own KV stays private to it; several sequences may
// start from one entry at once). Least recently used entries go first when
// the kept bytes would exceed the budget; 0 keeps nothing.
#include <cstdint>
#include <list>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "model/model.h"

namespace specsteer {

class PrefixCache {
 public:
  explicit PrefixCache(uint64_t budget_bytes) : budget_(budget_bytes) {}

  // Fills `seq` with the longest kept prefix of `prompt` in `scope`, at most
  // `max_tokens` positions (leave at least one token to evaluate: its logits
  // are what a prefill is for). Returns the positions reused (0: none; `seq`
  // untouched).
  size_t restore(Sequence& seq, std::span<const int32_t> prompt, size_t max_tokens, const std::string& scope);
  // Keeps what `seq` holds (all its positions) in `scope`. An entry it extends
  // is replaced; one that already holds it is only marked used. Longer than
  // the whole budget: its head is kept (a shared system text still helps).
  void keep(const Sequence& seq, const std::string& scope);

  struct Stats {
    uint64_t lookups = 0, hits = 0;
    uint64_t hit_tokens = 0;     // positions copied instead of computed
    uint64_t kept_tokens = 0;    // positions stored by keep()
    uint64_t evictions = 0;
    uint64_t bytes = 0;          // held now
    uint64_t entries = 0;
  };
  Stats stats() const;
  uint64_t budget() const { return budget_; }
  void clear();

 private:
  struct Entry {
    std::string scope;
    Sequence::KvCopy kv;
  };
  void evict_to(uint64_t limit);  // with mu_ held

  const uint64_t budget_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // most recently used first
  Stats stats_;
};

}  // namespace specsteer
