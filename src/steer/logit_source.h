#pragma once
// Anything that turns a growing token prefix into next-token logits: a model
// Sequence (one KV cache), or an exact synthetic distribution in tests. The
// protocol (Eq. 7/8 and the baselines) is written against this interface.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "model/batcher.h"
#include "model/model.h"
#include "model/prefix_cache.h"

namespace specsteer::steer {

class LogitSource {
 public:
  virtual ~LogitSource() = default;
  virtual int n_vocab() const = 0;
  // Appends `tokens`; returns one logits row per token, row-major
  // [tokens.size()][n_vocab()], row i predicting the token after tokens[i].
  // Valid until the next eval/truncate.
  virtual std::span<const float> eval(std::span<const int32_t> tokens) = 0;
  // The same, but only the last row is needed: a model skips the output head
  // for the other rows (a long prompt's logits would be rows x vocabulary).
  virtual std::span<const float> eval_last(std::span<const int32_t> tokens) {
    return eval(tokens).last(static_cast<size_t>(n_vocab()));
  }
  virtual void truncate(size_t n) = 0;  // keep the first n tokens (rollback)
  virtual const std::vector<int32_t>& tokens() const = 0;
  virtual uint64_t positions_evaluated() const = 0;
  // Sum over evaluated positions of the context length each attended (the
  // attention term of the FLOPs count).
  virtual uint64_t attention_work() const = 0;
  // Prompt positions copied from a prefix cache instead of evaluated.
  virtual size_t reused_tokens() const { return 0; }
  size_t size() const { return tokens().size(); }
};

// Synthetic source: logits are a pure function of the whole prefix.
class FunctionSource final : public LogitSource {
 public:
  using Fn = std::function<void(std::span<const int32_t> prefix, std::span<float> logits)>;
  FunctionSource(int n_vocab, Fn fn) : n_vocab_(n_vocab), fn_(std::move(fn)) {}
  int n_vocab() const override { return n_vocab_; }
  std::span<const float> eval(std::span<const int32_t> tokens) override;
  void truncate(size_t n) override;
  const std::vector<int32_t>& tokens() const override { return tokens_; }
  uint64_t positions_evaluated() const override { return positions_; }
  uint64_t attention_work() const override { return attention_; }

 private:
  int n_vocab_;
  Fn fn_;
  std::vector<int32_t> tokens_;
  std::vector<float> rows_;
  uint64_t positions_ = 0;
  uint64_t attention_ = 0;
};

// A prefix cache and the scope a source reads and fills (no cache: none).
struct PrefixUse {
  std::shared_ptr<PrefixCache> cache;
  std::string scope;
};

// A model Sequence behind the interface (defined in sequence_source.cpp).
// With a batcher, evals share forward passes with other sessions' sources
// on the same batcher (model/batcher.h). With a prefix cache, the first
// eval_last (the prompt) starts from the longest kept prefix in the scope,
// and the source's positions are kept there when it is destroyed.
std::unique_ptr<LogitSource> make_sequence_source(std::shared_ptr<const Model> model, SequenceOptions opts = {},
                                                  std::shared_ptr<EvalBatcher> batcher = nullptr,
                                                  PrefixUse prefix = {});

}  // namespace specsteer::steer
