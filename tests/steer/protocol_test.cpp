// End-to-end protocol tests on exact synthetic distributions: edge and cloud
// talk only through encoded messages over the in-process transport.
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "common/error.h"
#include "steer/cloud.h"
#include "steer/edge.h"
#include "steer/formulas.h"
#include "synth.h"

using namespace specsteer;
using namespace specsteer::steer;

namespace {

constexpr int V = 64;

struct World : synth::Pair {
  std::set<int32_t> eog = {};

  EogFn is_eog() const {
    return [e = eog](int32_t t) { return e.count(t) > 0; };
  }
  RunResult run(const Settings& s, InProcessTransport** keep = nullptr, const RoundObserver& obs = {}) const {
    if (!uses_cloud(s.method)) {
      auto src = synth::source(V, s.method == Method::Llm ? llm : slm);
      const auto& prompt = s.method == Method::SlmPlus ? personalized : x;
      return run_local(*src, prompt, s, is_eog());
    }
    auto c = cloud();
    InProcessTransport t(*c, keep != nullptr);
    auto edge = synth::source(V, slm);
    auto r = run_edge(*edge, personalized, t, open(s), is_eog(), obs);
    if (keep) *keep = nullptr;
    return r;
  }
};

Settings settings(Method m, int n = 40) {
  Settings s;
  s.method = m;
  s.max_new = n;
  s.seed = 17;
  return s;
}

}  // namespace

TEST(Protocol, LambdaToZeroAcceptsEveryDraftAndEqualsSlmPlus) {
  World w;
  Settings s = settings(Method::SpecSteer);
  s.lambda = 1e-30;
  auto r = w.run(s);
  auto plus = w.run(settings(Method::SlmPlus));
  EXPECT_EQ(r.tokens, plus.tokens);
  EXPECT_EQ(r.counters.n_accepted, r.counters.n_drafted);
  EXPECT_EQ(r.counters.rejections, 0u);
  EXPECT_EQ(r.tokens.size(), 40u);
  EXPECT_EQ(r.counters.round_trips, 10u);  // 40 tokens / K=4
}

TEST(Protocol, GreedySdEqualsGreedyLlm) {
  World w;
  for (int K : {1, 3, 4, 7}) {
    Settings s = settings(Method::Sd);
    s.draft = K;
    auto sd = w.run(s);
    auto llm = w.run(settings(Method::Llm));
    EXPECT_EQ(sd.tokens, llm.tokens) << "K=" << K;
    EXPECT_GT(sd.counters.n_drafted, 0u);
  }
}

TEST(Protocol, SdIsLossless) {
  // Joint distribution of the first two generated tokens under sampled sd
  // (temperature 1, K = 2) against the LLM's exact distribution.
  constexpr int Vs = 6;
  synth::Spec llm{5, 1.5, 6, 1.0}, slm{7, 1.5, 8, 1.0};
  std::vector<int32_t> x = {1, 2};
  std::vector<int32_t> pers = {5, 5, 1, 2};
  std::vector<double> expect(Vs * Vs);
  {
    auto p1 = sampling::softmax(synth::logits(Vs, llm, x));
    for (int a = 0; a < Vs; ++a) {
      std::vector<int32_t> xa = {1, 2, a};
      auto p2 = sampling::softmax(synth::logits(Vs, llm, xa));
      for (int b = 0; b < Vs; ++b) expect[a * Vs + b] = p1[a] * p2[b];
    }
  }
  CloudService cloud([&] { return synth::source(Vs, llm); }, [&] { return synth::source(Vs, slm); },
                     ModelIdentity{"l", "s", Vs, 1}, ModelIdentity{"s", "s", Vs, 2});
  std::vector<int> counts(Vs * Vs, 0);
  const int N = 12000;
  uint64_t rejections = 0;
  for (int seed = 0; seed < N; ++seed) {
    InProcessTransport t(cloud);
    SessionOpen o;
    o.llm = {"l", "s", Vs, 1};
    o.slm = {"s", "s", Vs, 2};
    o.x_llm = o.x_slm = x;
    o.settings.method = Method::Sd;
    o.settings.draft = 2;
    o.settings.max_new = 2;
    o.settings.seed = static_cast<uint64_t>(seed);
    o.settings.sampler.temperature = 1.0;
    auto edge = synth::source(Vs, slm);
    auto r = run_edge(*edge, pers, t, o, [](int32_t) { return false; });
    ASSERT_EQ(r.tokens.size(), 2u);
    counts[r.tokens[0] * Vs + r.tokens[1]]++;
    rejections += r.counters.rejections;
  }
  EXPECT_EQ(cloud.n_sessions(), 0u);
  EXPECT_GT(rejections, static_cast<uint64_t>(N / 10));  // the drafter really differs
  double chi = 0;
  for (int i = 0; i < Vs * Vs; ++i) chi += std::pow(counts[i] - N * expect[i], 2) / (N * expect[i]);
  // 35 degrees of freedom; 66.62 is the 0.999 quantile (alpha = 0.001, fixed seeds).
  EXPECT_LT(chi, 66.62);
}

TEST(Protocol, BetaZeroRecoversFromTheLlm) {
  World w;
  Settings s = settings(Method::SpecSteer);
  s.beta = 0.0;
  s.lambda = 1.0;
  auto c = w.cloud();
  InProcessTransport t(*c);
  auto edge = synth::source(V, w.slm);
  int checked = 0;
  auto r = run_edge(*edge, w.personalized, t, w.open(s), w.is_eog(),
                    [&](std::span<const int32_t> cache, std::span<const float>, const Verdict& v) {
                      if (!v.rejected) return;
                      // Generated prefix = edge tokens minus the personalized prompt.
                      std::vector<int32_t> prefix(w.x);
                      prefix.insert(prefix.end(), cache.begin() + w.personalized.size(), cache.end());
                      auto h = synth::logits(V, w.llm, prefix);
                      auto d = recovery_distribution(v.steer, std::vector<float>(V, 0.f), 0.0, {});
                      EXPECT_EQ(d.ids[0], sampling::argmax(h));
                      ++checked;
                    });
  EXPECT_GT(checked, 0);
  EXPECT_GT(r.counters.rejections, 0u);
}

TEST(Protocol, RollbackLeavesExactlyTheAgreedPrefix) {
  World w;
  for (bool bonus : {false, true}) {
    for (auto m : {Method::SpecSteer, Method::Sd}) {
      Settings s = settings(m, 60);
      s.lambda = 1.0;
      s.bonus = bonus;
      s.sampler.temperature = 0.9;
      auto c = w.cloud();
      InProcessTransport t(*c);
      auto edge = synth::source(V, w.slm);
      int rounds = 0;
      run_edge(*edge, w.personalized, t, w.open(s), w.is_eog(),
               [&](std::span<const int32_t> cache, std::span<const float> next, const Verdict&) {
                 ++rounds;
                 // Edge: cache = personalized + agreed prefix; next row = fresh evaluation.
                 auto fresh = synth::logits(V, w.slm, cache);
                 ASSERT_EQ(std::vector<float>(next.begin(), next.end()), fresh);
                 std::vector<int32_t> gen(cache.begin() + w.personalized.size(), cache.end());
                 const Cloud* cl = c->session(1);
                 ASSERT_NE(cl, nullptr);
                 std::vector<int32_t> want(w.x);
                 want.insert(want.end(), gen.begin(), gen.end());
                 EXPECT_EQ(cl->llm().tokens(), want);
                 auto fl = synth::logits(V, w.llm, want);
                 EXPECT_EQ(std::vector<float>(cl->llm_next().begin(), cl->llm_next().end()), fl);
                 if (cl->uses_slm()) {
                   EXPECT_EQ(cl->slm_minus().tokens(), want);
                   auto fs = synth::logits(V, w.slm, want);
                   EXPECT_EQ(std::vector<float>(cl->slm_next().begin(), cl->slm_next().end()), fs);
                 }
               });
      EXPECT_GT(rounds, 5);
    }
  }
}

TEST(Protocol, PrivacyOnlyIdsAndXGoUp) {
  World w;
  // Private ids (60..63) that x never contains; generated tokens may
  // legitimately contain them, so only runs of 3+ are checked below.
  Settings s = settings(Method::SpecSteer, 50);
  s.lambda = 0.5;
  auto c = w.cloud();
  InProcessTransport t(*c, true);
  auto edge = synth::source(V, w.slm);
  std::vector<std::vector<float>> edge_rows;
  auto r = run_edge(*edge, w.personalized, t, w.open(s), w.is_eog(),
                    [&](std::span<const int32_t>, std::span<const float> next, const Verdict&) {
                      edge_rows.emplace_back(next.begin(), next.end());
                    });
  ASSERT_FALSE(t.records().empty());
  std::vector<int32_t> uplink_ids;
  for (const auto& rec : t.records()) {
    if (!rec.uplink) continue;
    Message m = decode(rec.bytes);
    if (auto* o = std::get_if<SessionOpen>(&m)) {
      EXPECT_EQ(o->x_llm, w.x);
      EXPECT_EQ(o->x_slm, w.x);
    } else if (auto* b = std::get_if<DraftBlock>(&m)) {
      EXPECT_TRUE(b->draft_probs.empty());
      uplink_ids.insert(uplink_ids.end(), b->committed.begin(), b->committed.end());
      uplink_ids.insert(uplink_ids.end(), b->drafts.begin(), b->drafts.end());
    } else {
      EXPECT_TRUE(std::holds_alternative<Close>(m)) << message_name(m);
    }
    // No edge logit value (as a float bit pattern) anywhere in the uplink.
    for (const auto& row : edge_rows)
      for (float f : row) {
        uint8_t pat[4];
        std::memcpy(pat, &f, 4);
        EXPECT_EQ(std::search(rec.bytes.begin(), rec.bytes.end(), pat, pat + 4), rec.bytes.end());
      }
  }
  // Every uplinked id is a drafted or committed token; the private prompt
  // (60 61 62 63) never appears as a run of 3.
  for (size_t i = 0; i + 2 < uplink_ids.size(); ++i)
    EXPECT_FALSE(uplink_ids[i] == 60 && uplink_ids[i + 1] == 61 && uplink_ids[i + 2] == 62);
  EXPECT_EQ(r.counters.bytes_up, t.bytes_up());
  EXPECT_EQ(r.counters.bytes_down, t.bytes_down());
}

TEST(Protocol, DeterministicForASeed) {
  World w;
  for (auto m : {Method::SpecSteer, Method::Sd, Method::LightCoSteer, Method::CoSteer, Method::Llm}) {
    Settings s = settings(m, 30);
    s.sampler.temperature = 0.8;
    s.sampler.top_p = 0.95;
    auto a = w.run(s), b = w.run(s);
    EXPECT_EQ(a.tokens, b.tokens) << method_name(m);
    EXPECT_EQ(a.counters.bytes_up, b.counters.bytes_up);
    EXPECT_EQ(a.counters.n_accepted, b.counters.n_accepted);
    s.seed = 18;
    auto c = w.run(s);
    EXPECT_NE(a.tokens, c.tokens) << method_name(m);
  }
}

TEST(Protocol, LightCoSteerFollowsTheSteeredArgmax) {
  World w;
  Settings s = settings(Method::LightCoSteer, 20);
  s.top_k = V;  // whole vocabulary: exactly argmax(h_LLM + beta*(h_SLM+ - h_SLM-))
  s.steer_candidates = SteerCandidates::Contrast;  // (plausible would keep only the ids the LLM finds plausible)
  s.beta = 1.5;
  auto r = w.run(s);
  ASSERT_EQ(r.tokens.size(), 20u);
  EXPECT_EQ(r.counters.round_trips, 20u);
  for (size_t i = 0; i < r.tokens.size(); ++i) {
    std::vector<int32_t> px(w.x), pp(w.personalized);
    px.insert(px.end(), r.tokens.begin(), r.tokens.begin() + i);
    pp.insert(pp.end(), r.tokens.begin(), r.tokens.begin() + i);
    auto hl = synth::logits(V, w.llm, px), hm = synth::logits(V, w.slm, px), hp = synth::logits(V, w.slm, pp);
    std::vector<float> h(V);
    for (int j = 0; j < V; ++j) h[j] = static_cast<float>(hl[j] + 1.5 * (hp[j] - hm[j]));
    EXPECT_EQ(r.tokens[i], sampling::argmax(h)) << i;
  }
}

TEST(Protocol, CoSteerCountsFullVectorsOnTheWire) {
  World w;
  auto r = w.run(settings(Method::CoSteer, 10));
  ASSERT_EQ(r.tokens.size(), 10u);
  EXPECT_EQ(r.counters.round_trips, 10u);
  EXPECT_GE(r.counters.bytes_down, 10u * 2 * V * 4);
  // b = 0 removes the private signal: greedy costeer equals greedy llm.
  Settings s = settings(Method::CoSteer, 10);
  s.costeer.b = 0;
  EXPECT_EQ(w.run(s).tokens, w.run(settings(Method::Llm, 10)).tokens);
}

TEST(Protocol, BonusEmitsAnExtraTokenPerFullyAcceptedBlock) {
  World w;
  Settings s = settings(Method::SpecSteer, 48);
  s.lambda = 1e-30;  // accept all: every round ends with a bonus token
  s.bonus = true;
  auto r = w.run(s);
  EXPECT_EQ(r.tokens.size(), 48u);
  EXPECT_EQ(r.counters.bonus_tokens, r.counters.round_trips - (r.tokens.size() % 5 ? 1 : 0));
  EXPECT_LE(r.counters.round_trips, 10u);  // 5 tokens per round trip instead of 4
}

TEST(Protocol, StopsAtEog) {
  for (auto m : {Method::SpecSteer, Method::Sd, Method::LightCoSteer, Method::CoSteer, Method::SlmPlus}) {
    World w;
    auto base = w.run(settings(m, 30));
    ASSERT_EQ(base.tokens.size(), 30u);
    ASSERT_EQ(base.stop_reason, "length");
    const int32_t stop = base.tokens[10];
    w.eog = {stop};
    size_t first = 0;
    while (base.tokens[first] != stop) ++first;
    auto r = w.run(settings(m, 30));
    EXPECT_EQ(r.stop_reason, "eog") << method_name(m);
    // Same stream up to the first EOG, which is not emitted.
    EXPECT_EQ(r.tokens, std::vector<int32_t>(base.tokens.begin(), base.tokens.begin() + first)) << method_name(m);
  }
}

TEST(Protocol, CloudRefusesMismatchedModelsAndGarbage) {
  World w;
  auto c = w.cloud();
  InProcessTransport t(*c);
  auto edge = synth::source(V, w.slm);
  SessionOpen o = w.open(settings(Method::SpecSteer));
  o.slm.fingerprint = 99;
  try {
    run_edge(*edge, w.personalized, t, o, w.is_eog());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("SLM"), std::string::npos) << e.what();
  }
  // Garbage and unknown sessions come back as ErrorReply, never a crash.
  sampling::Rng rng(3);
  for (int i = 0; i < 500; ++i) {
    std::vector<uint8_t> junk(rng.next_u64() % 40);
    for (auto& b : junk) b = static_cast<uint8_t>(rng.next_u64());
    if (!junk.empty() && i % 2) junk[0] = static_cast<uint8_t>(3 + i % 5);
    auto reply = decode(c->handle(junk));
    (void)reply;
  }
  auto reply = decode(c->handle(encode(DraftBlock{12345, {}, {1}, {}})));
  ASSERT_TRUE(std::holds_alternative<ErrorReply>(reply));
  EXPECT_NE(std::get<ErrorReply>(reply).message.find("unknown session"), std::string::npos);
  EXPECT_EQ(c->n_sessions(), 0u);
  // A session cannot be driven past its token budget (max_new + K + 1).
  Settings s = settings(Method::SpecSteer, 4);
  s.lambda = 1e-30;
  auto acc = std::get<SessionAccept>(decode(c->handle(encode(w.open(s)))));
  int blocks = 0;
  for (; blocks < 10; ++blocks) {
    auto r = decode(c->handle(encode(DraftBlock{acc.session, {}, {1, 2, 3, 4}, {}})));
    if (auto* e = std::get_if<ErrorReply>(&r)) {
      EXPECT_NE(e->message.find("budget"), std::string::npos) << e->message;
      break;
    }
  }
  EXPECT_EQ(blocks, 2);
}
