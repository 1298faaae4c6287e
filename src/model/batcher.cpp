#include "model/batcher.h"

#include <exception>
#include <vector>

#include "common/error.h"

namespace specsteer {

struct EvalBatcher::Request {
  BatchItem item;
  bool done = false;
  std::exception_ptr error;
};

EvalBatcher::EvalBatcher(std::shared_ptr<const Model> model, int max_rows)
    : model_(std::move(model)), max_rows_(max_rows) {
  if (!model_) throw Error("EvalBatcher needs a model");
  if (max_rows_ < 1) throw Error("EvalBatcher: max_rows must be at least 1");
}

std::span<const float> EvalBatcher::eval(Sequence& seq, std::span<const int32_t> tokens, bool all_logits) {
  if (&seq.model() != model_.get()) throw Error("EvalBatcher: the Sequence belongs to another model");
  seq.check(tokens);
  Request mine;
  mine.item = {&seq, tokens, all_logits};
  std::unique_lock<std::mutex> lock(mu_);
  queue_.push_back(&mine);
  while (!mine.done) {
    if (running_) {
      cv_.wait(lock);
      continue;
    }
    // Lead one pass over what is waiting now (ours may not be first in line).
    running_ = true;
    std::vector<Request*> batch;
    std::vector<BatchItem> items;
    size_t rows = 0;
    for (auto it = queue_.begin(); it != queue_.end();) {
      const size_t n = (*it)->item.tokens.size();
      if (!batch.empty() && rows + n > static_cast<size_t>(max_rows_)) break;
      batch.push_back(*it);
      items.push_back((*it)->item);
      rows += n;
      it = queue_.erase(it);
    }
    lock.unlock();
    std::exception_ptr error;
    try {
      Sequence::eval_batch(items);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    for (Request* r : batch) {
      r->error = error;
      r->done = true;
    }
    ++stats_.passes;
    stats_.requests += batch.size();
    stats_.rows += rows;
    if (observer_) observer_(batch.size(), rows);
    running_ = false;
    cv_.notify_all();
  }
  lock.unlock();
  if (mine.error) std::rethrow_exception(mine.error);
  return seq.logits();
}

BatcherStats EvalBatcher::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace specsteer
