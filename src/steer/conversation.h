#pragma once
// What a device remembers of its conversations to decide which earlier turns
// may go to the cloud: the replies whose every token already crossed to the
// cloud (a cloud method that did not fall back). Any other assistant turn —
// written by slm+/slm/llm on the device, a fallback's tail, a reply the
// client edited, one from before a restart — may carry profile words, so by
// default the cloud gets it empty while SLM+ still reads it (PRIVACY.md).
// The texts stay in this process's memory, on the device.
#include <cstddef>
#include <deque>
#include <mutex>
#include <set>
#include <string>

#include "steer/generate.h"

namespace specsteer::steer {

class SentReplies {
 public:
  explicit SentReplies(size_t capacity = 4096) : capacity_(capacity) {}
  bool contains(const std::string& reply) const {
    std::lock_guard<std::mutex> lock(mu_);
    return texts_.count(reply) > 0;
  }
  // Records a finished generation's reply when all of it went to the cloud.
  void record(const GenerateRequest& req, const GenerationResult& r) {
    if (!uses_cloud(req.settings.method) || r.cloud_failed_at) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (!texts_.insert(r.text).second) return;
    order_.push_back(r.text);
    if (order_.size() > capacity_) {
      texts_.erase(order_.front());
      order_.pop_front();
    }
  }
  // Marks req.history's assistant turns the cloud has not seen as withheld.
  void withhold_unsent(GenerateRequest& req) const {
    req.withhold.clear();
    for (size_t i = 1; i < req.history.size(); i += 2)
      if (!contains(req.history[i].text)) req.withhold.push_back(i);
  }

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::set<std::string> texts_;
  std::deque<std::string> order_;
};

}  // namespace specsteer::steer
