#pragma once
// The cloud's metrics in Prometheus's text exposition format
// (prometheus-cpp, Debian's prometheus-cpp-dev), served at /metrics on
// `cloud serve --metrics-listen HOST:PORT`. Counts and sizes only: no label
// or value ever holds text, x or token ids; models appear by identity.
#include <cstdint>
#include <memory>
#include <string>

namespace specsteer::transport {

class CloudMetrics {
 public:
  struct ModelLabels {
    std::string role, name, arch, fingerprint;
  };
  // `listen` empty: metrics are kept (ServerStats reads them) but not served.
  // Throws Error naming the address when it cannot be bound.
  CloudMetrics(const std::string& listen, const ModelLabels& llm, const ModelLabels& slm, uint64_t kv_budget_bytes);
  ~CloudMetrics();
  int port() const;  // the bound port (0 when not served)

  void session_opened(bool resumed, uint64_t x_llm_tokens, uint64_t x_slm_tokens, uint64_t resume_tokens);
  void session_refused(const std::string& reason);  // a short fixed word: draining, session_limit, ...
  void session_ended(const std::string& how);       // closed, failed, reclaimed
  void set_active(uint64_t sessions, uint64_t kv_bytes_reserved);
  void verified_block(uint64_t drafted, uint64_t accepted, bool rejected);
  void step();
  void exchange(double server_seconds, uint64_t bytes_in, uint64_t bytes_out);
  void shared_pass(const char* model, uint64_t requests, uint64_t rows);
  void set_serving(bool serving);
  // A session's prompt positions reused from the prefix cache, and what the
  // cache holds now.
  void prefix_cache(uint64_t llm_hit_tokens, uint64_t slm_hit_tokens, uint64_t bytes_held);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace specsteer::transport
