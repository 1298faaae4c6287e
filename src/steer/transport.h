#pragma once
// How the edge reaches the cloud: one request buffer in, one reply buffer out
// (encoded messages, see messages.h). The network transport implements the
// same interface; the in-process one calls a CloudService directly and can
// record every byte that crosses (privacy test, counters).
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "common/error.h"

namespace specsteer::steer {

class CloudService;

// The link to the cloud failed (unreachable, connection lost, refused by the
// server, shut down). Unlike a protocol error this is the cloud's fault, so
// the edge may finish the generation alone (CloudFailure::Fallback).
class TransportError : public Error {
 public:
  // `resumable`: an outage (connection lost, UNAVAILABLE, deadline, the
  // replica drained or busy) after which a new session, perhaps on another
  // replica, may continue the generation; false when the cloud refused on
  // purpose (bad request, authentication, another model), which a new
  // session would only repeat.
  explicit TransportError(const std::string& why, bool resumable = true) : Error(why), resumable_(resumable) {}
  bool resumable() const { return resumable_; }

 private:
  bool resumable_;
};

// The cloud answered, but not as the protocol allows (a reply of the wrong
// kind, counts that contradict the request, more steering entries than asked,
// duplicate or out-of-vocabulary ids, an ErrorReply mid-session). Treated
// like any other cloud failure: the edge keeps what it decided and applies
// its CloudFailure policy.
// Not resumable: a replica that breaks the protocol is a bug or an attack,
// not an outage, and the edge finishes without it.
class CloudProtocolError : public TransportError {
 public:
  explicit CloudProtocolError(const std::string& why) : TransportError(why, false) {}
};

enum class CloudFailure : uint8_t {
  // Asked for explicitly: device-only generation whenever the cloud fails,
  // also when it cannot be reached or refuses the session at the start.
  Fallback,
  Fail,  // stop and return the tokens so far with the error
  // The default: a cloud that does not open the session (unreachable,
  // models or protocol version differ) fails the generation like Fail; a
  // cloud lost after it opened the session is replaced by the local SLM+.
  FallbackAfterOpen,
};

// What the edge does when the cloud fails: first up to `retries` new
// sessions (resumption: x + the decided tokens as a resume point, on a
// transport that can reopen), then the CloudFailure policy.
struct CloudFailurePolicy {
  CloudFailure then = CloudFailure::FallbackAfterOpen;
  int retries = 2;  // --cloud-retries: sessions reopened per generation
  CloudFailurePolicy(CloudFailure f = CloudFailure::FallbackAfterOpen, int r = 2) : then(f), retries(r) {}
};

struct WireBytes {
  uint64_t up = 0, down = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // One round trip. Throws specsteer::Error when the cloud cannot be reached.
  virtual std::vector<uint8_t> exchange(std::span<const uint8_t> request) = 0;
  // Bytes that crossed the network so far when they differ from the encoded
  // frames (gRPC: protobuf + framing); the edge then reports these instead.
  virtual std::optional<WireBytes> wire_bytes() const { return std::nullopt; }
  // After a resumable TransportError: makes the transport ready for a new
  // SessionOpen (a new stream; the balancer or the channel picks a live
  // replica). False when it cannot, e.g. an in-process cloud, so the edge
  // applies its CloudFailure policy at once.
  virtual bool reopen() { return false; }
};

class InProcessTransport final : public Transport {
 public:
  explicit InProcessTransport(CloudService& cloud, bool record = false) : cloud_(cloud), record_(record) {}
  std::vector<uint8_t> exchange(std::span<const uint8_t> request) override;

  struct Record {
    bool uplink;  // edge -> cloud
    std::vector<uint8_t> bytes;
  };
  const std::vector<Record>& records() const { return records_; }
  uint64_t bytes_up() const { return bytes_up_; }
  uint64_t bytes_down() const { return bytes_down_; }

 private:
  CloudService& cloud_;
  bool record_;
  std::vector<Record> records_;
  uint64_t bytes_up_ = 0, bytes_down_ = 0;
};

}  // namespace specsteer::steer
