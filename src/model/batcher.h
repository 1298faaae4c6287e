#pragma once
// Coalesces eval calls that several threads make at the same time, each on
// its own Sequence of one Model, into shared forward passes
// (Sequence::eval_batch). There is no waiting window: a call that finds the
// model idle runs at once, and calls that arrive while a pass runs join the
// next one. A caller alone therefore pays nothing, and under load the model's
// weights are read once per pass for all waiting sessions instead of once per
// session. The cloud server puts one in front of each model.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>

#include "model/model.h"

namespace specsteer {

struct BatcherStats {
  uint64_t passes = 0;    // forward passes run
  uint64_t requests = 0;  // eval calls served
  uint64_t rows = 0;      // token positions evaluated
};

class EvalBatcher {
 public:
  // A pass takes waiting requests in arrival order while their rows total at
  // most max_rows (the first one always goes, however long).
  explicit EvalBatcher(std::shared_ptr<const Model> model, int max_rows = 64);
  EvalBatcher(const EvalBatcher&) = delete;
  EvalBatcher& operator=(const EvalBatcher&) = delete;

  // Same contract as seq.eval(tokens, all_logits); blocks until the pass that
  // holds this request is done. Errors in the request itself are thrown here
  // before it is queued, so a bad request never fails other sessions' passes.
  std::span<const float> eval(Sequence& seq, std::span<const int32_t> tokens, bool all_logits = true);
  BatcherStats stats() const;
  // Called after each pass with the number of requests it served and its
  // rows (metrics); set before the first eval. Runs under the batcher's
  // lock: it must be quick and must not call back into the batcher.
  using PassObserver = std::function<void(size_t requests, size_t rows)>;
  void set_pass_observer(PassObserver f) { observer_ = std::move(f); }

 private:
  PassObserver observer_;
  struct Request;
  std::shared_ptr<const Model> model_;
  int max_rows_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Request*> queue_;
  bool running_ = false;
  BatcherStats stats_;
};

}  // namespace specsteer
