#include "steer/formulas.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/error.h"
#include "synth.h"

using namespace specsteer;
using namespace specsteer::steer;

namespace {
std::vector<float> logp(std::vector<double> p, float shift) {
  std::vector<float> out;
  for (double x : p) out.push_back(static_cast<float>(std::log(x)) + shift);
  return out;
}
sampling::SamplerParams temp1() {
  sampling::SamplerParams p;
  p.temperature = 1.0;
  return p;
}
}  // namespace

TEST(Eq7, HandComputedCases) {
  // Unnormalized logits (shifted) so the softmax normalization is exercised.
  const auto llm = logp({0.5, 0.3, 0.2}, 7.f);
  const auto slm = logp({0.25, 0.5, 0.25}, -3.f);
  EXPECT_NEAR(ratio_accept_prob(llm, slm, 0, 0.5), 1.0, 1e-9);        // 0.5/(0.5*0.25) = 4
  EXPECT_NEAR(ratio_accept_prob(llm, slm, 0, 4.0), 0.5, 1e-6);        // 0.5/(4*0.25)
  EXPECT_NEAR(ratio_accept_prob(llm, slm, 1, 1.0), 0.6, 1e-6);        // 0.3/0.5
  EXPECT_NEAR(ratio_accept_prob(llm, slm, 1, 0.5), 1.0, 1e-9);        // 1.2 -> 1
  EXPECT_NEAR(ratio_accept_prob(llm, slm, 2, 2.0), 0.2 / 0.5, 1e-6);  // 0.2/(2*0.25)
  EXPECT_EQ(ratio_accept_prob(llm, slm, 2, 0.0), 1.0);                // lambda -> 0 accepts all
  EXPECT_NEAR(ratio_accept_prob(llm, slm, 2, 1e-9), 1.0, 1e-12);
  EXPECT_THROW(ratio_accept_prob(llm, slm, 3, 1.0), Error);
}

TEST(Eq7, AcceptRuleHasExactProbability) {
  EXPECT_TRUE(accept(0.0, 1e-300));
  EXPECT_FALSE(accept(0.0, 0.0));  // zero-probability tokens are never accepted
  EXPECT_TRUE(accept(0.999999, 1.0));
  EXPECT_FALSE(accept(0.5, 0.5));
  EXPECT_TRUE(accept(0.4999, 0.5));
}

TEST(Eq8, CloudTopKOrderAndTies) {
  std::vector<float> llm = {1, 5, 3, 5, 0};
  std::vector<float> slm = {0, 1, 0, 1, 0};
  auto top = cloud_steer_topk(llm, slm, 2.0, 3);  // values 1, 3, 3, 3, 0
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0], (IdValue{1, 3.f}));
  EXPECT_EQ(top[1], (IdValue{2, 3.f}));
  EXPECT_EQ(top[2], (IdValue{3, 3.f}));
  EXPECT_EQ(cloud_steer_topk(llm, slm, 2.0, 99).size(), 5u);
}

TEST(Eq8, FullTopKRecoveryEqualsSteeredSoftmax) {
  const int V = 50;
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    std::vector<int32_t> none;
    auto llm = synth::logits(V, {seed, 3.0, 9, 1.0}, none);
    auto minus = synth::logits(V, {seed + 100, 2.0, 9, 1.0}, none);
    auto plus = synth::logits(V, {seed + 200, 2.0, 9, 1.0}, none);
    for (double beta : {0.0, 0.5, 1.0, 2.0}) {
      auto cloud = cloud_steer_topk(llm, minus, beta, V);
      auto d = recovery_distribution(cloud, plus, beta, temp1());
      std::vector<float> h(V);
      for (int i = 0; i < V; ++i) h[i] = static_cast<float>(llm[i] + beta * (plus[i] - minus[i]));
      auto want = sampling::softmax(h);
      auto got = d.dense(V);
      for (int i = 0; i < V; ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << "seed " << seed << " beta " << beta;
    }
  }
}

TEST(Eq8, BetaZeroRecoversFromTheLlmAlone) {
  const int V = 40;
  std::vector<int32_t> none;
  auto llm = synth::logits(V, {3, 3.0, 9, 1.0}, none);
  auto minus = synth::logits(V, {4, 3.0, 9, 1.0}, none);
  auto plus = synth::logits(V, {5, 3.0, 9, 1.0}, none);
  auto cloud = cloud_steer_topk(llm, minus, 0.0, 8);
  auto top_llm = cloud_steer_topk(llm, std::vector<float>(V, 0.f), 0.0, 8);
  EXPECT_EQ(cloud, top_llm);  // the support is the LLM's own top-8
  auto d = recovery_distribution(cloud, plus, 0.0, temp1());
  // Within the support, probabilities are the LLM's renormalized softmax.
  auto p = sampling::softmax(llm);
  double z = 0;
  for (auto& e : top_llm) z += p[e.id];
  for (auto& e : top_llm) EXPECT_NEAR(d.prob(e.id), p[e.id] / z, 1e-6);
  // Greedy recovery with beta = 0 is the LLM's argmax.
  auto g = recovery_distribution(cloud, plus, 0.0, sampling::SamplerParams{});
  EXPECT_EQ(g.ids[0], sampling::argmax(llm));
}

TEST(Eq8, RejectsBadSteeringVectors) {
  std::vector<float> plus = {0, 1, 2};
  EXPECT_THROW(recovery_distribution(std::vector<IdValue>{}, plus, 1.0, temp1()), Error);
  std::vector<IdValue> bad = {{3, 1.f}};
  EXPECT_THROW(recovery_distribution(bad, plus, 1.0, temp1()), Error);
}

TEST(Sd, AcceptanceAndResidual) {
  EXPECT_DOUBLE_EQ(sd_accept_prob(0.2, 0.4), 0.5);
  EXPECT_DOUBLE_EQ(sd_accept_prob(0.5, 0.4), 1.0);
  EXPECT_DOUBLE_EQ(sd_accept_prob(0.5, 0.0), 0.0);
  std::vector<double> p = {0.5, 0.3, 0.2}, q = {0.2, 0.6, 0.2};
  auto r = sd_residual(p, q);  // max(0, p - q) = 0.3, 0, 0
  ASSERT_EQ(r.ids.size(), 1u);
  EXPECT_EQ(r.ids[0], 0);
  std::vector<double> p2 = {0.4, 0.4, 0.2}, q2 = {0.1, 0.2, 0.7};
  auto r2 = sd_residual(p2, q2);  // 0.3, 0.2, 0 -> 0.6, 0.4
  EXPECT_NEAR(r2.prob(0), 0.6, 1e-12);
  EXPECT_NEAR(r2.prob(1), 0.4, 1e-12);
  EXPECT_THROW(sd_residual(p, p), Error);
}

TEST(CoSteer, NoDeltaKeepsTheBase) {
  // b = 0: u stays 0 and player stays log_softmax(h_LLM).
  std::vector<float> llm = {-1.2f, -0.7f, -2.3f, -1.6f};
  auto lsm = sampling::log_softmax(llm);
  std::vector<float> base(lsm.begin(), lsm.end());
  std::vector<float> minus = {-1.f, -2.f, -3.f, -0.5f};
  std::vector<float> plus = {3.f, 0.f, 1.f, 2.f};
  CoSteerParams p;
  p.b = 0;
  auto player = costeer_player(base, minus, plus, p);
  for (size_t i = 0; i < base.size(); ++i) EXPECT_NEAR(player[i], base[i], 1e-6);
}

TEST(CoSteer, OneIterationByHand) {
  // T = 1, player = base: u = b*delta, cum = u,
  // player = lsm((L*base + b*delta + base/eta) / (L + 1/eta)).
  std::vector<float> base = {std::log(0.5f), std::log(0.5f)};
  std::vector<float> minus = {std::log(0.5f), std::log(0.5f)};
  std::vector<float> plus = {0.f, std::log(3.f)};  // lsm: log .25, log .75
  CoSteerParams p;
  p.iterations = 1;
  auto player = costeer_player(base, minus, plus, p);
  const double L = 2, eta = 10, b = 1;
  double z0 = (L * std::log(0.5) + b * (std::log(0.25) - std::log(0.5)) + std::log(0.5) / eta) / (L + 1 / eta);
  double z1 = (L * std::log(0.5) + b * (std::log(0.75) - std::log(0.5)) + std::log(0.5) / eta) / (L + 1 / eta);
  double lse = std::log(std::exp(z0) + std::exp(z1));
  EXPECT_NEAR(player[0], z0 - lse, 1e-6);
  EXPECT_NEAR(player[1], z1 - lse, 1e-6);
  // More iterations pull further toward the private preference.
  p.iterations = 20;
  auto p20 = costeer_player(base, minus, plus, p);
  EXPECT_GT(p20[1], player[1]);
}

namespace {
// The plausible set by definition: ids with softmax p(y) >= gamma * max p,
// computed in double from the logits.
std::vector<int32_t> plausible_by_definition(const std::vector<float>& h, double gamma) {
  double m = -INFINITY;
  for (float x : h) m = std::max(m, double(x));
  double z = 0;
  for (float x : h) z += std::exp(double(x) - m);
  const double pmax = 1.0 / z;
  std::vector<int32_t> out;
  for (size_t i = 0; i < h.size(); ++i)
    if (std::exp(double(h[i]) - m) / z >= gamma * pmax) out.push_back(static_cast<int32_t>(i));
  return out;
}
std::vector<int32_t> sorted_ids(const std::vector<IdValue>& v) {
  std::vector<int32_t> ids;
  for (const auto& p : v) ids.push_back(p.id);
  std::sort(ids.begin(), ids.end());
  return ids;
}
}  // namespace

TEST(Eq8Plausible, HandComputedSetTiesAndKCap) {
  // p_LLM = 0.3, 0.3, 0.2, 0.1, 0.06, 0.04 (ids 0 and 1 tie at the maximum).
  const auto llm = logp({0.3, 0.3, 0.2, 0.1, 0.06, 0.04}, 4.f);
  // SLM- prefers id 0 strongly: the contrast value ranks id 0 below the others.
  const auto slm = logp({0.9, 0.02, 0.02, 0.02, 0.02, 0.02}, -1.f);
  // gamma 0.5: p >= 0.15 -> {0, 1, 2}; both ids tied at the maximum are in.
  auto v = cloud_steer_plausible(llm, slm, 1.0, 32, 0.5);
  EXPECT_EQ(sorted_ids(v), (std::vector<int32_t>{0, 1, 2}));
  // Ranked by h_LLM - beta*h_SLM-, valued by it.
  ASSERT_EQ(v.size(), 3u);
  for (size_t i = 1; i < v.size(); ++i) EXPECT_GE(v[i - 1].value, v[i].value);
  for (const auto& p : v) EXPECT_FLOAT_EQ(p.value, llm[p.id] - slm[p.id]);
  EXPECT_EQ(v.back().id, 0);  // implausible to SLM-, so last among the plausible
  // k caps the set: the best 2 by contrast value among {0, 1, 2}.
  auto capped = cloud_steer_plausible(llm, slm, 1.0, 2, 0.5);
  EXPECT_EQ(sorted_ids(capped), (std::vector<int32_t>{1, 2}));
  // gamma 1: only the ids at the maximum; tied contrast values order by lower id.
  const std::vector<float> flat_slm(6, 0.f);
  auto top = cloud_steer_plausible(llm, flat_slm, 1.0, 32, 1.0);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].id, 0);
  EXPECT_EQ(top[1].id, 1);
  // The paper's rule on the same vectors takes ids 3 and 4 (p 0.1 and 0.06,
  // below gamma * max) before the most likely id 0.
  auto paper = cloud_steer_topk(llm, slm, 1.0, 4);
  EXPECT_EQ(std::count_if(paper.begin(), paper.end(), [](const IdValue& p) { return p.id >= 3; }), 2);
  EXPECT_EQ(std::count_if(paper.begin(), paper.end(), [](const IdValue& p) { return p.id == 0; }), 0);
  EXPECT_THROW(cloud_steer_plausible(llm, slm, 1.0, 3, 1.5), Error);
  EXPECT_THROW(cloud_steer_plausible(llm, slm, 1.0, 0, 0.1), Error);
}

TEST(Eq8Plausible, SetIsExactlyTheIdsAboveGammaTimesMax) {
  const int V = 300;
  std::vector<int32_t> none;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    auto llm = synth::logits(V, {seed, 3.0, 9, 1.0}, none);
    auto minus = synth::logits(V, {seed + 50, 2.0, 9, 1.0}, none);
    // Ties: copy a few logits onto others, including the maximum.
    const auto top_it = std::max_element(llm.begin(), llm.end());
    llm[(seed * 7) % V] = *top_it;
    llm[(seed * 11) % V] = llm[(seed * 13) % V];
    for (double gamma : {0.0, 1e-4, 0.01, 0.1, 0.3, 0.9, 1.0}) {
      const auto want = plausible_by_definition(llm, gamma);
      // Skip draws with an id within rounding of the threshold (float logits).
      bool borderline = false;
      const double m = *std::max_element(llm.begin(), llm.end());
      for (float x : llm)
        if (gamma > 0 && std::abs((double(x) - m) - std::log(gamma)) < 1e-5) borderline = true;
      if (borderline) continue;
      auto all = cloud_steer_plausible(llm, minus, 1.0, V, gamma);
      EXPECT_EQ(sorted_ids(all), want) << "seed " << seed << " gamma " << gamma;
      // With a k cap: the k best by contrast value among exactly that set.
      const int k = 5;
      auto capped = cloud_steer_plausible(llm, minus, 1.0, k, gamma);
      ASSERT_EQ(capped.size(), std::min<size_t>(k, want.size()));
      std::vector<std::pair<float, int32_t>> ranked;
      for (int32_t id : want) ranked.push_back({llm[id] - minus[id], id});
      std::sort(ranked.begin(), ranked.end(),
                [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
      for (size_t i = 0; i < capped.size(); ++i) EXPECT_EQ(capped[i].id, ranked[i].second) << "rank " << i;
    }
    // gamma 0 admits every id: exactly the paper's vector (count, ids, order, values).
    for (int k : {1, 32, V}) {
      auto plausible = cloud_steer_plausible(llm, minus, 1.5, k, 0.0);
      auto paper = cloud_steer_topk(llm, minus, 1.5, k);
      EXPECT_EQ(plausible.size(), paper.size());
      EXPECT_EQ(plausible, paper);
    }
  }
}

TEST(Eq8Plausible, SettingsSelectTheRule) {
  std::vector<int32_t> none;
  auto llm = synth::logits(64, {3, 3.0, 9, 1.0}, none);
  auto minus = synth::logits(64, {4, 2.0, 9, 1.0}, none);
  Settings s;
  s.beta = 0.7;
  s.top_k = 8;
  s.steer_candidates = SteerCandidates::Contrast;
  EXPECT_EQ(cloud_steer(llm, minus, s), cloud_steer_topk(llm, minus, 0.7, 8));
  s.steer_candidates = SteerCandidates::Plausible;
  s.plausibility = 0.2;
  EXPECT_EQ(cloud_steer(llm, minus, s), cloud_steer_plausible(llm, minus, 0.7, 8, 0.2));
}

// Recovery from the whole vector (every id, Eq. 8 over the vocabulary) equals
// recovery from the sparse vector with k = vocabulary size, for both rules
// (plausible at gamma 0 admits every id), sampled and greedy.
TEST(Eq8Plausible, FullVectorRecoveryEqualsKEqualsVocabulary) {
  const int V = 80;
  std::vector<int32_t> none;
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    auto llm = synth::logits(V, {seed, 3.0, 9, 1.0}, none);
    auto minus = synth::logits(V, {seed + 100, 2.0, 9, 1.0}, none);
    auto plus = synth::logits(V, {seed + 200, 2.0, 9, 1.0}, none);
    for (double beta : {0.5, 1.0, 2.0}) {
      std::vector<int32_t> ids(V);
      std::vector<double> full(V);
      for (int i = 0; i < V; ++i) {
        ids[i] = i;
        full[i] = double(static_cast<float>(llm[i] - beta * double(minus[i]))) + beta * double(plus[i]);
      }
      for (bool greedy : {false, true}) {
        sampling::SamplerParams sp = greedy ? sampling::SamplerParams{} : temp1();
        const auto want = sampling::make_distribution(ids, full, sp).dense(V);
        for (auto sparse : {cloud_steer_topk(llm, minus, beta, V), cloud_steer_plausible(llm, minus, beta, V, 0.0)}) {
          ASSERT_EQ(sparse.size(), size_t(V));
          const auto got = recovery_distribution(sparse, plus, beta, sp).dense(V);
          for (int i = 0; i < V; ++i) EXPECT_NEAR(got[i], want[i], 1e-12) << "seed " << seed << " id " << i;
        }
      }
    }
  }
}
