#pragma once
// A link to an in-process cloud that loses chosen exchanges and can reopen,
// as the network transport does after an outage (session resumption tests).
#include <set>
#include <vector>

#include "steer/cloud.h"
#include "steer/messages.h"
#include "steer/transport.h"

namespace specsteer::steer::test_support {

// Loses the exchanges whose index (0 = the first SessionOpen) is in `lose`:
// before the cloud sees the request, or after it handled it (the reply lost).
class FlakyTransport final : public Transport {
 public:
  FlakyTransport(CloudService& cloud, std::set<size_t> lose, bool after, bool resumable = true, bool can_reopen = true)
      : inner_(cloud), lose_(std::move(lose)), after_(after), resumable_(resumable), can_reopen_(can_reopen) {}
  std::vector<uint8_t> exchange(std::span<const uint8_t> request) override {
    if (broken_) throw TransportError("link down", resumable_);
    const Message m = decode(request);
    if (const auto* o = std::get_if<SessionOpen>(&m)) resume_points_.push_back(o->resume);
    const bool lose = lose_.count(n_++) > 0;
    if (lose && !after_) return fail();
    auto reply = inner_.exchange(request);
    if (lose) return fail();
    return reply;
  }
  bool reopen() override {
    if (!can_reopen_) return false;
    broken_ = false;
    ++reopened_;
    return true;
  }
  int reopened() const { return reopened_; }
  const std::vector<std::vector<int32_t>>& resume_points() const { return resume_points_; }

 private:
  std::vector<uint8_t> fail() {
    broken_ = true;
    throw TransportError("connection lost", resumable_);
  }
  InProcessTransport inner_;
  std::set<size_t> lose_;
  bool after_, resumable_, can_reopen_;
  bool broken_ = false;
  size_t n_ = 0;
  int reopened_ = 0;
  std::vector<std::vector<int32_t>> resume_points_;
};

}  // namespace specsteer::steer::test_support
