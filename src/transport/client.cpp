#include "transport/client.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/error.h"
#include "transport/convert.h"
#include "transport/specsteer.grpc.pb.h"
#include "transport/status.h"

namespace specsteer::transport {

std::string read_text_file(const std::string& path, const char* what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(std::string(what) + ": cannot open '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string read_token_file(const std::string& path) {
  std::string s = read_text_file(path, "--auth-token-file");
  s = s.substr(0, s.find('\n'));
  const auto b = s.find_first_not_of(" \t\r");
  const auto e = s.find_last_not_of(" \t\r");
  if (b == std::string::npos) throw Error("--auth-token-file: '" + path + "' holds no token on its first line");
  return s.substr(b, e - b + 1);
}

struct GrpcTransport::Impl {
  ClientOptions o;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Cloud::Stub> stub;
  std::unique_ptr<grpc::ClientContext> ctx;
  std::unique_ptr<grpc::ClientReaderWriter<v1::EdgeMessage, v1::CloudMessage>> stream;
  steer::WireBytes wire;
  std::string broken;  // set once the link failed: every later call throws it
  steer::DecodeLimits limits;

  [[noreturn]] void fail(const std::string& why) {
    broken = "cloud " + o.target + ": " + why;
    throw steer::TransportError(broken);
  }
  // The stream broke: its final status says why.
  [[noreturn]] void fail_stream(const char* during) {
    grpc::Status st = stream->Finish();
    stream.reset();
    if (st.ok()) fail(std::string("stream ended during ") + during);
    fail(describe(st));
  }
};

GrpcTransport::GrpcTransport(ClientOptions opts) : impl_(std::make_unique<Impl>()) {
  auto& m = *impl_;
  m.o = std::move(opts);
  if (m.o.target.empty()) throw Error("--cloud: empty HOST:PORT");
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (m.o.tls_ca_file.empty()) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = read_text_file(m.o.tls_ca_file, "--tls-ca");
    creds = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);  // costeer replies carry full vocabularies
  // Detect a peer that stopped answering (killed host, cut link) while a
  // request is outstanding; the server permits pings this frequent.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  if (!m.o.tls_server_name.empty()) args.SetSslTargetNameOverride(m.o.tls_server_name);
  m.channel = grpc::CreateCustomChannel(m.o.target, creds, args);
  m.stub = v1::Cloud::NewStub(m.channel);
}

GrpcTransport::~GrpcTransport() {
  auto& m = *impl_;
  if (m.stream) {  // abandoned mid-session: end the call without waiting
    m.ctx->TryCancel();
    m.stream->Finish();
  }
}

std::optional<steer::WireBytes> GrpcTransport::wire_bytes() const { return impl_->wire; }

std::vector<uint8_t> GrpcTransport::exchange(std::span<const uint8_t> request) {
  auto& m = *impl_;
  if (!m.broken.empty()) throw steer::TransportError(m.broken);
  const steer::Message msg = steer::decode(request);
  const v1::EdgeMessage up = to_proto_uplink(msg);
  if (m.o.net_delay_ms > 0)
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(m.o.net_delay_ms));

  if (up.has_open()) {
    if (m.stream) throw Error("transport: SessionOpen on a stream that already has a session");
    const auto deadline =
        std::chrono::system_clock::now() + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                               std::chrono::duration<double>(m.o.connect_timeout_s));
    // Fail fast on a refused connection, wait at most the timeout otherwise.
    for (auto st = m.channel->GetState(true); st != GRPC_CHANNEL_READY; st = m.channel->GetState(true)) {
      if (st == GRPC_CHANNEL_TRANSIENT_FAILURE || st == GRPC_CHANNEL_SHUTDOWN)
        m.fail("UNAVAILABLE: cannot connect");
      if (!m.channel->WaitForStateChange(st, deadline))
        m.fail("UNAVAILABLE: no connection within " + std::to_string(m.o.connect_timeout_s) + " s");
    }
    m.ctx = std::make_unique<grpc::ClientContext>();
    if (!m.o.auth_token.empty()) m.ctx->AddMetadata("authorization", "Bearer " + m.o.auth_token);
    m.stream = m.stub->Generate(m.ctx.get());
  } else if (!m.stream) {
    m.fail(std::string(steer::message_name(msg)) + " without an open session");
  }

  if (!m.stream->Write(up)) m.fail_stream("a write");
  m.wire.up += up.ByteSizeLong() + kGrpcFrameBytes;
  v1::CloudMessage down;
  if (!m.stream->Read(&down)) m.fail_stream("a read");
  m.wire.down += down.ByteSizeLong() + kGrpcFrameBytes;

  steer::Message reply;
  try {
    reply = from_proto(down, m.limits);
  } catch (const Error& e) {
    m.ctx->TryCancel();
    m.stream->Finish();
    m.stream.reset();
    m.fail(std::string("malformed reply: ") + e.what());
  }
  if (const auto* a = std::get_if<steer::SessionAccept>(&reply)) m.limits.n_vocab = a->n_vocab;
  if (std::holds_alternative<steer::CloseAck>(reply)) {
    m.stream->WritesDone();
    grpc::Status st = m.stream->Finish();
    m.stream.reset();
    (void)st;  // the session's work is done; a late error loses nothing
  }
  return steer::encode(reply);
}

}  // namespace specsteer::transport
