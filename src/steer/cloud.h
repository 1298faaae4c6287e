#pragma once
// The cloud role: the Generalist LLM and SLM- (the edge's small model without
// private context). By construction it can only learn what the messages carry:
// it is built from models (or logit-source factories) and its only input is
// encoded messages, whose uplink types hold the non-private prompt x and
// token ids (messages.h).
#include <cstdint>
#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "common/error.h"
#include "sampling/sampling.h"
#include "steer/byte_level.h"
#include "steer/logit_source.h"
#include "steer/messages.h"
#include "tokenizer/tokenizer.h"


namespace specsteer::steer {

// x as a model's prompt: wrapped in the model's chat format (with the system
// text, when given) when `chat` and the model has one (its control tokens
// parsed), then tokenized with BOS as the model's metadata says. Without a
// chat format a system text precedes x, separated by a blank line. Edge and cloud both use it, so x tokenized by
// the cloud equals x tokenized by an edge holding both models.
// `history`: the conversation's earlier turns (user and assistant, oldest
// first) before x, the last user turn.
std::vector<int32_t> prompt_ids(const Tokenizer& tok, const std::string& text, bool chat,
                                const std::string& system = {}, std::span<const ChatTurn> history = {});

// The cloud's own models as it answers a SessionOpen: identities, the
// tokenizers that read x sent as text (null: only ids accepted, e.g. tests'
// synthetic models), the context of its sessions (0: unchecked).
struct CloudModels {
  ModelIdentity llm, slm;
  std::shared_ptr<const Tokenizer> llm_tok, slm_tok;
  uint32_t n_ctx = 0;
  // Token path: EOG ids of either model below the shared vocabulary; byte
  // level: the small model's (from the tokenizers).
  std::vector<int32_t> eog;
  // Set when the vocabularies differ (vocab_compatible): the models pair
  // through bytes (byte_level.h) and the ids on the wire are the small model's.
  std::shared_ptr<const BytePair> bytes;
  uint32_t shared_vocab() const { return bytes ? slm.n_vocab : std::min(llm.n_vocab, slm.n_vocab); }
};
std::vector<int32_t> shared_eog_ids(const Tokenizer& llm, const Tokenizer& slm);

// Why a cloud refuses a SessionOpen before running anything: Mismatch (the
// protocol version or the models differ: FAILED_PRECONDITION on the network)
// or Invalid (x or the settings are unusable: INVALID_ARGUMENT).
class OpenRefused : public Error {
 public:
  enum class Kind { Mismatch, Invalid };
  OpenRefused(Kind k, const std::string& why) : Error(why), kind(k) {}
  Kind kind;
};

// Checks a SessionOpen against the cloud's models (version; SLM- is the
// edge's model; an LLM the edge named is this one) and turns x sent as text
// into each model's ids (fills open.x_llm / open.x_slm). Throws OpenRefused.
void admit_open(SessionOpen& open, const CloudModels& models);
class Cloud;
// The SessionAccept for an admitted open (x as ids by now); with the session
// built, it reports the positions of x its models reused from a prefix cache.
SessionAccept accept_for(const SessionOpen& open, const CloudModels& models, uint64_t session,
                         const Cloud* cloud = nullptr);

// One session: both caches hold x + the agreed generated prefix, plus the
// next-token logits for that prefix. Not thread-safe (the service locks).
class Cloud {
 public:
  // `bytes`: the models' vocabularies differ and they pair through bytes
  // (specsteer only); null: the token path.
  Cloud(std::unique_ptr<LogitSource> llm, std::unique_ptr<LogitSource> slm_minus, const SessionOpen& open,
        std::shared_ptr<const BytePair> bytes = nullptr);
  int n_vocab() const { return n_vocab_; }
  // Prompt positions (x + resume) each model copied from a prefix cache.
  size_t llm_reused() const { return llm_->reused_tokens(); }
  size_t slm_reused() const { return use_slm_ ? slm_->reused_tokens() : 0; }
  Verdict verify(const DraftBlock& block);
  StepReply step(const StepRequest& req);
  CloseAck stats() const;

  // Inspection for tests (rollback checks): caches and next-token rows.
  const LogitSource& llm() const { return *llm_; }
  const LogitSource& slm_minus() const { return *slm_; }
  std::span<const float> llm_next() const { return llm_next_; }
  std::span<const float> slm_next() const { return slm_next_; }
  bool uses_slm() const { return use_slm_; }
  // Byte level: the decided bytes after the Generalist's cache, and the
  // units of the last block as tested (Eq. 7's two log-probabilities).
  const std::string& pending_bytes() const { return pending_; }
  struct TestedUnit {
    size_t drafts_end = 0;  // drafts [previous unit's, drafts_end) of the block
    double logp_llm = 0, logp_slm = 0;
  };
  const std::vector<TestedUnit>& tested_units() const { return tested_; }

 private:
  void check_budget(size_t more) const;
  void append(std::span<const int32_t> tokens, std::vector<float>* llm_rows, std::vector<float>* slm_rows);
  std::unique_ptr<LogitSource> llm_, slm_;
  Settings s_;
  int n_vocab_;
  bool use_slm_;  // sd never needs SLM-
  sampling::Rng rng_;  // accept draws, keyed by position (uniform_at)
  std::vector<float> llm_next_, slm_next_;
  size_t generated_ = 0;  // agreed generated tokens
  // Compute time after the open (CloseAck's breakdown): passes per model,
  // and the whole of verify/step (the rest is steering arithmetic).
  double t_llm_ = 0, t_slm_ = 0, t_handling_ = 0;

  // Byte level (cloud_bytes.cpp). The LLM's cache holds x and its tokens of
  // the decided text up to anchor_; the decided bytes after it (its last
  // token, held back, and what came since) are pending_; llm_next_ is the
  // full-vocabulary row at the anchor.
  Verdict verify_bytes(const DraftBlock& b);
  // A resumed session: the decided tokens' bytes after x, with the
  // Generalist's tokens of them up to a word boundary in its cache.
  void resume_bytes(std::span<const int32_t> decided);
  ByteCovering& cover();  // at anchor_ (made on first use)
  void move_anchor(size_t anchor, std::vector<float> row);
  std::vector<IdValue> byte_steer(std::span<const float> slm_row);
  std::shared_ptr<const BytePair> bytes_;
  size_t anchor_ = 0;
  std::string pending_;
  double pending_logp_ = 0;  // log P_LLM(the text after the anchor starts with pending_)
  std::unique_ptr<ByteCovering> cover_;
  std::vector<TestedUnit> tested_;
};

class CloudService {
 public:
  using SourceFactory = std::function<std::unique_ptr<LogitSource>()>;
  CloudService(SourceFactory llm, SourceFactory slm, ModelIdentity llm_id, ModelIdentity slm_id);
  CloudService(SourceFactory llm, SourceFactory slm, CloudModels models);
  // Builds sources over the models' Sequences; identities and tokenizers
  // from their files (so x may come as text).
  static std::unique_ptr<CloudService> from_models(std::shared_ptr<const Model> llm, std::shared_ptr<const Model> slm,
                                                   SequenceOptions opts = {},
                                                   std::shared_ptr<const Tokenizer> llm_tok = nullptr,
                                                   std::shared_ptr<const Tokenizer> slm_tok = nullptr,
                                                   std::shared_ptr<const BytePair> bytes = nullptr);

  // Decodes a request, runs it, encodes the reply. Never throws: bad input
  // and failures come back as ErrorReply.
  std::vector<uint8_t> handle(std::span<const uint8_t> request);

  const Cloud* session(uint64_t id) const;  // nullptr when unknown/closed
  const ModelIdentity& llm_identity() const { return models_.llm; }
  const ModelIdentity& slm_identity() const { return models_.slm; }
  size_t n_sessions() const;

 private:
  Message dispatch(Message m);
  SourceFactory make_llm_, make_slm_;
  CloudModels models_;
  struct Entry;  // a session and its own lock, so sessions run concurrently
  mutable std::mutex mu_;
  std::map<uint64_t, std::shared_ptr<Entry>> sessions_;
  uint64_t next_id_ = 1;
};

// Identity used to check that edge and cloud run the same models.
ModelIdentity identity_of(const Model& m);
// CloudModels of a model pair; tokenizers loaded from the files unless given;
// n_ctx 0: the smaller training context. The pair goes through bytes when
// `bytes` is given (made once for the pair; also on a same-vocabulary pair,
// for comparison) or, built here, when the vocabularies differ.
CloudModels cloud_models(const Model& llm, const Model& slm, int n_ctx = 0,
                         std::shared_ptr<const Tokenizer> llm_tok = nullptr,
                         std::shared_ptr<const Tokenizer> slm_tok = nullptr,
                         std::shared_ptr<const BytePair> bytes = nullptr);

}  // namespace specsteer::steer
