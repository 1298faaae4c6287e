#pragma once
// `specsteer edge serve`: the device side as a local HTTP server speaking the
// OpenAI API (cpp-httplib), so apps reach the edge the way they already reach
// an LLM. One generation runs at a time (the device has one model and one
// thread pool); requests wait their turn.
//
//   POST /v1/chat/completions  the whole conversation: x = the last user
//                              message, the earlier user/assistant turns its
//                              history (a profile user's entries are retrieved
//                              for the first user message, once per
//                              conversation); `stream: true` sends
//                              server-sent events ending in `data: [DONE]`
//   POST /v1/completions       x = `prompt`, no chat template
//   GET  /v1/models            the edge's model
//   GET  /health               {"status": "ok", counters}
//   GET  /                     the chat page (static, built into the binary)
//   GET  /v1/wire/{id}         what generation {id} sent to the cloud and got
//                              back (`specsteer.wire_id` of its reply; the
//                              last wire_logs generations are kept)
//   GET  /v1/specsteer/options profile users, methods and defaults (the page)
//
// `user` selects the profile user (with a profile store: the user's entries
// and LoRA adapters); llama.cpp's top_k, min_p, repeat_penalty and
// repeat_last_n are accepted beside OpenAI's fields; a `specsteer`
// object carries method, lambda, beta, K, steer_k, task, retrieve_k. The
// response's `usage` and `specsteer` objects report tokens, acceptance, round
// trips and bytes. Errors are OpenAI-shaped ({"error": {message, type,
// param, code}}) with 400 (bad request), 404 (unknown route or user), 502
// (the cloud did not open the session) or 500. A client that disconnects
// mid-stream cancels its generation. With an API key every route but
// /health and the page (GET /) needs `Authorization: Bearer KEY` (401 in
// OpenAI's shape otherwise).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/lora.h"
#include "steer/generate.h"
#include "steer/transport.h"

namespace specsteer::serve {

struct EdgeServerOptions {
  std::string host = "127.0.0.1";  // loopback by default
  // llama-server's --api-key: required as "Authorization: Bearer KEY" on every
  // route but /health (compared in constant time); empty = none.
  std::string api_key;
  int port = 8080;                 // 0: any free port (see port())
  std::string model_id;            // the id /v1/models reports and responses echo
  steer::Settings defaults;        // per-request fields override these
  bool chat = true;                // chat template on /v1/chat/completions
  std::string profile_db;          // empty: no personalization by `user`
  std::string task;                // default task for profile prompts
  int retrieve_k = 4;
  std::vector<LoraRef> lora;       // adapters of the SLM+ for every request (a profile user's own follow)
  std::string system;              // system text of chat requests that bring none
  std::vector<std::string> stop;   // stop strings of requests without `stop`
  // A fresh link to the cloud per generation; null: the cloud runs in this
  // process (the models must then include the LLM).
  std::function<std::unique_ptr<steer::Transport>()> connect;
  steer::CloudFailure on_cloud_failure = steer::CloudFailure::FallbackAfterOpen;
  int cloud_retries = 2;  // sessions resumed after a cloud failure before on_cloud_failure applies
  std::function<void(const std::string&)> log;  // one line per request; never prompt text
  int wire_logs = 32;        // wire logs of the last N cloud generations kept for GET /v1/wire/{id}
  std::string cloud_name;    // the cloud's address as the wire logs name it ("in-process" without one)
  // The device's prefix cache (--cache-ram): each user's SLM+ prompt (the
  // personalized conversation) kept so the next turn prefills only what is
  // new; per user, never shared between users. 0 = off.
  uint64_t cache_ram_bytes = 256ull << 20;
  // Assistant turns of a conversation that this server cannot show the cloud
  // already saw (a reply of slm+/slm/llm, a fallback's tail, an edited
  // reply, or one from before a restart) may carry profile words: Verified
  // sends them empty (SLM+ still reads them), All sends them as they are.
  enum class HistoryToCloud { Verified, All } history_to_cloud = HistoryToCloud::Verified;
};

struct EdgeServerStats {
  uint64_t requests = 0, generations = 0, errors = 0, cancelled = 0;
};

class EdgeServer {
 public:
  // Binds (throws Error naming the address when it cannot) and serves on a
  // background thread until stop() or destruction.
  EdgeServer(const steer::Models& models, EdgeServerOptions opts);
  ~EdgeServer();
  int port() const;
  void stop();
  EdgeServerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace specsteer::serve
