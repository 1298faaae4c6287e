#include "sampling/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "common/error.h"

namespace specsteer::sampling {

namespace {

constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ull;

uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Keeps the filtered support of `probs` (over `ids`), already softmaxed.
Distribution filter(std::vector<int32_t> ids, std::vector<double> probs, const SamplerParams& p) {
  const size_t n = ids.size();
  const bool need_sort = p.top_k > 0 || p.top_p < 1.0 || p.min_p > 0.0;
  Distribution d;
  if (!need_sort) {
    d.ids = std::move(ids);
    d.probs = std::move(probs);
    return d;
  }
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  auto better = [&](uint32_t a, uint32_t b) {
    if (probs[a] != probs[b]) return probs[a] > probs[b];
    return ids[a] < ids[b];
  };
  size_t keep = n;
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < n) {
    keep = static_cast<size_t>(p.top_k);
    std::partial_sort(order.begin(), order.begin() + keep, order.end(), better);
  } else {
    std::sort(order.begin(), order.end(), better);
  }
  double total = 0.0;
  for (size_t i = 0; i < keep; ++i) total += probs[order[i]];
  if (p.top_p < 1.0) {
    double cum = 0.0;
    size_t cut = keep;
    for (size_t i = 0; i < keep; ++i) {
      cum += probs[order[i]] / total;
      if (cum >= p.top_p) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
  }
  if (p.min_p > 0.0 && keep > 0) {
    const double floor = p.min_p * probs[order[0]];
    size_t cut = 1;
    while (cut < keep && probs[order[cut]] >= floor) ++cut;
    keep = cut;
  }
  double sum = 0.0;
  for (size_t i = 0; i < keep; ++i) sum += probs[order[i]];
  d.ids.reserve(keep);
  d.probs.reserve(keep);
  for (size_t i = 0; i < keep; ++i) {
    d.ids.push_back(ids[order[i]]);
    d.probs.push_back(probs[order[i]] / sum);
  }
  return d;
}

template <typename T>
int32_t argmax_impl(std::span<const T> v) {
  if (v.empty()) throw Error("sampling: argmax of an empty vector");
  size_t best = 0;
  for (size_t i = 1; i < v.size(); ++i)
    if (v[i] > v[best]) best = i;
  return static_cast<int32_t>(best);
}

}  // namespace

Rng::Rng(uint64_t seed, uint64_t stream) : key_(mix64(seed ^ mix64(stream + kGamma))) {}

uint64_t Rng::next_u64() {
  ++counter_;
  return mix64(key_ + counter_ * kGamma);
}

double Rng::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double Rng::uniform_at(uint64_t index) const {
  return static_cast<double>(mix64(key_ + (index + 1) * kGamma) >> 11) * 0x1.0p-53;
}

double log_sum_exp(std::span<const float> logits) {
  if (logits.empty()) throw Error("sampling: softmax of an empty vector");
  float m = -std::numeric_limits<float>::infinity();
  for (float x : logits) m = std::max(m, x);
  if (!std::isfinite(m)) throw Error("sampling: logits have no finite maximum");
  double s = 0.0;
  for (float x : logits) s += std::exp(static_cast<double>(x) - m);
  return m + std::log(s);
}

std::vector<double> log_softmax(std::span<const float> logits, double temperature) {
  if (!(temperature > 0.0)) throw Error("sampling: log_softmax needs temperature > 0");
  if (logits.empty()) throw Error("sampling: softmax of an empty vector");
  std::vector<double> out(logits.size());
  double m = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < logits.size(); ++i) {
    out[i] = static_cast<double>(logits[i]) / temperature;
    m = std::max(m, out[i]);
  }
  if (!std::isfinite(m)) throw Error("sampling: logits have no finite maximum");
  double s = 0.0;
  for (double x : out) s += std::exp(x - m);
  const double lse = m + std::log(s);
  for (double& x : out) x -= lse;
  return out;
}

std::vector<double> softmax(std::span<const float> logits, double temperature) {
  std::vector<double> out = log_softmax(logits, temperature);
  for (double& x : out) x = std::exp(x);
  return out;
}

int32_t argmax(std::span<const float> values) { return argmax_impl(values); }
int32_t argmax(std::span<const double> values) { return argmax_impl(values); }

void validate(const SamplerParams& p) {
  if (!std::isfinite(p.temperature) || p.temperature < 0)
    throw Error("sampling: temperature must be >= 0, got " + std::to_string(p.temperature));
  if (p.top_k < 0) throw Error("sampling: top_k must be >= 0, got " + std::to_string(p.top_k));
  if (!(p.top_p > 0.0 && p.top_p <= 1.0))
    throw Error("sampling: top_p must be in (0, 1], got " + std::to_string(p.top_p));
  if (!(p.min_p >= 0.0 && p.min_p < 1.0))
    throw Error("sampling: min_p must be in [0, 1), got " + std::to_string(p.min_p));
}

void validate(const RepeatPenalty& r) {
  if (!std::isfinite(r.penalty) || r.penalty <= 0)
    throw Error("sampling: repeat_penalty must be a finite number > 0 (1 = off), got " + std::to_string(r.penalty));
  if (r.last_n < -1)
    throw Error("sampling: repeat_last_n must be >= -1 (0 = off, -1 = all), got " + std::to_string(r.last_n));
}

void apply_repeat_penalty(std::span<float> logits, std::span<const int32_t> history, const RepeatPenalty& r) {
  validate(r);
  if (!r.active()) return;
  const size_t n = r.last_n < 0 ? history.size() : std::min(history.size(), static_cast<size_t>(r.last_n));
  std::vector<int32_t> seen(history.end() - static_cast<std::ptrdiff_t>(n), history.end());
  std::sort(seen.begin(), seen.end());
  seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  for (const int32_t t : seen) {
    if (t < 0 || static_cast<size_t>(t) >= logits.size()) continue;
    float& l = logits[static_cast<size_t>(t)];
    l = l > 0 ? static_cast<float>(l / r.penalty) : static_cast<float>(l * r.penalty);
  }
}

double Distribution::prob(int32_t id) const {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] == id) return probs[i];
  return 0.0;
}

std::vector<double> Distribution::dense(int n_vocab) const {
  std::vector<double> out(static_cast<size_t>(n_vocab), 0.0);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= n_vocab) throw Error("sampling: distribution id outside the vocabulary");
    out[static_cast<size_t>(ids[i])] += probs[i];
  }
  return out;
}

Distribution make_distribution(std::span<const float> logits, const SamplerParams& p) {
  validate(p);
  if (p.greedy()) return Distribution{{argmax(logits)}, {1.0}};
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  return filter(std::move(ids), softmax(logits, p.temperature), p);
}

Distribution make_distribution(std::span<const int32_t> ids, std::span<const double> logits,
                               const SamplerParams& p) {
  validate(p);
  if (ids.size() != logits.size() || ids.empty())
    throw Error("sampling: sparse distribution needs as many logits as ids (and at least one)");
  if (p.greedy()) {
    size_t best = 0;
    for (size_t i = 1; i < ids.size(); ++i)
      if (logits[i] > logits[best] || (logits[i] == logits[best] && ids[i] < ids[best])) best = i;
    return Distribution{{ids[best]}, {1.0}};
  }
  double m = -std::numeric_limits<double>::infinity();
  for (double x : logits) m = std::max(m, x / p.temperature);
  if (!std::isfinite(m)) throw Error("sampling: logits have no finite maximum");
  std::vector<double> probs(ids.size());
  double s = 0.0;
  for (size_t i = 0; i < ids.size(); ++i) s += probs[i] = std::exp(logits[i] / p.temperature - m);
  for (double& x : probs) x /= s;
  return filter(std::vector<int32_t>(ids.begin(), ids.end()), std::move(probs), p);
}

Distribution from_weights(std::span<const double> w) {
  Distribution d;
  double s = 0.0;
  for (size_t i = 0; i < w.size(); ++i) {
    if (w[i] > 0.0) {
      d.ids.push_back(static_cast<int32_t>(i));
      d.probs.push_back(w[i]);
      s += w[i];
    }
  }
  if (!(s > 0.0)) throw Error("sampling: distribution weights sum to zero");
  for (double& x : d.probs) x /= s;
  return d;
}

int32_t sample(const Distribution& d, double u) {
  if (d.ids.empty()) throw Error("sampling: cannot sample an empty distribution");
  double cum = 0.0;
  for (size_t i = 0; i < d.ids.size(); ++i) {
    cum += d.probs[i];
    if (u < cum) return d.ids[i];
  }
  // Rounding left the total a hair below 1: the last id with mass takes it.
  for (size_t i = d.ids.size(); i-- > 0;)
    if (d.probs[i] > 0.0) return d.ids[i];
  return d.ids.back();
}

int32_t sample(std::span<const float> logits, const SamplerParams& p, Rng& rng) {
  if (p.greedy()) {
    validate(p);
    return argmax(logits);
  }
  return sample(make_distribution(logits, p), rng.uniform());
}

}  // namespace specsteer::sampling
