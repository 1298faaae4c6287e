#pragma once
// The edge's side of the network link: a steer::Transport over one gRPC
// bidirectional stream per generation (specsteer.proto). Create one per
// generation; SessionOpen opens the stream, CloseAck ends it.
#include <memory>
#include <string>

#include "steer/messages.h"
#include "steer/transport.h"

namespace specsteer::transport {

struct ClientOptions {
  // HOST:PORT of `specsteer cloud serve` or of a balancer in front of
  // replicas (nginx); A,B,C: several replicas, one gRPC channel balancing
  // sessions over them (round_robin: a dead one is skipped); a gRPC target
  // URI (dns:///NAME:PORT, ipv4:..., unix:...) as gRPC reads it, a name that
  // resolves to several addresses balanced the same way.
  std::string target;
  std::string tls_ca_file;     // PEM roots to verify the server; empty = plaintext
  std::string tls_server_name; // expected name in the server certificate; empty = host of target
  std::string auth_token;      // sent as "authorization: Bearer <token>"; empty = none
  // Added once per request/reply exchange (open and close included) before
  // the request is sent: it models the link's round-trip time.
  double net_delay_ms = 0;
  double connect_timeout_s = 10;  // SessionOpen fails with TransportError after this
  // Deadline of each request/reply exchange once connected (--cloud-timeout),
  // SessionOpen included (the cloud prefills x before it accepts). Expiry
  // cancels the stream and throws TransportError, so the edge falls back.
  double exchange_timeout_s = 30;
};

// Largest reply the edge accepts on the session `open` asks for (the
// channel's receive limit): small messages plus the steering top-k, plus
// full-vocabulary vectors where the method sends them (sd's target
// distribution, costeer's two log-probability vectors).
int max_reply_bytes(const steer::SessionOpen& open);

// True when HOST:PORT names this machine's loopback interface (127.0.0.0/8,
// ::1, localhost), where traffic never reaches a network.
// A,B,C: every address is loopback.
bool is_loopback_target(const std::string& target);

// The gRPC channel target for --cloud: a single HOST:PORT or URI unchanged; a
// list A,B,C resolved (getaddrinfo) into one ipv4:/ipv6: address list, so
// gRPC's round_robin balances over it. Throws Error naming an entry that is
// malformed or does not resolve.
std::string channel_target(const std::string& cloud);

// The trailing metadata key a draining cloud sets when it refuses a new
// session (UNAVAILABLE): the edge opens again, on another replica, at once,
// without counting a failure.
inline constexpr const char* kDrainingKey = "specsteer-draining";

// Reads a token file: the first line, surrounding whitespace removed; Error
// when missing or empty.
std::string read_token_file(const std::string& path);
std::string read_text_file(const std::string& path, const char* what);

class GrpcTransport final : public steer::Transport {
 public:
  explicit GrpcTransport(ClientOptions opts);
  ~GrpcTransport() override;
  // Throws steer::TransportError when the cloud cannot be reached, refuses
  // (any non-OK gRPC status, named in the message), the stream breaks, a reply
  // exceeds max_reply_bytes or does not come within exchange_timeout_s; after
  // that every call throws the same error.
  std::vector<uint8_t> exchange(std::span<const uint8_t> request) override;
  // Serialized protobuf + 5 bytes of gRPC framing per message.
  std::optional<steer::WireBytes> wire_bytes() const override;
  // After a failure: drops the broken stream so that the next exchange, a
  // SessionOpen, starts a new one on the same channel (which reconnects or
  // picks another replica). Always true.
  bool reopen() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace specsteer::transport
