#pragma once
// What a generation runs (method + hyper-parameters) and what it measured.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sampling/sampling.h"

namespace specsteer::steer {

enum class Method : uint8_t {
  Llm = 0,           // Generalist alone on x
  Slm = 1,           // small model on x
  SlmPlus = 2,       // small model on the personalized prompt
  Sd = 3,            // standard speculative decoding (SLM+ drafts, LLM verifies; lossless)
  LightCoSteer = 4,  // every token from h_LLM + beta*(h_SLM+ - h_SLM-), cloud top-k part
  CoSteer = 5,       // per-token FTRL (CoSteer), full-vocabulary vectors on the wire
  SpecSteer = 6,     // Draft-Verify-Recover (paper Algorithm 1)
  LlmPlus = 7,       // Generalist on the personalized prompt (LLM-RAG, paper table 11): the profile leaves the device
};
std::string_view method_name(Method m);
// Accepts "llm", "slm", "slm+", "llm+", "sd", "lightcosteer", "costeer", "specsteer".
Method parse_method(std::string_view name);  // throws Error listing the names
bool uses_cloud(Method m);                    // sd, lightcosteer, costeer, specsteer
// Whether the method runs on a pair whose vocabularies differ (paired through
// bytes, steer/byte_level.h): specsteer and the local methods; sd,
// lightcosteer and costeer exchange ids of one shared vocabulary.
bool runs_across_vocabularies(Method m);
// False when something derived from the private profile leaves the device:
// llm+ (the profile text goes into the Generalist's prompt) and sd (the
// drafter's probabilities, computed on the profile, go up with every draft).
bool keeps_profile_on_device(Method m);
// What leaves the device for a method that does not keep the profile there
// ("" for the private ones), for reports.
std::string_view privacy_note(Method m);

// Which ids the cloud's steering vector (Eq. 8, appendix D) carries.
enum class SteerCandidates : uint8_t {
  // Paper (appendix D): the top-k of h_LLM - beta*h_SLM-.
  Contrast = 0,
  // Contrastive decoding's adaptive plausibility constraint (Li et al. 2023):
  // the ids with p_LLM(y) >= gamma * max p_LLM, at most k of them, ranked and
  // valued by h_LLM - beta*h_SLM-. Same wire format and bytes.
  Plausible = 1,
};
std::string_view candidates_name(SteerCandidates c);       // "contrast" / "plausible"
SteerCandidates parse_candidates(std::string_view name);  // throws Error naming the choices

struct CoSteerParams {  // defaults from the CoSteer authors' code
  int iterations = 20;  // T
  double a = 2.0;
  double b = 1.0;
  double L = 2.0;
  double eta = 10.0;
};

struct Settings {
  Method method = Method::SpecSteer;
  double lambda = 0.5;  // Eq. 7 threshold
  double beta = 1.0;    // Eq. 8 steering strength
  int draft = 4;        // K: drafts per block (with draft_p_min > 0, the most per block)
  // Adaptive draft length (edge side only, not on the wire; llama.cpp's
  // --draft-min / --draft-p-min): after draft_min drafts, a block ends
  // early where SLM+'s most probable next token has probability (softmax at
  // temperature 1 of the row it samples from) below draft_p_min. 0 = every
  // block has `draft` drafts.
  int draft_min = 1;
  double draft_p_min = 0.0;
  // Edge side only: draft block n+1 while the cloud verifies block n, on the
  // assumption that block n is accepted whole (SpecEdge's proactive
  // drafting). A scheduling change only: the tokens are the same either way.
  bool pipeline = true;
  int top_k = 32;       // at most this many entries of h_LLM - beta*h_SLM- sent down on rejection
  // The steering vector's candidate rule and the plausibility threshold gamma
  // (Plausible only). Plausible is the default: on the bundled MiniLaMP pair
  // the paper's rule ranks first the ids SLM- finds implausible (BENCHMARKS.md).
  SteerCandidates steer_candidates = SteerCandidates::Plausible;
  double plausibility = 0.1;
  int max_new = 128;    // -n
  uint64_t seed = 0;
  // temperature 0 = greedy (the paper's setting): drafts and recovery by
  // argmax; acceptance still by the seeded ratio test on temperature-1
  // probabilities. Otherwise drafts/recovery sample with these filters.
  sampling::SamplerParams sampler{};
  // Edge side only (not on the wire): the repeat penalty on the rows the edge
  // samples from (drafts, recovery's h_SLM+ term, slm/slm+/llm and the
  // fallback), over prompt + decided + drafted tokens. The ratio test reads
  // the cloud's unpenalized LLM and SLM-, so Eq. 7 is unchanged; sd's drafts
  // and residual use the same penalized draft distribution, so sd still
  // samples the LLM's own distribution.
  sampling::RepeatPenalty repeat{};
  bool bonus = false;  // when all K are accepted, the cloud also sends the K+1 steering vector
  CoSteerParams costeer{};
};
void validate(const Settings& s);  // throws Error naming the field

// One struct per generation, filled by the edge (or the local loop).
struct Counters {
  uint64_t n_generated = 0;  // tokens emitted (EOG excluded)
  uint64_t n_drafted = 0;
  uint64_t n_accepted = 0;
  uint64_t rejections = 0;
  uint64_t bonus_tokens = 0;
  uint64_t round_trips = 0;  // draft/verify or per-token exchanges (open/close excluded)
  // Pipelined drafting: blocks drafted while the cloud verified the one
  // before and sent as soon as its verdict came (all accepted, and the bonus
  // token, if any, as guessed), and those the verdict made useless.
  uint64_t blocks_sent_early = 0;
  uint64_t blocks_dropped = 0;
  uint64_t bytes_up = 0;     // every encoded byte edge -> cloud, open/close included
  uint64_t bytes_down = 0;
  // Cloud failures survived: sessions reopened with a resume point, and the
  // decided tokens those resume points held (re-prefilled by the cloud).
  uint64_t resumed = 0;
  uint64_t resume_tokens = 0;
  // Prompt positions copied from a prefix cache instead of computed: the
  // edge's (its SLM+ prompt) and the cloud's LLM (of x, SessionAccept).
  uint64_t edge_cached_tokens = 0;
  uint64_t cloud_cached_tokens = 0;
  double t_resume_s = 0;  // time spent reopening sessions (backoff, the cloud's re-prefill)
  double t_prefill_s = 0;  // prompts (edge prefill + session open incl. cloud prefill)
  double t_draft_s = 0;    // edge model evaluation while drafting / stepping
  double t_cloud_s = 0;    // waiting on the cloud (in-process: the cloud's compute)
  double t_recover_s = 0;  // edge recovery / fusion arithmetic
  double t_total_s = 0;    // whole generation, prefill included
  // The decode phase (t_total_s - t_prefill_s) split by where the time went;
  // the terms add up to it. Cloud terms come from the cloud's own clock
  // (CloseAck), so over a network t_transport_s is the wire + server queueing.
  double t_edge_forward_s = 0;  // edge model passes (drafts, decided tokens); slm/slm+: that model's passes
  double t_edge_sample_s = 0;   // edge sampling of drafts, recovery / fusion arithmetic
  double t_cloud_llm_s = 0;     // LLM passes (llm: its decode passes)
  double t_cloud_slm_s = 0;     // SLM- passes
  double t_cloud_steer_s = 0;   // cloud ratio tests, steering vector / top-k, rollbacks
  double t_codec_s = 0;         // edge encoding and decoding of messages
  double t_transport_s = 0;     // exchange time the cloud did not spend computing (network, queueing, cloud codec)
  double t_other_s = 0;         // the rest (bookkeeping, idle)
  // Edge passes and sampling run while the cloud verified (pipelined
  // drafting): hidden inside the exchanges' time, so not among the terms above.
  double t_ahead_s = 0;
  // Forward positions run per model (prompt included), for FLOPs estimates.
  uint64_t positions_llm = 0;
  uint64_t positions_slm_minus = 0;  // cloud copy of the small model (or `slm`)
  uint64_t positions_slm_plus = 0;   // edge small model (or `slm+`)
  // Sum of attended context lengths over those positions, per model (FLOPs).
  uint64_t attention_llm = 0;
  uint64_t attention_slm_minus = 0;
  uint64_t attention_slm_plus = 0;
  double acceptance_rate() const { return n_drafted ? double(n_accepted) / double(n_drafted) : 0.0; }
  // Decode throughput: generated tokens over the time after prefill.
  double gen_tok_per_s() const {
    const double t = t_total_s - t_prefill_s;
    return t > 0 ? double(n_generated) / t : 0.0;
  }
};

}  // namespace specsteer::steer
