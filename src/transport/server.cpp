#include "transport/server.h"

#include <grpc/support/log.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "common/error.h"
#include "common/secret.h"
#include "model/batcher.h"
#include "model/model.h"
#include "steer/cloud.h"
#include "transport/client.h"
#include "transport/convert.h"
#include "transport/metrics.h"
#include "transport/specsteer.grpc.pb.h"
#include "transport/status.h"

namespace specsteer::transport {

namespace {

using Clock = std::chrono::steady_clock;
using grpc::Status;
using grpc::StatusCode;

uint64_t kv_bytes(const Model& m, int n_ctx) {
  const auto& c = m.config();
  const uint64_t ctx = static_cast<uint64_t>(n_ctx > 0 ? n_ctx : c.n_ctx_train);
  return 2ull * static_cast<uint64_t>(c.n_layer) * ctx * static_cast<uint64_t>(c.kv_dim()) * sizeof(float);
}

int ctx_of(const Model& m, int n_ctx) { return n_ctx > 0 ? n_ctx : m.config().n_ctx_train; }

// Logits a session keeps for one model: the Sequence's last rows (up to
// draft + 1), the cloud's copy of them and its next-token row.
uint64_t logits_bytes(const Model& m, int draft) {
  const uint64_t rows = 2ull * (static_cast<uint64_t>(draft) + 1) + 1;
  return rows * static_cast<uint64_t>(m.config().n_vocab) * sizeof(float);
}

std::string seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

std::string mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}


constexpr size_t kMinTokenBytes = 16;

uint64_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

struct ListenAddress {
  std::string host;  // without brackets
  int port = 0;      // 0: any free port
};

// HOST:PORT or [IPv6]:PORT; port 0..65535 (0 picks a free port). gRPC would
// wrap a larger number silently (99999 -> 34463).
ListenAddress parse_listen(const std::string& listen) {
  const auto colon = listen.rfind(':');
  const auto bad = [&](const std::string& why) {
    return Error("--listen '" + listen + "': " + why + " (expected HOST:PORT, e.g. 127.0.0.1:7070 or 0.0.0.0:7070)");
  };
  if (colon == std::string::npos || colon == 0) throw bad("no host");
  ListenAddress a;
  a.host = listen.substr(0, colon);
  if (a.host.size() >= 2 && a.host.front() == '[' && a.host.back() == ']') a.host = a.host.substr(1, a.host.size() - 2);
  const std::string port = listen.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
    throw bad("port '" + port + "' is not a number");
  a.port = std::stoi(port);
  if (a.port > 65535) throw bad("port " + port + " is out of range 1..65535 (0: any free port)");
  return a;
}

// Why binding the address would fail ("" when it would not): the host does
// not resolve, or the port is taken. Binds with SO_REUSEADDR like gRPC, so a
// port that only has connections in TIME_WAIT counts as free.
std::string bind_problem(const ListenAddress& a) {
  if (a.port == 0) return "";
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(a.port);
  if (const int rc = getaddrinfo(a.host.empty() ? nullptr : a.host.c_str(), port.c_str(), &hints, &res); rc != 0)
    return "host '" + a.host + "' does not resolve (" + gai_strerror(rc) + ")";
  std::string why;
  for (addrinfo* p = res; p && why.empty(); p = p->ai_next) {
    const int fd = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC, p->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, p->ai_addr, p->ai_addrlen) != 0) {
      why = errno == EADDRINUSE ? "port " + port + " is already in use by another process"
                                : std::string(std::strerror(errno));
    }
    close(fd);
  }
  freeaddrinfo(res);
  return why;
}

// gRPC logs its own account of a failed bind to stderr; silence it while the
// server starts (errors are reported by us), then restore the default.
// (gRPC 1.51 exposes no handle to its default logger, so ours prints the
// same facts in the same place when not silenced.)
std::atomic<int> grpc_log_silenced{0};
void grpc_log_to_stderr(gpr_log_func_args* a) {
  if (grpc_log_silenced.load() > 0) return;
  std::fprintf(stderr, "%s %s:%d] %s\n", gpr_log_severity_string(a->severity), a->file, a->line, a->message);
}
class QuietGrpcLog {
 public:
  QuietGrpcLog() {
    gpr_set_log_function(grpc_log_to_stderr);
    ++grpc_log_silenced;
  }
  ~QuietGrpcLog() { --grpc_log_silenced; }
};

}  // namespace

uint64_t session_memory_bytes(const Model& llm, const Model& slm, int n_ctx, int draft) {
  return kv_bytes(llm, n_ctx) + kv_bytes(slm, n_ctx) + logits_bytes(llm, draft) + logits_bytes(slm, draft);
}

struct CloudServer::Impl final : v1::Cloud::Service {
  std::shared_ptr<const Model> llm, slm;
  steer::CloudModels models;  // identities, tokenizers (x as text), EOG ids, context
  ServerOptions o;
  uint64_t kv_per_session = 0;
  std::shared_ptr<EvalBatcher> llm_batcher, slm_batcher;  // null without batching
  int ctx_llm = 0, ctx_slm = 0;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::unique_ptr<CloudMetrics> metrics;
  std::shared_ptr<PrefixCache> prefix_cache;  // null: --cache-ram 0

  // Where a session's prompts may be found and kept: the scope's key from the
  // edge, or no cache when the edge sent none.
  steer::PrefixUse prefix_for(const steer::SessionOpen& open) const {
    if (!prefix_cache) return {};
    switch (o.cache_scope) {
      case ServerOptions::CacheScope::Global:
        return {prefix_cache, "*"};
      case ServerOptions::CacheScope::User:
        if (open.cache_user.empty()) return {};
        return {prefix_cache, "u:" + open.cache_user};
      case ServerOptions::CacheScope::Session:
        break;
    }
    if (open.cache_conversation.empty()) return {};
    return {prefix_cache, "c:" + open.cache_conversation};
  }

  struct Live {  // one open stream, watched for idleness
    grpc::ServerContext* ctx;
    Clock::time_point last;
    bool busy = false;
    bool reclaimed = false;
  };
  mutable std::mutex mu;
  std::condition_variable cv;
  std::map<uint64_t, Live> live;
  uint64_t next_stream = 0;
  uint64_t next_session = 0;
  ServerStats st;
  uint64_t reserved = 0;  // session_memory_bytes of the active sessions
  bool draining = false, stop = false, shut = false;
  Clock::time_point grace_end;
  std::thread reaper;

  void log(const std::string& line) const {
    if (o.log) o.log(line);
  }

  // Sessions ids are unguessable, but a session is bound to its stream anyway.
  uint64_t new_session_id() {
    std::lock_guard<std::mutex> lock(mu);
    return next_session++;
  }

  void reap() {
    std::unique_lock<std::mutex> lock(mu);
    const auto period = std::chrono::duration<double>(std::clamp(o.idle_timeout_s / 4, 0.05, 1.0));
    while (!stop) {
      cv.wait_for(lock, period);
      const auto now = Clock::now();
      for (auto& [id, l] : live) {
        if (l.busy || l.reclaimed) continue;
        if (std::chrono::duration<double>(now - l.last).count() >= o.idle_timeout_s) {
          l.reclaimed = true;
          l.ctx->TryCancel();
        }
      }
    }
  }

  void touch(uint64_t serial, bool busy) {
    std::lock_guard<std::mutex> lock(mu);
    auto& l = live.at(serial);
    l.last = Clock::now();
    l.busy = busy;
  }

  bool reclaimed(uint64_t serial) {
    std::lock_guard<std::mutex> lock(mu);
    return live.at(serial).reclaimed;
  }

  bool past_grace() {
    std::lock_guard<std::mutex> lock(mu);
    return draining && Clock::now() >= grace_end;
  }

  // `reason`: one fixed word for the metrics' label (never text of the request).
  Status refuse(StatusCode code, const char* reason, const std::string& why, const std::string& peer) {
    {
      std::lock_guard<std::mutex> lock(mu);
      ++st.refused;
    }
    metrics->session_refused(reason);
    log("refused stream from " + peer + ": " + code_name(code) + ": " + why);
    return Status(code, why);
  }

  Status Generate(grpc::ServerContext* ctx, grpc::ServerReaderWriter<v1::CloudMessage, v1::EdgeMessage>* stream) override;
  Status run_session(grpc::ServerContext* ctx, grpc::ServerReaderWriter<v1::CloudMessage, v1::EdgeMessage>* stream,
                     uint64_t serial, const std::string& peer);
};

grpc::Status CloudServer::Impl::Generate(grpc::ServerContext* ctx,
                                         grpc::ServerReaderWriter<v1::CloudMessage, v1::EdgeMessage>* stream) {
  const std::string peer = ctx->peer();
  uint64_t serial;
  {
    std::lock_guard<std::mutex> lock(mu);
    serial = next_stream++;
    live.emplace(serial, Live{ctx, Clock::now()});
  }
  Status status = run_session(ctx, stream, serial, peer);
  std::lock_guard<std::mutex> lock(mu);
  live.erase(serial);
  return status;
}

grpc::Status CloudServer::Impl::run_session(grpc::ServerContext* ctx,
                                            grpc::ServerReaderWriter<v1::CloudMessage, v1::EdgeMessage>* stream,
                                            uint64_t serial, const std::string& peer) {
  if (!o.auth_token.empty()) {
    const auto& md = ctx->client_metadata();
    const auto it = md.find("authorization");
    const std::string given = it == md.end() ? std::string() : std::string(it->second.data(), it->second.size());
    if (!bearer_matches(given, o.auth_token)) return refuse(StatusCode::UNAUTHENTICATED, "unauthenticated", "missing or wrong bearer token", peer);
  }

  v1::EdgeMessage in;
  if (!stream->Read(&in)) {
    if (reclaimed(serial)) return refuse(StatusCode::CANCELLED, "idle", "idle before SessionOpen", peer);
    return Status(StatusCode::CANCELLED, "stream ended before SessionOpen");
  }
  touch(serial, true);
  if (!in.has_open()) return refuse(StatusCode::FAILED_PRECONDITION, "protocol", "the first message must be SessionOpen", peer);
  // The version first: an edge of another version may fill fields differently.
  if (in.open().version() != steer::kProtocolVersion)
    return refuse(StatusCode::FAILED_PRECONDITION, "version", steer::version_mismatch("the edge", in.open().version()),
                  peer);
  steer::DecodeLimits lim;
  lim.n_vocab = std::max(models.llm.n_vocab, models.slm.n_vocab);
  lim.max_tokens = static_cast<uint64_t>(std::max(ctx_llm, ctx_slm));
  steer::SessionOpen open;
  try {
    open = std::get<steer::SessionOpen>(from_proto(in, lim));
    steer::admit_open(open, models);  // identities; x as text becomes each model's ids
  } catch (const steer::OpenRefused& e) {
    const bool mismatch = e.kind == steer::OpenRefused::Kind::Mismatch;
    return refuse(mismatch ? StatusCode::FAILED_PRECONDITION : StatusCode::INVALID_ARGUMENT,
                  mismatch ? "mismatch" : "invalid", e.what(), peer);
  } catch (const std::exception& e) {
    return refuse(StatusCode::INVALID_ARGUMENT, "invalid", e.what(), peer);
  }
  const auto& s = open.settings;
  if (!steer::uses_cloud(s.method))
    return refuse(StatusCode::INVALID_ARGUMENT, "invalid",
                  "method '" + std::string(steer::method_name(s.method)) + "' does not use the cloud", peer);
  if (o.steer_candidates && s.steer_candidates != *o.steer_candidates &&
      (s.method == steer::Method::SpecSteer || s.method == steer::Method::LightCoSteer))
    return refuse(StatusCode::FAILED_PRECONDITION, "candidates",
                  "this cloud sends only '" + std::string(steer::candidates_name(*o.steer_candidates)) +
                      "' steering vectors (--steer-candidates), the edge asked for '" +
                      std::string(steer::candidates_name(s.steer_candidates)) + "'",
                  peer);
  const uint64_t n_vocab = models.shared_vocab();
  if (static_cast<uint64_t>(s.top_k) > n_vocab)
    return refuse(StatusCode::INVALID_ARGUMENT, "invalid", "Settings.top_k exceeds the vocabulary (" + std::to_string(n_vocab) + ")",
                  peer);
  // Everything this session can append must fit in its caches.
  const uint64_t need = std::max(open.x_llm.size(), open.x_slm.size()) + static_cast<uint64_t>(s.max_new) +
                        static_cast<uint64_t>(s.draft) + 2;
  const uint64_t cap = static_cast<uint64_t>(std::min(ctx_llm, ctx_slm));
  if (need > cap)
    return refuse(StatusCode::INVALID_ARGUMENT, "context",
                  "x (" + std::to_string(std::max(open.x_llm.size(), open.x_slm.size())) + " tokens) + -n " +
                      std::to_string(s.max_new) + " + K " + std::to_string(s.draft) +
                      " exceeds the context of the cloud's sessions (" + std::to_string(cap) + ", --ctx)",
                  peer);

  // Admission: session count and memory budget.
  const uint64_t need_bytes = session_memory_bytes(*llm, *slm, o.n_ctx, s.draft);
  {
    std::unique_lock<std::mutex> lock(mu);
    std::string why;
    const char* reason = "";
    StatusCode code = StatusCode::RESOURCE_EXHAUSTED;
    if (draining) {
      code = StatusCode::UNAVAILABLE;
      reason = "draining";
      why = "the cloud is draining (shutting down): open the session on another replica";
      // The edge opens again at once (client.h) instead of counting a failure.
      ctx->AddTrailingMetadata(kDrainingKey, "1");
    } else if (st.active >= static_cast<uint64_t>(o.max_sessions)) {
      reason = "session_limit";
      why = "session limit reached: " + std::to_string(st.active) + " active (--max-sessions " +
            std::to_string(o.max_sessions) + ")";
    } else if (o.memory_budget_bytes && reserved + need_bytes > o.memory_budget_bytes) {
      reason = "memory_budget";
      why = "memory budget reached: " + std::to_string(st.active) + " sessions hold " + mib(reserved) +
            " of KV caches and logits, one more needs " + mib(need_bytes) + " (--memory-budget-mb " +
            std::to_string(o.memory_budget_bytes >> 20) + ")";
    }
    if (!why.empty()) {
      lock.unlock();
      return refuse(code, reason, why, peer);
    }
    ++st.active;
    ++st.opened;
    if (!open.resume.empty()) ++st.resumed;
    reserved += need_bytes;
    metrics->set_active(st.active, reserved);
  }
  struct Slot {
    Impl& s;
    uint64_t bytes;
    ~Slot() {
      {
        std::lock_guard<std::mutex> lock(s.mu);
        --s.st.active;
        s.reserved -= bytes;
        s.metrics->set_active(s.st.active, s.reserved);
      }
      s.cv.notify_all();  // a drain waits for the last session
    }
  } slot{*this, need_bytes};
  auto failed = [&](StatusCode code, const std::string& why, uint64_t id) {
    {
      std::lock_guard<std::mutex> lock(mu);
      ++st.failed;
    }
    metrics->session_ended("failed");
    log("session " + std::to_string(id) + " ended: " + code_name(code) + ": " + why);
    return Status(code, why);
  };

  const uint64_t id = new_session_id();
  const Clock::time_point open_start = Clock::now();
  std::unique_ptr<steer::Cloud> cloud;
  try {
    const steer::PrefixUse prefix = prefix_for(open);
    cloud = std::make_unique<steer::Cloud>(steer::make_sequence_source(llm, {.n_ctx = ctx_llm}, llm_batcher, prefix),
                                           steer::make_sequence_source(slm, {.n_ctx = ctx_slm}, slm_batcher, prefix),
                                           open, models.bytes);
  } catch (const std::exception& e) {
    return failed(StatusCode::INVALID_ARGUMENT, e.what(), id);
  }
  log("session " + std::to_string(id) + " opened: " + std::string(steer::method_name(s.method)) +
      (s.method == steer::Method::SpecSteer || s.method == steer::Method::LightCoSteer
           ? " (" + std::string(steer::candidates_name(s.steer_candidates)) + " steering)"
           : std::string()) +
      ", x " +
      std::to_string(open.x_llm.size()) + " tokens, max_new " + std::to_string(s.max_new) +
      (open.resume.empty() ? std::string() : ", resumed after " + std::to_string(open.resume.size()) + " decided tokens") +
      (cloud->llm_reused() + cloud->slm_reused() ? ", " + std::to_string(cloud->llm_reused()) + "+" +
                                                        std::to_string(cloud->slm_reused()) + " prompt tokens from the cache"
                                                  : std::string()) +
      ", peer " + peer);
  metrics->session_opened(!open.resume.empty(), open.x_llm.size(), open.x_slm.size(), open.resume.size());
  lim.n_vocab = static_cast<uint32_t>(cloud->n_vocab());
  lim.max_tokens = static_cast<uint64_t>(s.draft) + 1;

  const steer::SessionAccept accept = steer::accept_for(open, models, id, cloud.get());
  if (prefix_cache) {
    metrics->prefix_cache(accept.x_llm_cached, accept.x_slm_cached, prefix_cache->stats().bytes);
    std::lock_guard<std::mutex> lock(mu);
    st.cached_tokens += accept.x_llm_cached + accept.x_slm_cached;
  }
  v1::CloudMessage out = to_proto_downlink(accept);
  auto seconds_since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  metrics->exchange(seconds_since(open_start), in.ByteSizeLong() + kGrpcFrameBytes, out.ByteSizeLong() + kGrpcFrameBytes);
  touch(serial, false);  // an edge that stops reading is idle too: --idle-timeout covers the write
  if (!stream->Write(out)) return failed(StatusCode::CANCELLED, "the edge went away", id);
  uint64_t rounds = 0;
  for (;;) {
    touch(serial, false);
    if (!stream->Read(&in)) {
      if (reclaimed(serial)) {
        std::lock_guard<std::mutex> lock(mu);
        ++st.reclaimed;
        metrics->session_ended("reclaimed");
        log("session " + std::to_string(id) + " reclaimed after " + seconds(o.idle_timeout_s) + " s idle");
        return Status(StatusCode::CANCELLED, "session idle for too long");
      }
      return failed(StatusCode::CANCELLED, "the edge went away without Close", id);
    }
    touch(serial, true);
    const Clock::time_point exchange_start = Clock::now();
    if (past_grace()) return failed(StatusCode::UNAVAILABLE, "the cloud is shutting down", id);
    steer::Message m;
    try {
      m = from_proto(in, lim);
    } catch (const std::exception& e) {
      return failed(StatusCode::INVALID_ARGUMENT, e.what(), id);
    }
    uint64_t claimed = 0;
    if (const auto* b = std::get_if<steer::DraftBlock>(&m)) claimed = b->session;
    if (const auto* r = std::get_if<steer::StepRequest>(&m)) claimed = r->session;
    if (const auto* c = std::get_if<steer::Close>(&m)) claimed = c->session;
    if (std::holds_alternative<steer::SessionOpen>(m) || claimed != id)
      return failed(StatusCode::FAILED_PRECONDITION,
                    std::holds_alternative<steer::SessionOpen>(m) ? "second SessionOpen on one stream"
                                                                   : "session " + std::to_string(claimed) +
                                                                         " is not this stream's session",
                    id);
    steer::Message reply;
    try {
      if (const auto* b = std::get_if<steer::DraftBlock>(&m)) {
        const steer::Verdict v = cloud->verify(*b);
        metrics->verified_block(b->drafts.size(), v.n_accepted, v.rejected);
        reply = v;
      } else if (const auto* r = std::get_if<steer::StepRequest>(&m)) {
        reply = cloud->step(*r);
        metrics->step();
      } else {
        reply = cloud->stats();
      }
    } catch (const std::exception& e) {
      return failed(StatusCode::INVALID_ARGUMENT, e.what(), id);
    }
    ++rounds;
    out = to_proto_downlink(reply);
    metrics->exchange(seconds_since(exchange_start), in.ByteSizeLong() + kGrpcFrameBytes,
                      out.ByteSizeLong() + kGrpcFrameBytes);
    touch(serial, false);
    if (!stream->Write(out)) return failed(StatusCode::CANCELLED, "the edge went away", id);
    if (std::holds_alternative<steer::CloseAck>(reply)) {
      {
        std::lock_guard<std::mutex> lock(mu);
        ++st.closed;
      }
      metrics->session_ended("closed");
      log("session " + std::to_string(id) + " closed after " + std::to_string(rounds - 1) + " round trips");
      return Status::OK;
    }
  }
}

CloudServer::CloudServer(std::shared_ptr<const Model> llm, std::shared_ptr<const Model> slm, ServerOptions opts)
    : impl_(std::make_unique<Impl>()) {
  auto& m = *impl_;
  if (!llm || !slm) throw Error("cloud serve: models are not loaded");
  if (opts.max_sessions < 1) throw Error("--max-sessions must be >= 1");
  if (!std::isfinite(opts.idle_timeout_s) || opts.idle_timeout_s <= 0)
    throw Error("--idle-timeout must be a finite number of seconds > 0");
  if (!std::isfinite(opts.shutdown_grace_s) || opts.shutdown_grace_s < 0)
    throw Error("--shutdown-grace must be a finite number of seconds >= 0");
  if (opts.n_ctx < 0) throw Error("--ctx must be >= 0");
  // A short token can be guessed; refuse it rather than give false security.
  if (!opts.auth_token.empty() && opts.auth_token.size() < kMinTokenBytes)
    throw Error("--auth-token-file: the token has " + std::to_string(opts.auth_token.size()) + " bytes, at least " +
                std::to_string(kMinTokenBytes) + " are required");
  const ListenAddress addr = parse_listen(opts.listen);
  if (opts.max_message_bytes < 64) throw Error("--max-message-bytes must be >= 64");
  if (opts.tls_cert_file.empty() != opts.tls_key_file.empty())
    throw Error("TLS needs both --tls-cert and --tls-key");
  m.llm = std::move(llm);
  m.slm = std::move(slm);
  m.o = std::move(opts);

  for (const auto* model : {m.llm.get(), m.slm.get()})
    if (m.o.n_ctx > model->config().n_ctx_train)
      throw Error("--ctx " + std::to_string(m.o.n_ctx) + " exceeds the training context of " + model->path() + " (" +
                  std::to_string(model->config().n_ctx_train) + " tokens)");
  m.ctx_llm = ctx_of(*m.llm, m.o.n_ctx);
  m.ctx_slm = ctx_of(*m.slm, m.o.n_ctx);
  m.models = steer::cloud_models(*m.llm, *m.slm, std::min(m.ctx_llm, m.ctx_slm));
  // One session's KV caches must fit in this machine's memory, or every
  // session would fail to allocate them.
  if (const uint64_t ram = physical_memory_bytes(); ram && session_memory_bytes(*m.llm, *m.slm, m.o.n_ctx, 1) > ram)
    throw Error("cloud serve: one session's KV caches at context " + std::to_string(std::min(m.ctx_llm, m.ctx_slm)) +
                " need " + mib(session_memory_bytes(*m.llm, *m.slm, m.o.n_ctx, 1)) + ", more than this machine's " +
                mib(ram) + " of memory (lower --ctx)");
  m.kv_per_session = kv_bytes(*m.llm, m.o.n_ctx) + kv_bytes(*m.slm, m.o.n_ctx);
  const uint64_t smallest_session = session_memory_bytes(*m.llm, *m.slm, m.o.n_ctx, 1);
  if (m.o.memory_budget_bytes && m.o.memory_budget_bytes < smallest_session)
    throw Error("--memory-budget-mb: one session needs at least " + mib(smallest_session) +
                " of KV caches and logits, more than the budget (lower --ctx or raise the budget)");
  if (m.o.max_batch_rows < 1) throw Error("--max-batch-rows must be >= 1");
  auto labels = [](const char* role, const steer::ModelIdentity& id) {
    char fp[24];
    std::snprintf(fp, sizeof fp, "%016llx", static_cast<unsigned long long>(id.fingerprint));
    return CloudMetrics::ModelLabels{role, id.name, id.arch, fp};
  };
  m.metrics = std::make_unique<CloudMetrics>(m.o.metrics_listen, labels("llm", m.models.llm),
                                             labels("slm", m.models.slm), m.o.memory_budget_bytes);
  if (m.o.batching) {
    m.llm_batcher = std::make_shared<EvalBatcher>(m.llm, m.o.max_batch_rows);
    // One file loaded once serves as both: one queue, or the two would contend.
    m.slm_batcher = m.slm == m.llm ? m.llm_batcher : std::make_shared<EvalBatcher>(m.slm, m.o.max_batch_rows);
    CloudMetrics* metrics = m.metrics.get();
    m.llm_batcher->set_pass_observer([metrics](size_t n, size_t rows) {
      metrics->shared_pass("llm", n, rows);  // shared: one model serves as both
    });
    if (m.slm_batcher != m.llm_batcher)
      m.slm_batcher->set_pass_observer([metrics](size_t n, size_t rows) { metrics->shared_pass("slm", n, rows); });
  }
  if (m.o.cache_ram_bytes > 0) m.prefix_cache = std::make_shared<PrefixCache>(m.o.cache_ram_bytes);
  std::random_device rd;
  m.next_session = (static_cast<uint64_t>(rd()) << 32 | rd()) & 0x7fffffffffffffffull;

  std::shared_ptr<grpc::ServerCredentials> creds;
  if (m.o.tls_cert_file.empty()) {
    creds = grpc::InsecureServerCredentials();
  } else {
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back(
        {read_text_file(m.o.tls_key_file, "--tls-key"), read_text_file(m.o.tls_cert_file, "--tls-cert")});
    creds = grpc::SslServerCredentials(ssl);
  }
  // Bind errors get one clear line of ours, not gRPC's internals: test the
  // address first (the usual failure, a port in use, is caught here).
  if (const std::string why = bind_problem(addr); !why.empty())
    throw Error("cloud serve: cannot listen on '" + m.o.listen + "': " + why);
  grpc::ServerBuilder b;
  b.AddListeningPort(m.o.listen, creds, &m.port);
  // gRPC sets SO_REUSEPORT by default, and the kernel would then split new
  // sessions between this server and any other process on the port.
  b.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  b.SetMaxReceiveMessageSize(m.o.max_message_bytes);
  b.SetMaxSendMessageSize(-1);
  b.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  b.RegisterService(&m);
  // gRPC's own grpc.health.v1.Health service on the same port: SERVING (the
  // models are loaded by now) until drain().
  grpc::EnableDefaultHealthCheckService(true);
  {
    QuietGrpcLog quiet;  // a failure is reported below in one line
    m.server = b.BuildAndStart();
  }
  if (!m.server || m.port == 0)
    throw Error("cloud serve: cannot listen on '" + m.o.listen + "' (address not available or port in use)");
  if (m.o.tls_cert_file.empty() && !is_loopback_target(m.o.listen))
    m.log(std::string("warning: listening on ") + m.o.listen + " without TLS (--tls-cert/--tls-key): " +
          (m.o.auth_token.empty() ? "x and the drafted tokens cross the network unencrypted"
                                  : "the bearer token (and x and the drafted tokens) cross the network in clear"));
  if (auto* health = m.server->GetHealthCheckService()) {
    health->SetServingStatus(true);
    health->SetServingStatus(v1::Cloud::service_full_name(), true);
  }
  m.reaper = std::thread([&m] { m.reap(); });
  if (!m.o.metrics_listen.empty())
    m.log("metrics (Prometheus text format) at http://" + m.o.metrics_listen.substr(0, m.o.metrics_listen.rfind(':')) +
          ":" + std::to_string(m.metrics->port()) + "/metrics");
  if (m.models.bytes)
    m.log("the LLM's and SLM's vocabularies differ: they pair through bytes (cross-tokenizer specsteer; sd, "
          "lightcosteer and costeer sessions are refused)");
  m.log("listening on port " + std::to_string(m.port) + (m.o.tls_cert_file.empty() ? " (plaintext)" : " (TLS)") +
        (m.o.auth_token.empty() ? ", no authentication" : ", bearer-token authentication") + "; KV cache " +
        mib(m.kv_per_session) + " per session (context " + std::to_string(m.ctx_llm) + "/" +
        std::to_string(m.ctx_slm) + "), max " + std::to_string(m.o.max_sessions) + " sessions, " +
        (m.o.batching ? "sessions share forward passes (up to " + std::to_string(m.o.max_batch_rows) + " rows)"
                      : "no cross-session batching") +
        (m.prefix_cache ? std::string("; prefix cache ") + mib(m.o.cache_ram_bytes) + " shared per " +
                              (m.o.cache_scope == ServerOptions::CacheScope::Global ? "cloud (every session)"
                               : m.o.cache_scope == ServerOptions::CacheScope::User ? "edge user"
                                                                                    : "conversation")
                        : std::string("; no prefix cache")));
}

CloudServer::~CloudServer() { shutdown(); }

int CloudServer::port() const { return impl_->port; }
int CloudServer::metrics_port() const { return impl_->metrics->port(); }
ServerStats CloudServer::stats() const {
  ServerStats s;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    s = impl_->st;
  }
  auto add = [&s](const EvalBatcher& b) {
    const BatcherStats bs = b.stats();
    s.passes += bs.passes;
    s.requests += bs.requests;
  };
  if (impl_->llm_batcher) add(*impl_->llm_batcher);
  if (impl_->slm_batcher && impl_->slm_batcher != impl_->llm_batcher) add(*impl_->slm_batcher);
  return s;
}

void CloudServer::drain() {
  auto& m = *impl_;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    if (m.draining) return;
    m.draining = true;
    m.grace_end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(m.o.shutdown_grace_s));
  }
  if (auto* health = m.server->GetHealthCheckService()) {
    health->SetServingStatus(false);
    health->SetServingStatus(v1::Cloud::service_full_name(), false);
  }
  m.metrics->set_serving(false);
  m.log("draining: health NOT_SERVING, new sessions refused; " + std::to_string(stats().active) +
        " sessions in flight, grace " + seconds(m.o.shutdown_grace_s) + " s");
}

void CloudServer::shutdown() {
  auto& m = *impl_;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    if (m.shut) return;
    m.shut = true;
  }
  drain();
  // The port stays open (health answers NOT_SERVING) while sessions finish.
  Clock::time_point grace_end;
  {
    std::unique_lock<std::mutex> lock(m.mu);
    grace_end = m.grace_end;
    m.cv.wait_until(lock, grace_end, [&m] { return m.st.active == 0; });
  }
  m.log("shutting down: " + std::to_string(stats().active) + " sessions in flight");
  // After the deadline gRPC cancels what is still running (idle streams).
  const double left = std::max(0.0, std::chrono::duration<double>(grace_end - Clock::now()).count());
  m.server->Shutdown(std::chrono::system_clock::now() +
                     std::chrono::duration_cast<std::chrono::system_clock::duration>(
                         std::chrono::duration<double>(left + 1.0)));
  m.server->Wait();
  {
    std::lock_guard<std::mutex> lock(m.mu);
    m.stop = true;
  }
  m.cv.notify_all();
  if (m.reaper.joinable()) m.reaper.join();
  const auto s = stats();
  m.log("stopped: " + std::to_string(s.opened) + " sessions opened, " + std::to_string(s.closed) + " closed, " +
        std::to_string(s.failed) + " ended early, " + std::to_string(s.reclaimed) + " reclaimed, " +
        std::to_string(s.refused) + " refused" +
        (m.o.batching ? "; " + std::to_string(s.requests) + " evals in " + std::to_string(s.passes) + " forward passes"
                      : ""));
}

}  // namespace specsteer::transport
