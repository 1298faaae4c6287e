// Cross-tokenizer SpecSteer's byte-level arithmetic (steer/byte_level.h):
// the covering tree against brute-force enumeration, units over misaligned
// tokenizations, and the unit ratio test.
#include "steer/byte_level.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>

#include "steer/formulas.h"

using namespace specsteer;
using namespace specsteer::steer;

namespace {

// A tiny vocabulary with overlapping spellings; id 9 ends the generation,
// id 10 is a control token outside the byte space.
const std::vector<std::string> kTiny = {"a", "b", "ab", "ba", "aab", " ", " a", "bb", "a b", "", ""};
const std::vector<int32_t> kEog = {9};
constexpr int kV = 11;

// A model whose logits depend on the whole path (deterministic).
std::vector<float> logits_after(std::span<const int32_t> path) {
  uint64_t h = 1469598103934665603ull;
  for (int32_t t : path) h = (h ^ static_cast<uint64_t>(t + 1)) * 1099511628211ull;
  std::vector<float> out(kV);
  for (int i = 0; i < kV; ++i) out[i] = static_cast<float>(std::sin(static_cast<double>((h >> 7) % 1000) * 0.37 + i * 1.3) * 2.0);
  return out;
}

// P(token | path) over the spelling tokens and the EOG, as TokenDist defines it.
std::vector<double> probs(std::span<const int32_t> path) {
  const auto l = logits_after(path);
  std::vector<double> p(kV, 0.0);
  double sum = 0;
  for (int i = 0; i < kV; ++i)
    if (!kTiny[i].empty() || i == 9) sum += p[i] = std::exp(static_cast<double>(l[i]));
  for (double& x : p) x /= sum;
  return p;
}

// Brute force: every token sequence from the anchor, by its bytes.
std::array<double, 257> brute_next_byte(const std::string& s) {
  std::array<double, 257> out{};
  std::function<void(std::vector<int32_t>&, const std::string&, double)> walk = [&](std::vector<int32_t>& path,
                                                                                 const std::string& b, double w) {
    const auto p = probs(path);
    if (b.size() == s.size()) out[256] += w * p[9];
    for (int t = 0; t < kV; ++t) {
      if (kTiny[t].empty()) continue;
      const std::string nb = b + kTiny[t];
      if (nb.size() <= s.size()) {
        if (s.compare(0, nb.size(), nb) != 0) continue;
        path.push_back(t);
        walk(path, nb, w * p[t]);
        path.pop_back();
      } else if (nb.compare(0, s.size(), s) == 0) {
        out[static_cast<unsigned char>(nb[s.size()])] += w * p[t];
      }
    }
  };
  std::vector<int32_t> path;
  walk(path, "", 1.0);
  double sum = 0;
  for (double v : out) sum += v;
  for (double& v : out) v /= sum;
  return out;
}

ByteCovering exact_covering(const ByteVocab& v, int* calls = nullptr) {
  return ByteCovering(v, kEog, logits_after({}),
                      [calls](std::span<const int32_t> path) {
                        if (calls) ++*calls;
                        return logits_after(path);
                      },
                      {.prune = 0, .max_nodes = 100000});
}

}  // namespace

TEST(ByteCovering, NextByteEqualsBruteForceAndSumsToOne) {
  ByteVocab v(kTiny);
  for (const std::string s : {"", "a", "ab", "aba", " a", "b", "a b", "bab", "aab a"}) {
    ByteCovering c = exact_covering(v);
    const auto got = c.next_byte(s);
    const auto want = brute_next_byte(s);
    double sum = 0;
    for (int b = 0; b < 257; ++b) {
      EXPECT_NEAR(got[b], want[b], 1e-12) << "after '" << s << "', symbol " << b;
      sum += got[b];
    }
    EXPECT_NEAR(sum, 1.0, 1e-12) << s;
  }
}

TEST(ByteCovering, PrefixProbabilitySplitsIntoNextBytesAndEnd) {
  ByteVocab v(kTiny);
  ByteCovering c = exact_covering(v);
  EXPECT_EQ(c.prefix_prob(""), 1.0);
  for (const std::string s : {"a", "ab", "b a", "aab"}) {
    double parts = c.end_prob(s);
    std::string t = s + ' ';
    for (int b = 0; b < 256; ++b) {
      t.back() = static_cast<char>(b);
      parts += c.prefix_prob(t);
    }
    EXPECT_NEAR(parts, c.prefix_prob(s), 1e-12) << s;
  }
  // No token spells 'x': nothing continues with it.
  EXPECT_EQ(c.prefix_prob("ax"), 0.0);
}

TEST(ByteCovering, ExtensionsEqualPrefixProbabilities) {
  ByteVocab v(kTiny);
  ByteVocab targets(std::vector<std::string>{"a", "ab", "b a", "x", "", "aab", " "});
  for (const std::string p : {"", "a", "ba", "aab "}) {
    ByteCovering c = exact_covering(v);
    const auto ext = c.extension_probs(p, targets);
    ASSERT_EQ(ext.size(), 7u);
    for (int32_t y = 0; y < 7; ++y) {
      if (!targets.spells(y)) {
        EXPECT_EQ(ext[y], 0.0);
        continue;
      }
      ByteCovering fresh = exact_covering(v);
      EXPECT_NEAR(ext[y], fresh.prefix_prob(p + targets.bytes(y)), 1e-12) << "'" << p << "' + " << targets.bytes(y);
    }
    EXPECT_EQ(ext[3], 0.0);  // "x"
  }
}

TEST(ByteCovering, PruningDropsLightPathsButKeepsTheSpelling) {
  ByteVocab v(kTiny);
  int exact_calls = 0, pruned_calls = 0;
  ByteCovering exact = exact_covering(v, &exact_calls);
  ByteCovering pruned(v, kEog, logits_after({}),
                      [&](std::span<const int32_t> path) {
                        ++pruned_calls;
                        return logits_after(path);
                      },
                      {.prune = 0.99, .max_nodes = 0});  // nothing but the forced spelling
  const std::string s = "aab aab a";
  const double pe = exact.prefix_prob(s), pp = pruned.prefix_prob(s);
  EXPECT_GT(pp, 0.0);  // the spelling's path survives any threshold
  EXPECT_LE(pp, pe + 1e-15);
  EXPECT_LT(pruned_calls, exact_calls);
  EXPECT_EQ(pruned.nodes_evaluated(), static_cast<size_t>(pruned_calls));
}

TEST(AlignUnits, IdenticalTokenizationsGiveOneUnitPerToken) {
  const std::vector<size_t> ends = {3, 5, 9};
  const auto u = align_units(ends, ends, 0);
  ASSERT_EQ(u.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(u[i].drafts_end, i + 1);
    EXPECT_EQ(u[i].llm_end, i + 1);
    EXPECT_EQ(u[i].byte_end, ends[i]);
  }
}

TEST(AlignUnits, MisalignedBoundariesMergeIntoSpans) {
  // "hel|lo| wor|ld" against "hello| world".
  auto u = align_units(std::vector<size_t>{3, 5, 9, 11}, std::vector<size_t>{5, 11}, 0);
  ASSERT_EQ(u.size(), 2u);
  EXPECT_EQ(u[0].drafts_end, 2u);
  EXPECT_EQ(u[0].llm_end, 1u);
  EXPECT_EQ(u[1].drafts_end, 4u);
  EXPECT_EQ(u[1].llm_end, 2u);
  // Pending "he" before the drafts: "llo| w|orld" against "hello| world".
  u = align_units(std::vector<size_t>{5, 7, 11}, std::vector<size_t>{5, 11}, 2);
  ASSERT_EQ(u.size(), 2u);
  EXPECT_EQ(u[0].drafts_end, 1u);
  EXPECT_EQ(u[1].drafts_end, 3u);
  EXPECT_EQ(u[1].byte_end, 11u);
  // A boundary at or before the drafts' start is no unit end.
  u = align_units(std::vector<size_t>{2, 6}, std::vector<size_t>{2, 6}, 2);
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0].drafts_end, 2u);
  // Drafts without bytes join the unit they touch.
  u = align_units(std::vector<size_t>{0, 3, 3}, std::vector<size_t>{3}, 0);
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0].drafts_end, 3u);
  // No common end (texts that differ, defensively): one unit takes all.
  u = align_units(std::vector<size_t>{2}, std::vector<size_t>{3}, 0);
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0].drafts_end, 1u);
  EXPECT_EQ(u[0].llm_end, 1u);
}

TEST(UnitAcceptProb, IsEq7OnLogProbabilities) {
  EXPECT_EQ(unit_accept_prob(-5, -1, 0.0), 1.0);
  EXPECT_EQ(unit_accept_prob(-1, -1, 1.0), 1.0);
  EXPECT_NEAR(unit_accept_prob(-2, -1, 1.0), std::exp(-1.0), 1e-15);
  EXPECT_NEAR(unit_accept_prob(-2, -1, 0.5), 2 * std::exp(-1.0), 1e-15);
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(unit_accept_prob(-inf, -1, 1.0), 0.0);
  EXPECT_EQ(unit_accept_prob(-inf, -inf, 1.0), 0.0);
  // One token per unit: the token path's ratio test.
  const std::vector<float> hl = {1.f, 2.f, 0.5f}, hs = {0.2f, 1.f, 3.f};
  const double lpl = hl[1] - sampling::log_sum_exp(hl), lps = hs[1] - sampling::log_sum_exp(hs);
  EXPECT_NEAR(unit_accept_prob(lpl, lps, 0.7), ratio_accept_prob(hl, hs, 1, 0.7), 1e-12);
}

// ---- The cloud's byte-level verify on hand-made tokenizers ---------------

#include "gguf/gguf.h"
#include "steer/cloud.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace {

// A byte-level BPE: 256 byte tokens, then `merged` (GPT-2 spelling, "Ġ" = a
// space) from `merges` in rank order, then an end-of-generation token.
std::shared_ptr<const Tokenizer> tiny_bpe(const std::vector<std::string>& merged,
                                          const std::vector<std::string>& merges) {
  gguf::Writer w;
  std::vector<std::string> toks;
  std::vector<int32_t> types;
  for (unsigned b = 0; b < 256; ++b) {
    toks.push_back(utf8::gpt2_bytes().byte_to_utf8[b]);
    types.push_back(1);
  }
  for (const auto& t : merged) {
    toks.push_back(t);
    types.push_back(1);
  }
  toks.push_back("<|endoftext|>");
  types.push_back(3);
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", "qwen2");
  w.add_strings("tokenizer.ggml.tokens", toks);
  w.add_i32s("tokenizer.ggml.token_type", types);
  w.add_strings("tokenizer.ggml.merges", merges);
  w.add_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(toks.size() - 1));
  auto f = gguf::File::from_bytes(w.to_bytes(), "tiny");
  return std::shared_ptr<const Tokenizer>(Tokenizer::from_gguf(*f));
}

// Logits that do not depend on the prefix: `high` ids get their value, the rest -30.
std::unique_ptr<LogitSource> constant_source(int n_vocab, std::vector<std::pair<int32_t, float>> high) {
  return std::make_unique<FunctionSource>(n_vocab, [high](std::span<const int32_t>, std::span<float> logits) {
    std::fill(logits.begin(), logits.end(), -30.f);
    for (auto [id, v] : high) logits[static_cast<size_t>(id)] = v;
  });
}

}  // namespace

TEST(CloudBytes, UnitsOverMisalignedTokenizationsConditionAndMarginalize) {
  // Specialist: "hel|lo| wor|ld"; Generalist: "hello| world" (and " worlds").
  auto slm_tok = tiny_bpe({"he", "hel", "lo", "Ġw", "or", "Ġwor", "ld"},
                          {"h e", "he l", "l o", "Ġ w", "o r", "Ġw or", "l d"});
  auto llm_tok = tiny_bpe({"he", "ll", "hell", "hello", "Ġw", "or", "Ġwor", "ld", "Ġworld", "Ġworlds"},
                          {"h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld", "Ġworld s"});
  ASSERT_FALSE(vocab_compatible(*llm_tok, *slm_tok, nullptr));
  const int32_t s_hel = 257, s_lo = 258, s_wor = 261, s_ld = 262, s_s = 's';
  const int32_t l_hello = 259, l_world = 264, l_worlds = 265, l_eog = 266;
  const int VS = slm_tok->n_vocab(), VL = llm_tok->n_vocab();
  ASSERT_EQ(llm_tok->encode("hello world", false, false), (std::vector<int32_t>{l_hello, l_world}));
  auto pair = std::make_shared<const BytePair>(llm_tok, slm_tok);

  const std::vector<std::pair<int32_t, float>> llm_high = {{l_hello, 2.f}, {l_world, 1.f}, {l_worlds, 0.f}, {l_eog, -1.f}};
  const std::vector<std::pair<int32_t, float>> slm_high = {{s_hel, 1.f}, {s_lo, 0.5f}, {s_wor, 0.f}, {s_ld, 0.2f}, {s_s, -0.5f}};
  // The Generalist's restricted distribution (spelling tokens + EOG) and
  // the Specialist's full softmax, by hand.
  double zl = 0;
  for (int32_t id = 0; id < VL; ++id) {
    if (id != l_eog && !llm_tok->is_normal(id)) continue;
    float v = -30.f;
    for (auto [h, hv] : llm_high)
      if (h == id) v = hv;
    zl += std::exp(static_cast<double>(v));
  }
  auto pl = [&](float v) { return std::exp(static_cast<double>(v)) / zl; };
  double zs = 0;
  for (int32_t id = 0; id < VS; ++id) {
    float v = -30.f;
    for (auto [h, hv] : slm_high)
      if (h == id) v = hv;
    zs += std::exp(static_cast<double>(v));
  }
  auto ls = [&](float v) { return static_cast<double>(v) - std::log(zs); };

  SessionOpen open;
  open.x_llm = {'x'};
  open.x_slm = {'x'};
  open.settings.lambda = 1e-30;  // every unit passes: the test reads what was tested
  open.settings.draft = 4;
  Cloud cloud(constant_source(VL, llm_high), constant_source(VS, slm_high), open, pair);

  // Block 1: units "hel|lo" = "hello" and " wor|ld" = " world"; the last
  // Generalist token is marginalized (" world" or " worlds") and held back.
  Verdict v = cloud.verify(DraftBlock{0, {}, {s_hel, s_lo, s_wor, s_ld}, {}});
  EXPECT_EQ(v.n_accepted, 4u);
  ASSERT_EQ(cloud.tested_units().size(), 2u);
  EXPECT_EQ(cloud.tested_units()[0].drafts_end, 2u);
  EXPECT_NEAR(cloud.tested_units()[0].logp_llm, std::log(pl(2.f)), 1e-9);
  EXPECT_NEAR(cloud.tested_units()[0].logp_slm, ls(1.f) + ls(0.5f), 1e-9);
  EXPECT_EQ(cloud.tested_units()[1].drafts_end, 4u);
  EXPECT_NEAR(cloud.tested_units()[1].logp_llm, std::log(pl(1.f) + pl(0.f)), 1e-9);
  EXPECT_NEAR(cloud.tested_units()[1].logp_slm, ls(0.f) + ls(0.2f), 1e-9);
  EXPECT_EQ(cloud.pending_bytes(), " world");

  // Block 2: "s" joins the held-back " world" into " worlds"; its unit is
  // conditioned on the decided " world": P(" worlds") / P(" world" or " worlds").
  v = cloud.verify(DraftBlock{0, {}, {s_s}, {}});
  EXPECT_EQ(v.n_accepted, 1u);
  ASSERT_EQ(cloud.tested_units().size(), 1u);
  EXPECT_NEAR(cloud.tested_units()[0].logp_llm, std::log(pl(0.f) / (pl(1.f) + pl(0.f))), 1e-9);
  EXPECT_NEAR(cloud.tested_units()[0].logp_slm, ls(-0.5f), 1e-9);
  EXPECT_EQ(cloud.pending_bytes(), " worlds");

  // Recovery: a rejected first unit ("hello" against the Specialist's
  // "hel|lo") leaves nothing decided; each Specialist token is valued by
  // P_LLM(it is the longest Specialist token the text starts with). "hel":
  // the Generalist tokens starting with "hel"; " wor": " world" or " worlds";
  // "he" only what does not go on to "hel" (P("he") itself: negligible). The
  // plausible rule keeps these two (EOG's 0.03 is under a tenth of 0.64),
  // valued h_LLM - beta*h_SLM-.
  SessionOpen strict = open;
  strict.settings.lambda = 1e30;  // every unit fails
  Cloud rejecting(constant_source(VL, llm_high), constant_source(VS, slm_high), strict, pair);
  v = rejecting.verify(DraftBlock{0, {}, {s_hel, s_lo}, {}});
  EXPECT_TRUE(v.rejected);
  EXPECT_EQ(v.n_accepted, 0u);
  EXPECT_EQ(rejecting.pending_bytes(), "");
  ASSERT_EQ(v.steer.size(), 2u);
  const double tiny = std::exp(-30.0) / zl;  // "hell", a token of the Generalist's that starts with "hel"
  // Ranked by value: " wor" log(0.32) - 0 above "hel" log(0.64) - 1.
  EXPECT_EQ(v.steer[0].id, s_wor);
  EXPECT_NEAR(v.steer[0].value, std::log(pl(1.f) + pl(0.f)) - 0.0, 1e-5);
  EXPECT_EQ(v.steer[1].id, s_hel);
  EXPECT_NEAR(v.steer[1].value, std::log(pl(2.f) + tiny) - 1.0, 1e-5);

  // Rejected at the first unit block after block, the decided bytes stay
  // pending — but bounded, also in text without spaces to cut at.
  for (int i = 0; i < 40; ++i) {
    v = rejecting.verify(DraftBlock{0, {s_hel}, {s_lo}, {}});
    ASSERT_TRUE(v.rejected);
    EXPECT_LE(rejecting.pending_bytes().size(), 48u) << "block " << i;
  }
}
