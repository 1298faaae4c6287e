// The prefix KV cache: a reused prefix gives the logits a fresh prefill gives
// (bit-identical here; the bar is 1e-5), scopes and adapters never mix, the byte budget holds, and the
// least recently used entry goes first.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "common/error.h"
#include "model/model.h"
#include "model/prefix_cache.h"
#include "tiny_model.h"

namespace specsteer {
namespace {

namespace fs = std::filesystem;

std::string golden(const std::string& name) { return std::string(SPECSTEER_FIXTURES) + "/golden/" + name + "/" + name + ".gguf"; }

struct TinyFile {
  std::string path;
  explicit TinyFile(const std::string& arch) {
    testing::TinySpec spec;
    spec.arch = arch;
    spec.n_ctx = 128;
    path = (fs::temp_directory_path() / ("specsteer_prefix_" + std::to_string(::getpid()) + "_" + arch + ".gguf")).string();
    testing::tiny_model(spec).write(path);
  }
  ~TinyFile() { fs::remove(path); }
};

std::vector<int32_t> ids(size_t n, int32_t salt, int n_vocab) {
  std::vector<int32_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<int32_t>((i * 7 + static_cast<size_t>(salt) * 13 + 3) % n_vocab);
  return out;
}

float max_diff(std::span<const float> a, std::span<const float> b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// Chat turn 1 (prompt prefilled, reply decoded a token at a time) is kept;
// turn 2 = turn 1 + reply + a new message reuses every kept position and
// ends with the fresh prefill's logits. Returns the reused Sequence's size.
size_t expect_reuse_is_exact(const std::shared_ptr<Model>& model, KvType kv, float tol) {
  const int V = model->config().n_vocab;
  PrefixCache cache(64ull << 20);
  const std::vector<int32_t> turn1 = ids(40, 1, V), reply = ids(9, 2, V), next = ids(12, 3, V);
  {
    Sequence s(model, {.n_ctx = 128, .kv_type = kv});
    EXPECT_EQ(cache.restore(s, turn1, turn1.size() - 1, "u"), 0u);
    s.eval(turn1, false);
    for (int32_t t : reply) s.eval({&t, 1}, false);
    cache.keep(s, "u");
  }
  std::vector<int32_t> turn2 = turn1;
  turn2.insert(turn2.end(), reply.begin(), reply.end());
  turn2.insert(turn2.end(), next.begin(), next.end());

  Sequence fresh(model, {.n_ctx = 128, .kv_type = kv});
  const auto f = fresh.eval(turn2, false);
  const std::vector<float> expect(f.begin(), f.end());

  Sequence reused(model, {.n_ctx = 128, .kv_type = kv});
  const size_t n = cache.restore(reused, turn2, turn2.size() - 1, "u");
  EXPECT_EQ(n, turn1.size() + reply.size());
  EXPECT_EQ(reused.size(), n);
  const auto got = reused.eval(std::span<const int32_t>(turn2).subspan(n), false);
  EXPECT_LE(max_diff(got, expect), tol);
  EXPECT_EQ(reused.tokens(), turn2);
  EXPECT_EQ(reused.positions_evaluated(), turn2.size() - n) << "reused positions are not computed";
  // Decoding goes on alike.
  const int32_t t = 5;
  const auto a = fresh.eval({&t, 1}, false);
  const std::vector<float> fa(a.begin(), a.end());
  EXPECT_LE(max_diff(reused.eval({&t, 1}, false), fa), tol);
  return n;
}

}  // namespace

TEST(PrefixCache, AReusedPrefixGivesTheFreshPrefillsLogits) {
  for (const char* arch : {"llama", "qwen2", "qwen3"}) {
    SCOPED_TRACE(arch);
    TinyFile f(arch);
    auto model = Model::load(f.path, {.n_threads = 2});
    expect_reuse_is_exact(model, KvType::F32, 1e-5f);
  }
}

TEST(PrefixCache, RealModelsReuseWithF16KvToo) {
  for (const char* name : {"tiny-qwen3-q8_0", "tiny-llama3-f32"}) {
    SCOPED_TRACE(name);
    if (!fs::exists(golden(name))) GTEST_SKIP() << "no fixtures at " << golden(name);
    auto model = Model::load(golden(name), {.n_threads = 2});
    expect_reuse_is_exact(model, KvType::F32, 1e-5f);
    expect_reuse_is_exact(model, KvType::F16, 1e-5f);
  }
}

TEST(PrefixCache, AChangedEarlierMessageReusesOnlyWhatPrecedesIt) {
  TinyFile f("qwen3");
  auto model = Model::load(f.path, {.n_threads = 2});
  const int V = model->config().n_vocab;
  PrefixCache cache(64ull << 20);
  const std::vector<int32_t> turn1 = ids(30, 1, V);
  {
    Sequence s(model, {.n_ctx = 128, .kv_type = KvType::F32});
    s.eval(turn1, false);
    cache.keep(s, "u");
  }
  std::vector<int32_t> edited = turn1;
  edited[12] = (edited[12] + 1) % V;  // the client edited an early message
  edited.push_back(9);
  Sequence fresh(model, {.n_ctx = 128, .kv_type = KvType::F32});
  const auto f1 = fresh.eval(edited, false);
  const std::vector<float> expect(f1.begin(), f1.end());
  Sequence reused(model, {.n_ctx = 128, .kv_type = KvType::F32});
  EXPECT_EQ(cache.restore(reused, edited, edited.size() - 1, "u"), 12u);
  EXPECT_LE(max_diff(reused.eval(std::span<const int32_t>(edited).subspan(12), false), expect), 1e-5f);
}

TEST(PrefixCache, ScopesAndModelsNeverMix) {
  TinyFile a("qwen3"), b("llama");
  auto ma = Model::load(a.path, {.n_threads = 1}), mb = Model::load(b.path, {.n_threads = 1});
  PrefixCache cache(64ull << 20);
  const std::vector<int32_t> p = ids(20, 1, 64);
  Sequence s(ma, {.n_ctx = 128});
  s.eval(p, false);
  cache.keep(s, "alice");
  Sequence other_user(ma, {.n_ctx = 128});
  EXPECT_EQ(cache.restore(other_user, p, p.size() - 1, "bob"), 0u);
  EXPECT_EQ(other_user.size(), 0u);
  Sequence other_model(mb, {.n_ctx = 128});
  EXPECT_EQ(cache.restore(other_model, p, p.size() - 1, "alice"), 0u);
  Sequence other_kv(ma, {.n_ctx = 128, .kv_type = KvType::F32});
  EXPECT_EQ(cache.restore(other_kv, p, p.size() - 1, "alice"), 0u);
  Sequence same(ma, {.n_ctx = 128});
  EXPECT_EQ(cache.restore(same, p, 5, "alice"), 5u) << "at most max_tokens";
  EXPECT_THROW(other_model.load_kv(s.copy_kv(3), 3), Error);
}

TEST(PrefixCache, TheBudgetHoldsAndTheLeastRecentlyUsedGoesFirst) {
  TinyFile f("qwen3");
  auto model = Model::load(f.path, {.n_threads = 1});
  Sequence probe(model, {.n_ctx = 128});
  const uint64_t per = probe.kv_bytes_per_position();
  PrefixCache cache(per * 50);  // room for 50 positions
  auto keep = [&](int salt, size_t n) {
    Sequence s(model, {.n_ctx = 128});
    s.eval(ids(n, salt, 64), false);
    cache.keep(s, "u");
  };
  keep(1, 20);
  keep(2, 20);
  Sequence touch(model, {.n_ctx = 128});
  const auto one = ids(20, 1, 64);
  EXPECT_EQ(cache.restore(touch, one, 19, "u"), 19u);  // 1 is now the most recent
  keep(3, 20);                                        // 60 > 50: 2 goes
  EXPECT_LE(cache.stats().bytes, per * 50);
  EXPECT_EQ(cache.stats().evictions, 1u);
  Sequence s1(model, {.n_ctx = 128}), s2(model, {.n_ctx = 128});
  EXPECT_EQ(cache.restore(s1, one, 19, "u"), 19u);
  const auto two = ids(20, 2, 64);
  EXPECT_EQ(cache.restore(s2, two, 19, "u"), 0u);
  // An extension replaces its prefix; a prompt longer than the budget keeps its head.
  keep(1, 30);
  EXPECT_EQ(cache.stats().entries, 2u);
  keep(4, 100);
  EXPECT_LE(cache.stats().bytes, per * 50);
  Sequence s4(model, {.n_ctx = 128});
  EXPECT_EQ(cache.restore(s4, ids(100, 4, 64), 99, "u"), 50u);
  PrefixCache off(0);
  Sequence s0(model, {.n_ctx = 128});
  s0.eval(one, false);
  off.keep(s0, "u");
  EXPECT_EQ(off.stats().entries, 0u);
}

}  // namespace specsteer
