#pragma once
// The cloud as a network service: one gRPC bidirectional stream per
// generation (specsteer.proto). One copy of each model's weights serves
// every session; each session owns one KV-cache Sequence per model and lives
// in the handler of the stream that opened it, so no other stream can drive
// it. Sessions are admitted while --max-sessions and the KV-cache memory
// budget allow (RESOURCE_EXHAUSTED otherwise), reclaimed when idle, and
// drained on shutdown: the standard grpc.health.v1.Health service on the same
// port answers SERVING while sessions are admitted and NOT_SERVING from the
// moment a drain starts, so a balancer stops sending new sessions while the
// open ones finish. Metrics in Prometheus's text format on --metrics-listen.
//
// Concurrent sessions share forward passes: each model sits behind an
// EvalBatcher (model/batcher.h), so the draft blocks that sessions send while
// a pass runs are verified together in the next one, reading the weights
// once for all of them (--no-batching turns this off; BENCHMARKS.md).
#include <cstdint>
#include <functional>
#include <optional>
#include <memory>
#include <string>

#include "steer/settings.h"

namespace specsteer {
class Model;
}

namespace specsteer::transport {

struct ServerOptions {
  std::string listen = "127.0.0.1:7070";  // HOST:PORT; port 0 picks a free port (see port())
  int max_sessions = 64;
  double idle_timeout_s = 300;   // a session (or an unopened stream) idle this long is cancelled
  std::string tls_cert_file;     // PEM certificate chain + key: TLS; both empty = plaintext
  std::string tls_key_file;
  std::string auth_token;        // required bearer token; empty = no authentication
  uint64_t memory_budget_bytes = 0;  // session_memory_bytes of all sessions; 0 = unlimited
  int n_ctx = 0;                 // per-session context of each model (0 = the model's training context)
  int max_message_bytes = 1 << 20;  // largest accepted uplink message
  double shutdown_grace_s = 10;  // in-flight sessions may finish this long after shutdown()
  bool batching = true;          // share forward passes between concurrent sessions
  int max_batch_rows = 64;       // token positions per shared pass
  // The only steering candidate rule sessions may ask for; none: any. The
  // rule travels in each SessionOpen, so a cloud operator can pin one here.
  std::optional<steer::SteerCandidates> steer_candidates;
  std::string metrics_listen;    // HOST:PORT serving /metrics (Prometheus text format); empty = none
  // Prefix KV cache (model/prefix_cache.h) over both models: bytes it may
  // hold (0 = off; on top of memory_budget_bytes), and which sessions share
  // it: each conversation's own (SessionOpen.cache_conversation), each
  // edge user's (cache_user), or everyone's. Sessions without the key share
  // nothing.
  uint64_t cache_ram_bytes = 0;
  enum class CacheScope { Session, User, Global } cache_scope = CacheScope::Session;
  std::function<void(const std::string&)> log;  // one line per event; never holds prompt text or ids
};

struct ServerStats {
  uint64_t opened = 0, closed = 0, refused = 0, failed = 0, reclaimed = 0, active = 0;
  uint64_t resumed = 0;  // of `opened`: sessions an edge reopened with a resume point
  // Forward passes run and eval requests served, both models together; with
  // batching, requests / passes is the mean number of sessions per pass.
  uint64_t passes = 0, requests = 0;
  uint64_t cached_tokens = 0;  // x positions both models reused from the prefix cache
};

// Memory one session holds: both models' KV caches (F32, n_ctx positions)
// plus the logits rows its evals keep (up to draft + 1 rows per model, copied
// once by the cloud role, plus its next-token rows).
uint64_t session_memory_bytes(const Model& llm, const Model& slm, int n_ctx, int draft);

class CloudServer {
 public:
  // Binds and starts serving; throws Error when the address cannot be bound,
  // TLS files are unreadable or a model's tokenizer cannot be read (models with
  // different vocabularies pair through bytes: cross-tokenizer specsteer).
  CloudServer(std::shared_ptr<const Model> llm, std::shared_ptr<const Model> slm, ServerOptions opts);
  ~CloudServer();  // shutdown() + wait()
  int port() const;  // the bound port
  int metrics_port() const;  // the bound --metrics-listen port (0: none)
  // Starts a drain: health NOT_SERVING, new sessions refused (UNAVAILABLE,
  // marked so edges open elsewhere at once); open ones go on.
  void drain();
  // Graceful: drain, wait until the open sessions end or the grace period
  // passes, then stop listening and end what is left with UNAVAILABLE.
  // Returns once all handlers ended.
  void shutdown();
  ServerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace specsteer::transport
