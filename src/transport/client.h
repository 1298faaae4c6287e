#pragma once
// The edge's side of the network link: a steer::Transport over one gRPC
// bidirectional stream per generation (specsteer.proto). Create one per
// generation; SessionOpen opens the stream, CloseAck ends it.
#include <memory>
#include <string>

#include "steer/transport.h"

namespace specsteer::transport {

struct ClientOptions {
  std::string target;          // HOST:PORT of `specsteer cloud serve`
  std::string tls_ca_file;     // PEM roots to verify the server; empty = plaintext
  std::string tls_server_name; // expected name in the server certificate; empty = host of target
  std::string auth_token;      // sent as "authorization: Bearer <token>"; empty = none
  // Added once per request/reply exchange (open and close included) before
  // the request is sent: it models the link's round-trip time.
  double net_delay_ms = 0;
  double connect_timeout_s = 10;  // SessionOpen fails with TransportError after this
};

// Reads a token file: the first line, surrounding whitespace removed; Error
// when missing or empty.
std::string read_token_file(const std::string& path);
std::string read_text_file(const std::string& path, const char* what);

class GrpcTransport final : public steer::Transport {
 public:
  explicit GrpcTransport(ClientOptions opts);
  ~GrpcTransport() override;
  // Throws steer::TransportError when the cloud cannot be reached, refuses
  // (any non-OK gRPC status, named in the message) or the stream breaks; after
  // that every call throws the same error.
  std::vector<uint8_t> exchange(std::span<const uint8_t> request) override;
  // Serialized protobuf + 5 bytes of gRPC framing per message.
  std::optional<steer::WireBytes> wire_bytes() const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace specsteer::transport
