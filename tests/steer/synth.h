#pragma once
// Exact synthetic next-token distributions for protocol tests: logits are a
// pure function of (seed, whole prefix), so every number is reproducible and
// a fresh evaluation of a prefix is just another call.
#include <cmath>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "steer/cloud.h"
#include "steer/logit_source.h"

namespace synth {

inline uint64_t mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Logits in [-scale, scale]; `shared` mixes in a second function so two
// models can be made similar (shared = 1: identical, 0: unrelated).
struct Spec {
  uint64_t seed = 1;
  double scale = 3.0;
  uint64_t other_seed = 2;
  double shared = 0.0;
  // Ignore prompt tokens before this id-shift (lets SLM+ and SLM- see
  // different prompts but similar continuations): only the last `window`
  // tokens matter when window > 0.
  size_t window = 0;
};

inline void fill(uint64_t seed, double scale, std::span<const int32_t> prefix, size_t window, std::span<float> out) {
  uint64_t h = mix(seed);
  const size_t from = window && prefix.size() > window ? prefix.size() - window : 0;
  for (size_t i = from; i < prefix.size(); ++i) h = mix(h ^ static_cast<uint64_t>(prefix[i]));
  for (size_t i = 0; i < out.size(); ++i) {
    const double u = static_cast<double>(mix(h + i) >> 11) * 0x1.0p-53;
    out[i] = static_cast<float>(scale * (2 * u - 1));
  }
}

inline specsteer::steer::FunctionSource::Fn fn(Spec s) {
  return [s](std::span<const int32_t> prefix, std::span<float> out) {
    fill(s.seed, s.scale, prefix, s.window, out);
    if (s.shared < 1.0) {
      std::vector<float> o(out.size());
      fill(s.other_seed, s.scale, prefix, s.window, o);
      for (size_t i = 0; i < out.size(); ++i)
        out[i] = static_cast<float>(s.shared * out[i] + (1 - s.shared) * o[i]);
    }
  };
}

inline std::unique_ptr<specsteer::steer::LogitSource> source(int V, Spec s) {
  return std::make_unique<specsteer::steer::FunctionSource>(V, fn(s));
}

inline std::vector<float> logits(int V, Spec s, std::span<const int32_t> prefix) {
  std::vector<float> out(static_cast<size_t>(V));
  fn(s)(prefix, out);
  return out;
}

// A small edge/cloud pair on synthetic models, shared by the cloud failure
// and resumption tests: the cloud's LLM is unlike SLM-, SLM+ sees a private
// prefix before x.
struct Pair {
  static constexpr int V = 64;
  Spec llm{1, 3.0, 11, 1.0};
  Spec slm{1, 3.0, 2, 0.6};
  std::vector<int32_t> x = {3, 4, 5};
  std::vector<int32_t> personalized = {60, 61, 62, 63, 3, 4, 5};

  std::unique_ptr<specsteer::steer::CloudService> cloud() const {
    using specsteer::steer::ModelIdentity;
    return std::make_unique<specsteer::steer::CloudService>(
        [l = llm] { return source(V, l); }, [s = slm] { return source(V, s); }, ModelIdentity{"llm", "synth", V, 1},
        ModelIdentity{"slm", "synth", V, 2});
  }
  specsteer::steer::SessionOpen open(const specsteer::steer::Settings& s) const {
    specsteer::steer::SessionOpen o;
    o.llm = {"llm", "synth", V, 1};
    o.slm = {"slm", "synth", V, 2};
    o.x_llm = x;
    o.x_slm = x;
    o.settings = s;
    return o;
  }
};

}  // namespace synth
