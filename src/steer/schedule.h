#pragma once
// What a generation computed, pass by pass: enough to re-run the identical
// schedule of forward passes on other models (`specsteer replay`), since a
// dense model's cost depends on how many rows it evaluates at which
// positions, not on which token ids flow.
#include <cstdint>
#include <string>
#include <vector>

namespace specsteer::steer {

// One forward pass: the cache is cut back to `pos` tokens (KV rollback) if it
// holds more, then `rows` tokens are appended.
struct EvalSpan {
  uint32_t pos = 0;
  uint32_t rows = 0;
  bool operator==(const EvalSpan&) const = default;
};

// One exchange of a cloud method (a draft block and its verdict, or one
// per-token step), or one decode step of a local method.
struct Round {
  uint32_t drafted = 0;   // K drafted this round (0 for per-token steps and local steps)
  uint32_t accepted = 0;  // of those, accepted by the ratio test
  bool recovery = false;  // a token came from steering/residual (rejection, or every lightcosteer/costeer step)
  bool bonus = false;     // all K accepted and a steered bonus token followed
  std::vector<EvalSpan> edge;  // the edge's SLM+ passes, in order (for slm/slm+: that model's)
  // Pipelined drafting: the edge's passes while the cloud verified this
  // round's block (the last draft's row, the bonus guess, the next block's
  // drafts), after `edge`. On two machines they overlap the cloud's passes.
  std::vector<EvalSpan> edge_ahead;
  std::vector<EvalSpan> llm;   // cloud LLM passes (for llm: its decode step)
  std::vector<EvalSpan> slm;   // cloud SLM- passes
  bool operator==(const Round&) const = default;
};

struct Schedule {
  std::string method;
  // Prompt prefill per model (0 when that model does not run): the edge's
  // personalized prompt, x for the LLM and for SLM-.
  uint32_t edge_prompt = 0, llm_prompt = 0, slm_prompt = 0;
  std::vector<Round> rounds;
  // Edge passes after a cloud failure (SLM+ finishing alone).
  std::vector<EvalSpan> fallback;
  uint64_t tokens = 0;  // tokens generated (EOG excluded)
  // A Generalist of another vocabulary (cross-tokenizer): its passes follow
  // its own tokenization of the text, which the edge does not see, so the
  // rounds hold no LLM passes and replay refuses the schedule.
  bool byte_level = false;

  // Forward positions per model, prompts included: what the generation's
  // own counters (positions_llm / _slm_minus / _slm_plus) report.
  uint64_t positions_edge() const;
  uint64_t positions_llm() const;
  uint64_t positions_slm() const;
  // Exchanges with the cloud after the session opens (rounds of a cloud method).
  uint64_t exchanges() const;
  bool operator==(const Schedule&) const = default;
};

}  // namespace specsteer::steer
