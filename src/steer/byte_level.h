#pragma once
// Cross-tokenizer SpecSteer (paper appendix A.4): a Specialist and a
// Generalist with different vocabularies meet in byte space.
//
// - Verification: the cloud spells the text (pending bytes + committed +
//   drafted bytes) with the Generalist's tokenizer and tests the ratio of
//   Eq. 7 per *unit*: a maximal byte span whose two ends are token boundaries
//   of both tokenizations (align_units). P(unit) is the product of the
//   model's token probabilities inside it; the Generalist's probabilities are
//   conditioned on the decided bytes its cache does not hold yet (divided by
//   their prefix probability), and its last token, which the next draft may
//   extend, is marginalized: P(the text continues with its bytes).
// - The Generalist's cache always stops before its last token (held back as
//   pending bytes), so a word split across rounds is still read whole.
// - Recovery: Eq. 8 over the Specialist's tokens, each valued by the
//   Generalist in byte space: h_LLM(y) = log P_LLM(y is the longest
//   Specialist token the text continues with | decided text) = P(the text
//   continues with y's bytes) minus P(it continues with a longer Specialist
//   token's start), each summed over every Generalist tokenization
//   (ByteCovering, Hayase et al. 2025's covering tree). Unlike the bare
//   prefix probability, which grows as a token gets shorter, these sum to 1
//   over the Specialist's vocabulary.
#include <array>
#include <cstdlib>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "tokenizer/byte_vocab.h"

namespace specsteer {
class Tokenizer;
}

namespace specsteer::steer {

// Token paths as keys (their ids' bytes): the proper prefixes of a
// vocabulary's own spellings of some strings (ByteCovering::extension_probs).
using SpellingPrefixes = std::unordered_set<std::string>;
std::string path_key(std::span<const int32_t> path);

// What a cloud needs to pair a Specialist with a Generalist of another vocabulary.
struct BytePair {
  BytePair(std::shared_ptr<const Tokenizer> llm_tok, std::shared_ptr<const Tokenizer> slm_tok);
  std::shared_ptr<const Tokenizer> llm_tok, slm_tok;
  ByteVocab llm, slm;
  std::vector<int32_t> llm_eog, slm_eog;  // end-of-generation ids of each vocabulary
  // The strings recovery values: every Specialist token's bytes and each
  // one-byte extension of them that begins a longer Specialist token, with
  // per Specialist id its own string and its extensions' (ids in `prefixes`).
  std::unique_ptr<const ByteVocab> prefixes;
  std::vector<int32_t> slm_self;
  std::vector<uint32_t> ext_begin;  // Specialist id y: ext_ids[ext_begin[y], ext_begin[y + 1])
  std::vector<int32_t> ext_ids;
  // Per string of `prefixes`: the LLM tokens whose bytes start with it
  // (positions in llm.sorted()), so valuing them from a node costs one
  // subtraction each.
  std::vector<std::pair<uint32_t, uint32_t>> prefixes_in_llm;
  // The LLM's own spellings of the Specialist's tokens that take it two
  // tokens or more: their proper prefixes (recovery expands only these paths
  // past the decided bytes).
  SpellingPrefixes llm_spellings;
};

// log P(id) under the distribution TokenDist defines, without building it.
double restricted_log_prob(std::span<const float> logits, const ByteVocab& vocab, std::span<const int32_t> eog,
                           int32_t id);

// One model's next-token distribution over the tokens that can continue
// text: those that spell bytes and the end-of-generation ids, renormalized
// (other control tokens cannot).
struct TokenDist {
  TokenDist() = default;
  TokenDist(std::span<const float> logits, const ByteVocab& vocab, std::span<const int32_t> eog);
  std::vector<double> prob;  // per id (0 outside)
  std::vector<double> cum;   // over vocab.sorted(): cum[i] = sum of prob of the first i
  double eog = 0;            // all end-of-generation ids together
  double log_prob(int32_t id) const;
  // Probability that the next token's bytes start with `prefix` (non-empty).
  double starting_with(const ByteVocab& vocab, std::string_view prefix) const;
};

// Byte-level probabilities of one model from one state (its anchor, a token
// boundary), summed over every tokenization that continues from there: the
// nodes of the covering tree are token paths from the anchor whose bytes are
// a proper prefix of the queried text, and P(text starts with s) =
// sum over nodes N of P(N) * P_N(next token's bytes start with the rest of s).
// Each node past the root costs one forward pass; paths lighter than
// `prune` are dropped (0 keeps every path: exact) and at most `max_nodes`
// are evaluated — except the path of the vocabulary's own spelling of the
// queried prefix, always kept, so a long prefix never gets probability 0
// from pruning alone.
class ByteCovering {
 public:
  // Logits after the anchor + path (never called with an empty path).
  using RowFn = std::function<std::vector<float>(std::span<const int32_t> path)>;
  struct Options {
    double prune = getenv("PRUNE") ? atof(getenv("PRUNE")) : 1e-4;
    size_t max_nodes = 32;
  };
  ByteCovering(const ByteVocab& vocab, std::vector<int32_t> eog, std::span<const float> root_logits, RowFn row,
               Options opts);
  // P(the text after the anchor starts with s); 1 for s empty.
  double prefix_prob(std::string_view s);
  // P(the text after the anchor is exactly s, then end of generation).
  double end_prob(std::string_view s);
  // prefix_prob(p + bytes of y) for every id y of `targets` (0 outside its
  // byte space). `ranges` (optional): per target, the positions in this
  // vocabulary's sorted() of the tokens starting with its bytes.
  // `canonical` (optional): past a token boundary at the end of p, expand
  // only the paths that follow this vocabulary's own spelling of some
  // target (keys of its proper prefixes). A model trained on its
  // tokenizer's spellings puts little mass on other splits of a word, and
  // without this every likely token that begins some target (" p" for
  // " price") costs a forward pass; with it the values are a lower bound.
  std::vector<double> extension_probs(std::string_view p, const ByteVocab& targets,
                                      const std::vector<std::pair<uint32_t, uint32_t>>* ranges = nullptr,
                                      const SpellingPrefixes* canonical = nullptr);
  // The distribution of the byte after s: [0, 256) bytes, [256] end of
  // generation; sums to 1 (all 0 when prefix_prob(s) is 0).
  std::array<double, 257> next_byte(std::string_view s);
  size_t nodes_evaluated() const { return evaluated_; }

 private:
  struct Node {
    std::vector<int32_t> path;
    std::string bytes;
    double weight = 1;  // P(path) from the anchor
    TokenDist dist;
  };
  // The child of `parent` through `token`, when it is heavy enough and the
  // node budget allows (memoized); nullptr otherwise.
  const Node* child(const Node& parent, int32_t token, bool forced = false);
  // The spelling of s without its last token: the path child() always keeps.
  std::vector<int32_t> forced_path(std::string_view s) const;
  static bool on_path(const Node& n, const std::vector<int32_t>& path, int32_t token);
  // Visits the children of n through the tokens spelling rest[0, l), l = 1..max_len.
  void visit_spelled_prefixes(const Node& n, std::string_view rest, size_t max_len, const std::vector<int32_t>& keep,
                              const std::function<void(const Node&)>& visit);
  double mass(const Node& n, std::string_view rest) const { return n.dist.starting_with(vocab_, rest); }

  const ByteVocab& vocab_;
  std::vector<int32_t> eog_;
  RowFn row_;
  Options opts_;
  std::map<std::vector<int32_t>, std::unique_ptr<Node>> nodes_;
  Node root_;
  size_t evaluated_ = 0;
};

// The ratio test's units over one block. `draft_ends[i]` is where draft i's
// bytes end and `llm_ends[j]` where the Generalist's token j ends, both as
// offsets in the same text (the Generalist's tokens start at 0, the drafts
// at `start`). A unit ends at an offset past `start` where both a draft and
// a Generalist token end; drafts without bytes join the unit they touch.
struct Unit {
  size_t drafts_end = 0;  // drafts [previous unit's drafts_end, drafts_end)
  size_t llm_end = 0;     // Generalist tokens [previous unit's llm_end, llm_end)
  size_t byte_end = 0;
};
std::vector<Unit> align_units(std::span<const size_t> draft_ends, std::span<const size_t> llm_ends, size_t start);

}  // namespace specsteer::steer
