#include "transport/client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <limits>
#include <mutex>
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

int max_reply_bytes(const steer::SessionOpen& open) {
  const steer::Settings& s = open.settings;
  const uint64_t vocab = std::max(open.llm.n_vocab, open.slm.n_vocab);
  // One (id, value) pair is at most 13 bytes of protobuf (tag, length, varint
  // id, fixed32 value); 16 leaves room. Fixed overhead covers SessionAccept
  // (the LLM's identity with names up to 4 KiB, a few hundred EOG ids),
  // CloseAck and the Verdict/StepReply headers.
  uint64_t bytes = 16384 + 16ull * (static_cast<uint64_t>(s.top_k) + static_cast<uint64_t>(s.draft));
  if (s.method == steer::Method::Sd) bytes += 16ull * vocab;              // LLM target distribution
  if (s.method == steer::Method::CoSteer) bytes += 2 * (4ull * vocab + 16);  // two packed float vectors
  return static_cast<int>(std::min<uint64_t>(bytes, std::numeric_limits<int>::max()));
}

bool is_loopback_target(const std::string& target) {
  std::string host = target;
  if (host.rfind("ipv4:", 0) == 0 || host.rfind("ipv6:", 0) == 0) host = host.substr(5);
  if (!host.empty() && host.front() == '[') {
    host = host.substr(1, host.find(']') == std::string::npos ? std::string::npos : host.find(']') - 1);
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    host = host.substr(0, host.find(':'));
  }
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

namespace {

using Clock = std::chrono::steady_clock;

// Cancels the call when one exchange outlives its deadline. The synchronous
// stream has no per-message deadline (a ClientContext deadline spans the
// whole generation), so one thread per transport watches the current one.
class Watchdog {
 public:
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }
  void arm(grpc::ClientContext* ctx, Clock::time_point deadline) {
    std::lock_guard<std::mutex> lock(mu_);
    ctx_ = ctx;
    deadline_ = deadline;
    expired_ = false;
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    cv_.notify_one();
  }
  // Stops watching; true when the deadline passed (the call was cancelled).
  bool disarm() {
    std::lock_guard<std::mutex> lock(mu_);
    ctx_ = nullptr;
    return expired_;
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!quit_) {
      if (!ctx_) {
        cv_.wait(lock);
      } else if (Clock::now() >= deadline_) {
        expired_ = true;
        ctx_->TryCancel();
        ctx_ = nullptr;
      } else {
        cv_.wait_until(lock, deadline_);
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  grpc::ClientContext* ctx_ = nullptr;  // watched while non-null
  Clock::time_point deadline_;
  bool expired_ = false, quit_ = false;
  std::thread thread_;
};

}  // namespace

struct GrpcTransport::Impl {
  ClientOptions o;
  std::shared_ptr<grpc::ChannelCredentials> creds;
  std::shared_ptr<grpc::Channel> channel;
  int channel_reply_limit = 0;  // the receive limit `channel` was made with
  std::unique_ptr<v1::Cloud::Stub> stub;
  std::unique_ptr<grpc::ClientContext> ctx;
  std::unique_ptr<grpc::ClientReaderWriter<v1::EdgeMessage, v1::CloudMessage>> stream;
  Watchdog watchdog;
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
  // The channel of a session: its receive limit depends on the session's
  // settings, so it is made (or remade) when a session opens.
  void ensure_channel(int reply_limit) {
    if (channel && channel_reply_limit == reply_limit) return;
    grpc::ChannelArguments args;
    // A reply larger than the session can need is refused by gRPC
    // (RESOURCE_EXHAUSTED) before it is allocated.
    args.SetMaxReceiveMessageSize(reply_limit);
    // Detect a peer that stopped answering (killed host, cut link) while a
    // request is outstanding; the server permits pings this frequent.
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    if (!o.tls_server_name.empty()) args.SetSslTargetNameOverride(o.tls_server_name);
    channel = grpc::CreateCustomChannel(o.target, creds, args);
    stub = v1::Cloud::NewStub(channel);
    channel_reply_limit = reply_limit;
  }
};

GrpcTransport::GrpcTransport(ClientOptions opts) : impl_(std::make_unique<Impl>()) {
  auto& m = *impl_;
  m.o = std::move(opts);
  if (m.o.target.empty()) throw Error("--cloud: empty HOST:PORT");
  if (!std::isfinite(m.o.exchange_timeout_s) || m.o.exchange_timeout_s <= 0)
    throw Error("--cloud-timeout must be a finite number of seconds > 0, got " +
                std::to_string(m.o.exchange_timeout_s));
  if (!std::isfinite(m.o.connect_timeout_s) || m.o.connect_timeout_s <= 0)
    throw Error("connect timeout must be a finite number of seconds > 0");
  if (!std::isfinite(m.o.net_delay_ms) || m.o.net_delay_ms < 0)
    throw Error("--net-delay-ms must be a finite number >= 0, got " + std::to_string(m.o.net_delay_ms));
  if (m.o.tls_ca_file.empty()) {
    m.creds = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = read_text_file(m.o.tls_ca_file, "--tls-ca");
    m.creds = grpc::SslCredentials(ssl);
  }
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
    m.ensure_channel(max_reply_bytes(std::get<steer::SessionOpen>(msg)));
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

  // The deadline covers the write (a cloud that stops reading blocks it) and
  // the wait for the reply.
  m.watchdog.arm(m.ctx.get(), Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                  std::chrono::duration<double>(m.o.exchange_timeout_s)));
  v1::CloudMessage down;
  const bool wrote = m.stream->Write(up);
  const bool read = wrote && m.stream->Read(&down);
  if (m.watchdog.disarm()) {
    m.stream->Finish();
    m.stream.reset();
    char secs[32];
    std::snprintf(secs, sizeof secs, "%g", m.o.exchange_timeout_s);
    m.fail(std::string("DEADLINE_EXCEEDED: no reply to ") + steer::message_name(msg) + " within " + secs +
           " s (--cloud-timeout)");
  }
  if (!wrote) m.fail_stream("a write");
  m.wire.up += up.ByteSizeLong() + kGrpcFrameBytes;
  if (!read) m.fail_stream("a read");
  m.wire.down += down.ByteSizeLong() + kGrpcFrameBytes;

  // A cloud of another protocol version: say so rather than "malformed".
  if (down.has_accept() && down.accept().version() != steer::kProtocolVersion) {
    m.ctx->TryCancel();
    m.stream->Finish();
    m.stream.reset();
    m.fail(steer::version_mismatch("the cloud", down.accept().version()));
  }
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
