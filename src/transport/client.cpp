#include "transport/client.h"

#include <grpcpp/grpcpp.h>
#include <netdb.h>
#include <sys/socket.h>
#include <arpa/inet.h>

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

namespace {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t at = 0;
  for (;;) {
    const size_t comma = s.find(',', at);
    out.push_back(s.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
    if (comma == std::string::npos) return out;
    at = comma + 1;
  }
}

bool one_loopback(const std::string& target) {
  std::string host = target;
  if (host.rfind("ipv4:", 0) == 0 || host.rfind("ipv6:", 0) == 0) host = host.substr(5);
  if (!host.empty() && host.front() == '[') {
    host = host.substr(1, host.find(']') == std::string::npos ? std::string::npos : host.find(']') - 1);
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    host = host.substr(0, host.find(':'));
  }
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

}  // namespace

bool is_loopback_target(const std::string& target) {
  std::string list = target;
  for (const char* scheme : {"ipv4:", "ipv6:"})
    if (list.rfind(scheme, 0) == 0) list = list.substr(5);
  for (const auto& t : split_commas(list))
    if (!one_loopback(t)) return false;
  return true;
}

std::string channel_target(const std::string& cloud) {
  if (cloud.find(',') == std::string::npos) return cloud;
  for (const char* scheme : {"ipv4:", "ipv6:", "dns:", "unix:"})
    if (cloud.rfind(scheme, 0) == 0) return cloud;
  std::vector<std::string> v4, v6;
  for (const auto& entry : split_commas(cloud)) {
    const auto bad = [&](const std::string& why) {
      return Error("--cloud '" + cloud + "': entry '" + entry + "' " + why +
                   " (expected HOST:PORT,HOST:PORT,..., e.g. 10.0.0.1:7070,10.0.0.2:7070)");
    };
    const auto colon = entry.rfind(':');
    if (entry.empty() || colon == std::string::npos || colon == 0 || colon + 1 == entry.size()) throw bad("has no HOST:PORT");
    std::string host = entry.substr(0, colon);
    const std::string port = entry.substr(colon + 1);
    if (port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 || std::stoi(port) > 65535 ||
        std::stoi(port) == 0)
      throw bad("has port '" + port + "', not 1..65535");
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (const int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0)
      throw bad(std::string("does not resolve (") + gai_strerror(rc) + ")");
    for (addrinfo* p = res; p; p = p->ai_next) {
      char buf[INET6_ADDRSTRLEN] = {};
      if (p->ai_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(p->ai_addr)->sin_addr, buf, sizeof buf);
        v4.push_back(std::string(buf) + ":" + port);
        std::string mapped = "[::ffff:";
        mapped += buf;
        mapped += "]:";
        mapped += port;
        v6.push_back(std::move(mapped));
      } else if (p->ai_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(p->ai_addr)->sin6_addr, buf, sizeof buf);
        std::string addr = "[";  // built by appends: GCC 12's -Wrestrict misreads "[" + string
        addr += buf;
        addr += "]:";
        addr += port;
        v6.push_back(std::move(addr));
        v4.clear();  // mixed families: every address as IPv6 (IPv4 ones mapped)
      }
    }
    freeaddrinfo(res);
  }
  const bool all_v4 = !v4.empty() && v4.size() == v6.size();
  std::string out = all_v4 ? "ipv4:" : "ipv6:";
  const auto& list = all_v4 ? v4 : v6;
  for (size_t i = 0; i < list.size(); ++i) out += (i ? "," : "") + list[i];
  return out;
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
  std::string target;  // channel_target(o.target)
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

  bool broken_resumable = true;
  [[noreturn]] void fail(const std::string& why, bool resumable = true) {
    broken = "cloud " + o.target + ": " + why;
    broken_resumable = resumable;
    throw steer::TransportError(broken, resumable);
  }
  // The stream broke: its final status says why. A status the cloud sends
  // on purpose (a bad request, authentication, another model or version)
  // would come again from any replica; the rest are outages.
  static bool outage(const grpc::Status& st) {
    // gRPC's own refusal of a reply above the receive limit: the cloud sent
    // more than the protocol allows, which is no outage.
    if (st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
        st.error_message().find("larger than max") != std::string::npos)
      return false;
    switch (st.error_code()) {
      case grpc::StatusCode::INVALID_ARGUMENT:
      case grpc::StatusCode::FAILED_PRECONDITION:
      case grpc::StatusCode::UNAUTHENTICATED:
      case grpc::StatusCode::PERMISSION_DENIED:
      case grpc::StatusCode::UNIMPLEMENTED:
      case grpc::StatusCode::NOT_FOUND:
      case grpc::StatusCode::ALREADY_EXISTS:
      case grpc::StatusCode::OUT_OF_RANGE:
        return false;
      default:
        return true;
    }
  }
  // True when the cloud refused a new session because it is draining.
  bool draining_refusal(const grpc::Status& st) const {
    if (st.error_code() != grpc::StatusCode::UNAVAILABLE || !ctx) return false;
    return ctx->GetServerTrailingMetadata().count(kDrainingKey) > 0;
  }
  [[noreturn]] void fail_stream(const char* during) {
    grpc::Status st = stream->Finish();
    stream.reset();
    if (st.ok()) fail(std::string("stream ended during ") + during);
    fail(describe(st), outage(st));
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
    // Several replicas (a list, or a name with several addresses): sessions
    // are spread over the ready ones and a dead one is skipped.
    args.SetLoadBalancingPolicyName("round_robin");
    channel = grpc::CreateCustomChannel(target, creds, args);
    stub = v1::Cloud::NewStub(channel);
    channel_reply_limit = reply_limit;
  }
};

GrpcTransport::GrpcTransport(ClientOptions opts) : impl_(std::make_unique<Impl>()) {
  auto& m = *impl_;
  m.o = std::move(opts);
  if (m.o.target.empty()) throw Error("--cloud: empty HOST:PORT");
  m.target = channel_target(m.o.target);
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

bool GrpcTransport::reopen() {
  auto& m = *impl_;
  if (m.stream) {
    m.ctx->TryCancel();
    m.stream->Finish();
    m.stream.reset();
  }
  m.broken.clear();
  return true;
}

std::vector<uint8_t> GrpcTransport::exchange(std::span<const uint8_t> request) {
  auto& m = *impl_;
  if (!m.broken.empty()) throw steer::TransportError(m.broken, m.broken_resumable);
  const steer::Message msg = steer::decode(request);
  const v1::EdgeMessage up = to_proto_uplink(msg);
  if (m.o.net_delay_ms > 0)
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(m.o.net_delay_ms));
  const auto exchange_timeout = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(m.o.exchange_timeout_s));
  const bool opening = up.has_open();
  if (opening) {
    if (m.stream) throw Error("transport: SessionOpen on a stream that already has a session");
    m.ensure_channel(max_reply_bytes(std::get<steer::SessionOpen>(msg)));
  } else if (!m.stream) {
    m.fail(std::string(steer::message_name(msg)) + " without an open session", false);
  }

  // A draining replica refuses a new session with UNAVAILABLE and a marker:
  // open again (the balancer or the channel routes it elsewhere) until the
  // exchange deadline, without counting a cloud failure.
  const auto open_deadline = Clock::now() + exchange_timeout;
  v1::CloudMessage down;
  for (int attempt = 0;; ++attempt) {
    if (opening) {
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
    }
    // The deadline covers the write (a cloud that stops reading blocks it)
    // and the wait for the reply.
    m.watchdog.arm(m.ctx.get(), Clock::now() + exchange_timeout);
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
    if (read) break;
    if (!opening) m.fail_stream("a read");
    const grpc::Status st = m.stream->Finish();
    m.stream.reset();
    const auto pause = std::chrono::milliseconds(std::min(500, 20 << std::min(attempt, 5)));
    if (m.draining_refusal(st) && Clock::now() + pause < open_deadline) {
      std::this_thread::sleep_for(pause);
      continue;
    }
    if (st.ok()) m.fail("stream ended during a read");
    m.fail(describe(st), Impl::outage(st));
  }
  m.wire.down += down.ByteSizeLong() + kGrpcFrameBytes;

  // A cloud of another protocol version: say so rather than "malformed".
  if (down.has_accept() && down.accept().version() != steer::kProtocolVersion) {
    m.ctx->TryCancel();
    m.stream->Finish();
    m.stream.reset();
    m.fail(steer::version_mismatch("the cloud", down.accept().version()), false);
  }
  steer::Message reply;
  try {
    reply = from_proto(down, m.limits);
  } catch (const Error& e) {
    m.ctx->TryCancel();
    m.stream->Finish();
    m.stream.reset();
    m.fail(std::string("malformed reply: ") + e.what(), false);
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
