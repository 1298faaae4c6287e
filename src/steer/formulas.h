#pragma once
// The method's arithmetic, free of models and messages so tests can check it
// against hand-computed values. Logit rows here are already restricted to the
// id range both models share.
#include <cstdint>
#include <span>
#include <vector>

#include "sampling/sampling.h"
#include "steer/messages.h"
#include "steer/settings.h"

namespace specsteer::steer {

// Eq. 7: alpha = min(1, P_LLM(y) / (lambda * P_SLM-(y))) with temperature-1
// softmax probabilities (computed in log space). lambda == 0 gives 1.
double ratio_accept_prob(std::span<const float> h_llm, std::span<const float> h_slm_minus, int32_t y,
                         double lambda);
// Eq. 7 on a cross-tokenizer unit (byte_level.h): the same ratio from the
// two models' log-probabilities of the unit's bytes.
double unit_accept_prob(double logp_llm, double logp_slm_minus, double lambda);
// The acceptance rule with a uniform u in [0,1): accept iff u < alpha, which
// accepts with probability exactly alpha and never when alpha == 0.
inline bool accept(double u, double alpha) { return u < alpha; }

// Appendix D: the cloud's part of Eq. 8, h_LLM - beta*h_SLM-, truncated to
// its k largest entries (value descending, ties by lower id).
std::vector<IdValue> cloud_steer_topk(std::span<const float> h_llm, std::span<const float> h_slm_minus,
                                      double beta, int k);
// The plausibility-constrained rule (contrastive decoding, Li et al. 2023):
// candidates are the ids with p_LLM(y) >= gamma * max p_LLM (temperature-1
// softmax, tested in log space as h_LLM(y) - max h_LLM >= log gamma; every id
// tied at the maximum qualifies), at most k of them, ranked and valued by
// h_LLM - beta*h_SLM- (ties by lower id). gamma = 0 admits every id, which is
// cloud_steer_topk.
std::vector<IdValue> cloud_steer_plausible(std::span<const float> h_llm, std::span<const float> h_slm_minus,
                                           double beta, int k, double gamma);
// The steering vector the session's settings ask for (steer_candidates,
// beta, top_k, plausibility).
std::vector<IdValue> cloud_steer(std::span<const float> h_llm, std::span<const float> h_slm_minus,
                                 const Settings& s);

// Eq. 8 on the cloud's support: h_rec(id) = cloud(id) + beta*h_SLM+(id), then
// the sampler (greedy = argmax).
sampling::Distribution recovery_distribution(std::span<const IdValue> cloud, std::span<const float> h_slm_plus,
                                             double beta, const sampling::SamplerParams& sampler);

// Standard speculative decoding: accept with min(1, p/q); on rejection draw
// from norm(max(0, P - Q)).
double sd_accept_prob(double p, double q);
sampling::Distribution sd_residual(std::span<const double> p_dense, std::span<const double> q_dense);

// CoSteer's per-token FTRL loop (authors' public code): returns the final
// player log-probabilities over the vocabulary.
std::vector<double> costeer_player(std::span<const float> llm_logprobs, std::span<const float> slm_minus_logprobs,
                                   std::span<const float> h_slm_plus, const CoSteerParams& p);

}  // namespace specsteer::steer
