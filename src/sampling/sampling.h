#pragma once
// Softmax, greedy and seeded sampling (temperature, top-k, top-p, min-p).
// Everything here is deterministic: the same logits, settings and RNG state
// give the same token on every platform (no std::*_distribution, whose
// output differs between standard libraries).
#include <cstdint>
#include <span>
#include <vector>

namespace specsteer::sampling {

// Counter-based generator: output i of stream (seed, stream) is
// SplitMix64's finalizer applied to key(seed, stream) + i * golden-gamma.
// Cheap to split into independent streams (edge drafts, cloud acceptance
// draws, ...) and fully specified here, so results never depend on the
// standard library.
class Rng {
 public:
  explicit Rng(uint64_t seed = 0, uint64_t stream = 0);
  uint64_t next_u64();
  double uniform();  // [0, 1) with 53 random bits
  // The draw number `index` of this stream (0-based: uniform_at(i) is what
  // the (i+1)-th uniform() returns), without state: a draw keyed by a
  // position stays the same however the work before it was split.
  double uniform_at(uint64_t index) const;
  uint64_t draws() const { return counter_; }

 private:
  uint64_t key_;
  uint64_t counter_ = 0;
};

// Probabilities in double precision (logit differences matter in ratio tests).
std::vector<double> softmax(std::span<const float> logits, double temperature = 1.0);
std::vector<double> log_softmax(std::span<const float> logits, double temperature = 1.0);
double log_sum_exp(std::span<const float> logits);
// Index of the largest value; ties go to the lowest id. Throws on empty input.
int32_t argmax(std::span<const float> values);
int32_t argmax(std::span<const double> values);

// temperature <= 0 means greedy (one-hot at the argmax). Filters apply in the
// order temperature -> softmax -> top-k -> top-p -> min-p, then renormalize.
struct SamplerParams {
  double temperature = 0.0;
  int top_k = 0;       // 0 = off
  double top_p = 1.0;  // 1 = off
  double min_p = 0.0;  // 0 = off
  bool greedy() const { return temperature <= 0.0; }
};
void validate(const SamplerParams& p);  // throws specsteer::Error naming the field

// llama.cpp's repeat penalty (--repeat-penalty, --repeat-last-n): each id
// among the last `last_n` tokens of the history (-1: all of it) has its logit
// divided by `penalty` when positive and multiplied when negative, once
// however often it occurs. Applied to logits before make_distribution.
struct RepeatPenalty {
  double penalty = 1.0;  // 1 = off
  int last_n = 64;       // 0 = off, -1 = the whole history
  bool active() const { return penalty != 1.0 && last_n != 0; }
};
void validate(const RepeatPenalty& r);  // throws Error: penalty finite and > 0, last_n >= -1
void apply_repeat_penalty(std::span<float> logits, std::span<const int32_t> history, const RepeatPenalty& r);

// A finite distribution over token ids: sparse (only the support is listed),
// probabilities sum to 1. `ids` are ascending unless produced by a filter
// that sorts (then ordered by probability, ties by id); sample() walks the
// listed order, so the order is part of the deterministic contract.
struct Distribution {
  std::vector<int32_t> ids;
  std::vector<double> probs;
  double prob(int32_t id) const;  // 0 when outside the support
  std::vector<double> dense(int n_vocab) const;
};

// Distribution of the sampler over full-vocabulary logits.
Distribution make_distribution(std::span<const float> logits, const SamplerParams& p);
// Same over a sparse support: logits[i] belongs to ids[i].
Distribution make_distribution(std::span<const int32_t> ids, std::span<const double> logits,
                               const SamplerParams& p);
// Normalizes non-negative weights (listed in id order); throws if they sum to 0.
Distribution from_weights(std::span<const double> dense_weights);

// Inverse-CDF draw with u in [0,1).
int32_t sample(const Distribution& d, double u);
// Greedy -> argmax (no RNG draw); otherwise one uniform draw from `rng`.
int32_t sample(std::span<const float> logits, const SamplerParams& p, Rng& rng);

}  // namespace specsteer::sampling
