#include "steer/formulas.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "common/error.h"

namespace specsteer::steer {

double ratio_accept_prob(std::span<const float> h_llm, std::span<const float> h_slm_minus, int32_t y,
                         double lambda) {
  if (y < 0 || static_cast<size_t>(y) >= h_llm.size() || static_cast<size_t>(y) >= h_slm_minus.size())
    throw Error("ratio test: token id " + std::to_string(y) + " outside the vocabulary");
  if (lambda <= 0) return 1.0;
  const double lp_llm = h_llm[y] - sampling::log_sum_exp(h_llm);
  const double lp_slm = h_slm_minus[y] - sampling::log_sum_exp(h_slm_minus);
  const double log_ratio = lp_llm - lp_slm - std::log(lambda);
  return log_ratio >= 0 ? 1.0 : std::exp(log_ratio);
}

double unit_accept_prob(double logp_llm, double logp_slm_minus, double lambda) {
  if (lambda <= 0) return 1.0;
  const double log_ratio = logp_llm - logp_slm_minus - std::log(lambda);
  if (std::isnan(log_ratio)) return 0.0;  // both impossible: nothing supports the unit
  return log_ratio >= 0 ? 1.0 : std::exp(log_ratio);
}

namespace {

// The k largest entries of h_LLM - beta*h_SLM- among `candidates` (all ids
// when null), value descending, ties by lower id.
std::vector<IdValue> contrast_topk(std::span<const float> h_llm, std::span<const float> h_slm_minus, double beta,
                                   int k, std::vector<int32_t>* candidates) {
  const size_t n = std::min(h_llm.size(), h_slm_minus.size());
  if (n == 0 || k < 1) throw Error("steering vector: empty vocabulary or k < 1");
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(h_llm[i] - beta * static_cast<double>(h_slm_minus[i]));
  std::vector<int32_t> all;
  if (!candidates) {
    all.resize(n);
    std::iota(all.begin(), all.end(), 0);
  }
  std::vector<int32_t>& idx = candidates ? *candidates : all;
  const size_t kk = std::min(idx.size(), static_cast<size_t>(k));
  auto better = [&](int32_t a, int32_t b) { return v[a] != v[b] ? v[a] > v[b] : a < b; };
  std::partial_sort(idx.begin(), idx.begin() + kk, idx.end(), better);
  std::vector<IdValue> out(kk);
  for (size_t i = 0; i < kk; ++i) out[i] = {idx[i], v[idx[i]]};
  return out;
}

}  // namespace

std::vector<IdValue> cloud_steer_topk(std::span<const float> h_llm, std::span<const float> h_slm_minus,
                                      double beta, int k) {
  return contrast_topk(h_llm, h_slm_minus, beta, k, nullptr);
}

std::vector<IdValue> cloud_steer_plausible(std::span<const float> h_llm, std::span<const float> h_slm_minus,
                                           double beta, int k, double gamma) {
  if (!(gamma >= 0 && gamma <= 1)) throw Error("steering vector: plausibility gamma must be in [0, 1]");
  const size_t n = std::min(h_llm.size(), h_slm_minus.size());
  if (n == 0 || k < 1) throw Error("steering vector: empty vocabulary or k < 1");
  // p(y) >= gamma * max p  <=>  h(y) - max h >= log gamma: the softmax
  // normalizer cancels, so no exponentials and no underflow.
  const float h_max = *std::max_element(h_llm.begin(), h_llm.begin() + static_cast<std::ptrdiff_t>(n));
  const double log_gamma = gamma > 0 ? std::log(gamma) : -INFINITY;
  std::vector<int32_t> plausible;
  for (size_t i = 0; i < n; ++i)
    if (static_cast<double>(h_llm[i]) - static_cast<double>(h_max) >= log_gamma)
      plausible.push_back(static_cast<int32_t>(i));
  return contrast_topk(h_llm, h_slm_minus, beta, k, &plausible);
}

std::vector<IdValue> cloud_steer(std::span<const float> h_llm, std::span<const float> h_slm_minus,
                                 const Settings& s) {
  if (s.steer_candidates == SteerCandidates::Plausible)
    return cloud_steer_plausible(h_llm, h_slm_minus, s.beta, s.top_k, s.plausibility);
  return cloud_steer_topk(h_llm, h_slm_minus, s.beta, s.top_k);
}

sampling::Distribution recovery_distribution(std::span<const IdValue> cloud, std::span<const float> h_slm_plus,
                                             double beta, const sampling::SamplerParams& sampler) {
  if (cloud.empty()) throw Error("recovery: the cloud sent an empty steering vector");
  std::vector<int32_t> ids(cloud.size());
  std::vector<double> h(cloud.size());
  for (size_t i = 0; i < cloud.size(); ++i) {
    const int32_t id = cloud[i].id;
    if (id < 0 || static_cast<size_t>(id) >= h_slm_plus.size())
      throw Error("recovery: steering id " + std::to_string(id) + " outside the vocabulary");
    ids[i] = id;
    h[i] = static_cast<double>(cloud[i].value) + beta * static_cast<double>(h_slm_plus[id]);
  }
  return sampling::make_distribution(ids, h, sampler);
}

double sd_accept_prob(double p, double q) {
  if (!(q > 0)) return 0.0;  // the drafter cannot have drawn a token it gives no mass
  return std::min(1.0, p / q);
}

sampling::Distribution sd_residual(std::span<const double> p, std::span<const double> q) {
  if (p.size() != q.size()) throw Error("sd residual: distributions differ in length");
  std::vector<double> w(p.size());
  for (size_t i = 0; i < p.size(); ++i) w[i] = std::max(0.0, p[i] - q[i]);
  return sampling::from_weights(w);
}

std::vector<double> costeer_player(std::span<const float> llm_lp, std::span<const float> slm_minus_lp,
                                   std::span<const float> h_slm_plus, const CoSteerParams& p) {
  const size_t n = llm_lp.size();
  if (slm_minus_lp.size() != n || h_slm_plus.size() < n || n == 0)
    throw Error("costeer: vectors differ in length");
  const std::vector<double> plus_lp = sampling::log_softmax(h_slm_plus.first(n));
  std::vector<double> base(llm_lp.begin(), llm_lp.end());
  std::vector<double> delta(n), cum(n, 0.0), player = base, z(n);
  for (size_t i = 0; i < n; ++i) delta[i] = plus_lp[i] - static_cast<double>(slm_minus_lp[i]);
  for (int t = 1; t <= p.iterations; ++t) {
    const double tl = t * p.L;
    const double denom = tl + 1.0 / p.eta;
    double m = -INFINITY;
    for (size_t i = 0; i < n; ++i) {
      const double u = p.a * (player[i] - base[i]) + p.b * delta[i];
      cum[i] += u;
      z[i] = (tl * base[i] + cum[i] + player[i] / p.eta) / denom;
      m = std::max(m, z[i]);
    }
    double s = 0.0;
    for (size_t i = 0; i < n; ++i) s += std::exp(z[i] - m);
    const double lse = m + std::log(s);
    for (size_t i = 0; i < n; ++i) player[i] = z[i] - lse;
  }
  return player;
}

}  // namespace specsteer::steer
