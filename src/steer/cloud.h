#pragma once
// The cloud role: the Generalist LLM and SLM- (the edge's small model without
// private context). By construction it can only learn what the messages carry:
// it is built from models (or logit-source factories) and its only input is
// encoded messages, whose uplink types hold the non-private prompt x and
// token ids (messages.h).
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "sampling/sampling.h"
#include "steer/logit_source.h"
#include "steer/messages.h"

namespace specsteer::steer {

// One session: both caches hold x + the agreed generated prefix, plus the
// next-token logits for that prefix. Not thread-safe (the service locks).
class Cloud {
 public:
  Cloud(std::unique_ptr<LogitSource> llm, std::unique_ptr<LogitSource> slm_minus, const SessionOpen& open);
  int n_vocab() const { return n_vocab_; }
  Verdict verify(const DraftBlock& block);
  StepReply step(const StepRequest& req);
  CloseAck stats() const;

  // Inspection for tests (rollback checks): caches and next-token rows.
  const LogitSource& llm() const { return *llm_; }
  const LogitSource& slm_minus() const { return *slm_; }
  std::span<const float> llm_next() const { return llm_next_; }
  std::span<const float> slm_next() const { return slm_next_; }
  bool uses_slm() const { return use_slm_; }

 private:
  void check_budget(size_t more) const;
  void append(std::span<const int32_t> tokens, std::vector<float>* llm_rows, std::vector<float>* slm_rows);
  std::unique_ptr<LogitSource> llm_, slm_;
  Settings s_;
  int n_vocab_;
  bool use_slm_;  // sd never needs SLM-
  sampling::Rng rng_;
  std::vector<float> llm_next_, slm_next_;
  size_t generated_ = 0;  // agreed generated tokens
  // Compute time after the open (CloseAck's breakdown): passes per model,
  // and the whole of verify/step (the rest is steering arithmetic).
  double t_llm_ = 0, t_slm_ = 0, t_handling_ = 0;
};

class CloudService {
 public:
  using SourceFactory = std::function<std::unique_ptr<LogitSource>()>;
  CloudService(SourceFactory llm, SourceFactory slm, ModelIdentity llm_id, ModelIdentity slm_id);
  // Builds sources over the models' Sequences; identities from their files.
  static std::unique_ptr<CloudService> from_models(std::shared_ptr<const Model> llm, std::shared_ptr<const Model> slm,
                                                   SequenceOptions opts = {});

  // Decodes a request, runs it, encodes the reply. Never throws: bad input
  // and failures come back as ErrorReply.
  std::vector<uint8_t> handle(std::span<const uint8_t> request);

  const Cloud* session(uint64_t id) const;  // nullptr when unknown/closed
  const ModelIdentity& llm_identity() const { return llm_id_; }
  const ModelIdentity& slm_identity() const { return slm_id_; }
  size_t n_sessions() const;

 private:
  Message dispatch(Message m);
  SourceFactory make_llm_, make_slm_;
  ModelIdentity llm_id_, slm_id_;
  struct Entry;  // a session and its own lock, so sessions run concurrently
  mutable std::mutex mu_;
  std::map<uint64_t, std::shared_ptr<Entry>> sessions_;
  uint64_t next_id_ = 1;
};

// Identity used to check that edge and cloud run the same models.
ModelIdentity identity_of(const Model& m);

}  // namespace specsteer::steer
