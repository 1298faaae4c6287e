// specsteer cloud serve: the cloud role as a gRPC server for many edges.
// specsteer cloud load:  many concurrent edges against one server (benchmark).
// specsteer cloud health: gRPC's standard health check of a server (probe).
#ifdef SPECSTEER_HAVE_GRPC
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/options.h"
#include "common/error.h"
#include "steer/generate.h"
#include "transport/client.h"
#include "transport/health.h"
#include "transport/loadgen.h"
#include "transport/server.h"

namespace specsteer::cli {
namespace {

struct ServeOpts {
  std::string llm, slm, listen = "127.0.0.1:7070", tls_cert, tls_key, token_file, port_file, metrics_listen;
  std::string metrics_port_file;
  int max_sessions = 64, threads = 0, n_ctx = 0, max_message_bytes = 1 << 20, max_batch_rows = 64;
  double idle_timeout = 300, grace = 10, budget_mb = 0, cache_ram_mb = 1024;
  std::string cache_scope = "session";
  bool no_batching = false;
  std::string steer_candidates = "any";
};

void log_line(const std::string& line) {
  const std::time_t now = std::time(nullptr);
  char ts[32];
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", std::gmtime(&now));
  std::fprintf(stderr, "%s cloud: %s\n", ts, line.c_str());
}

void serve(const ServeOpts& o) {
  // SIGTERM/SIGINT are taken by sigwait below; block them before any thread
  // (model thread pools, gRPC) exists so none of those threads gets them.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  transport::ServerOptions so;
  so.listen = o.listen;
  so.max_sessions = o.max_sessions;
  so.idle_timeout_s = o.idle_timeout;
  so.tls_cert_file = o.tls_cert;
  so.tls_key_file = o.tls_key;
  if (!o.token_file.empty()) so.auth_token = transport::read_token_file(o.token_file);
  if (!std::isfinite(o.budget_mb) || o.budget_mb < 0)
    throw Error("--memory-budget-mb must be a finite number >= 0 (0 = unlimited)");
  if (!std::isfinite(o.grace) || o.grace < 0) throw Error("--shutdown-grace must be a finite number of seconds >= 0");
  if (!std::isfinite(o.idle_timeout) || o.idle_timeout <= 0)
    throw Error("--idle-timeout must be a finite number of seconds > 0");
  so.memory_budget_bytes = static_cast<uint64_t>(o.budget_mb * 1024.0 * 1024.0);
  so.n_ctx = o.n_ctx;
  so.max_message_bytes = o.max_message_bytes;
  so.shutdown_grace_s = o.grace;
  so.batching = !o.no_batching;
  so.max_batch_rows = o.max_batch_rows;
  if (o.steer_candidates != "any") so.steer_candidates = steer::parse_candidates(o.steer_candidates);
  so.log = log_line;
  so.metrics_listen = o.metrics_listen;
  so.cache_ram_bytes = cache_ram_bytes(o.cache_ram_mb);
  if (o.cache_scope == "session")
    so.cache_scope = transport::ServerOptions::CacheScope::Session;
  else if (o.cache_scope == "user")
    so.cache_scope = transport::ServerOptions::CacheScope::User;
  else if (o.cache_scope == "global")
    so.cache_scope = transport::ServerOptions::CacheScope::Global;
  else
    throw Error("--cache-scope '" + o.cache_scope + "': use session, user or global");
  if (!o.metrics_port_file.empty() && o.metrics_listen.empty()) throw Error("--metrics-port-file needs --metrics-listen");
  auto models = steer::Models::load(o.llm, o.slm, {.n_threads = o.threads});
  transport::CloudServer server(models.llm, models.slm, so);
  if (!o.metrics_port_file.empty()) write_port_file(o.metrics_port_file, server.metrics_port());
  if (!o.port_file.empty()) write_port_file(o.port_file, server.port());
  int sig = 0;
  sigwait(&sigs, &sig);
  log_line(std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT"));
  server.shutdown();  // drains: health NOT_SERVING, open sessions finish within --shutdown-grace
}

struct LoadOpts {
  std::string llm, slm, method = "specsteer", input, private_context;
  std::string cloud, tls_ca, token_file;
  double lambda = 0.5, net_delay_ms = 0, temp = 0;
  int draft = 4, topk = 32, n = 32, concurrency = 1, sessions = 0, threads = 0;
  std::string steer_candidates{steer::candidates_name(steer::Settings{}.steer_candidates)};
  double plausibility = steer::Settings{}.plausibility;
  uint64_t seed = 0;
};

void load(const LoadOpts& o) {
  steer::GenerateRequest req;
  auto& s = req.settings;
  s.method = steer::parse_method(o.method);
  s.lambda = o.lambda;
  s.draft = o.draft;
  s.top_k = o.topk;
  s.max_new = o.n;
  s.seed = o.seed;
  s.sampler.temperature = o.temp;
  s.steer_candidates = steer::parse_candidates(o.steer_candidates);
  s.plausibility = o.plausibility;
  steer::validate(s);
  req.x = o.input;
  req.personalized = o.private_context.empty() ? o.input : o.private_context + "\n\n" + o.input;
  transport::LoadOptions lo;
  lo.client.target = o.cloud;
  lo.client.tls_ca_file = o.tls_ca;
  if (!o.token_file.empty()) lo.client.auth_token = transport::read_token_file(o.token_file);
  if (!std::isfinite(o.net_delay_ms) || o.net_delay_ms < 0)
    throw Error("--net-delay-ms must be a finite number >= 0");
  lo.client.net_delay_ms = o.net_delay_ms;
  lo.concurrency = o.concurrency;
  lo.sessions = o.sessions > 0 ? o.sessions : o.concurrency;
  auto models = steer::Models::load(o.llm, o.slm, {.n_threads = o.threads});
  const auto r = transport::run_load(models, req, lo);
  const double g = static_cast<double>(r.generated ? r.generated : 1);
  nlohmann::json j = {
      {"method", o.method},
      {"concurrency", lo.concurrency},
      {"sessions", lo.sessions},
      {"ok", r.ok},
      {"failed", r.failed},
      {"wall_s", r.wall_s},
      {"sessions_per_s", r.sessions_per_s()},
      {"generated_tokens", r.generated},
      {"generated_tok_per_s", r.generated_per_s()},
      {"verified_tokens", r.verified},
      {"verified_tok_per_s", r.verified_per_s()},
      {"round_trips_per_token", static_cast<double>(r.round_trips) / g},
      {"bytes_up_per_token", static_cast<double>(r.bytes_up) / g},
      {"bytes_down_per_token", static_cast<double>(r.bytes_down) / g},
      {"net_delay_ms", o.net_delay_ms},
  };
  if (!r.first_error.empty()) j["first_error"] = r.first_error;
  std::printf("%s\n", j.dump().c_str());
  if (r.failed) throw Error(std::to_string(r.failed) + " of " + std::to_string(lo.sessions) + " sessions failed");
}

Registrar reg("cloud", [](CLI::App& root) {
  auto* cloud = root.add_subcommand("cloud", "the cloud role over the network (gRPC)");
  cloud->require_subcommand(1);

  auto o = std::make_shared<ServeOpts>();
  auto* sub = cloud->add_subcommand("serve", "serve the LLM and SLM- to many edges until SIGTERM/SIGINT");
  sub->add_option("--llm", o->llm, "large model (Generalist)")->required();
  sub->add_option("--slm", o->slm, "small model (SLM-, the same file as the edges' SLM+)")->required();
  sub->add_option("--listen", o->listen, "HOST:PORT to listen on (port 0: any free port)")->capture_default_str();
  sub->add_option("--port-file", o->port_file, "write the bound port to this file once listening");
  sub->add_option("--max-sessions", o->max_sessions, "concurrent sessions admitted")->capture_default_str();
  sub->add_option("--idle-timeout", o->idle_timeout, "seconds before an idle session is reclaimed")
      ->capture_default_str();
  sub->add_option("--memory-budget-mb", o->budget_mb,
                  "memory for all sessions' KV caches and logits (0 = unlimited)")
      ->capture_default_str();
  sub->add_option("-c,--ctx-size,--ctx", o->n_ctx, "context per session and model (0 = the model's training context)")
      ->capture_default_str();
  sub->add_option("--max-message-bytes", o->max_message_bytes, "largest accepted request")->capture_default_str();
  sub->add_option("--shutdown-grace", o->grace,
                  "seconds in-flight sessions may run after SIGTERM (a drain: health NOT_SERVING at once, new "
                  "sessions refused so edges open them on another replica)")
      ->capture_default_str();
  sub->add_option("--metrics-listen", o->metrics_listen,
                  "HOST:PORT serving /metrics in Prometheus text format (port 0: any free port)");
  sub->add_option("--metrics-port-file", o->metrics_port_file, "write the bound metrics port to this file");
  sub->add_flag("--no-batching", o->no_batching, "give every session its own forward passes");
  sub->add_option("--cache-ram", o->cache_ram_mb,
                  "MiB of prompt KV kept for reuse by later sessions (prefix cache; 0 = off; on top of "
                  "--memory-budget-mb)")
      ->capture_default_str();
  sub->add_option("--cache-scope", o->cache_scope,
                  "who shares the prefix cache: session (the turns of one conversation), user (one edge user's "
                  "conversations) or global (every session: a shared system text is read once, but timing can "
                  "tell a session that another sent the same prefix)")
      ->capture_default_str();
  sub->add_option("--steer-candidates", o->steer_candidates,
                  "steering-vector rule sessions may ask for: any, contrast or plausible (each edge sends its "
                  "rule and gamma in SessionOpen; others are refused)")
      ->capture_default_str();
  sub->add_option("--max-batch-rows", o->max_batch_rows, "token positions per forward pass shared by sessions")
      ->capture_default_str();
  sub->add_option("--tls-cert", o->tls_cert, "PEM certificate chain (TLS)");
  sub->add_option("--tls-key", o->tls_key, "PEM private key (TLS)");
  sub->add_option("--auth-token-file", o->token_file, "require 'authorization: Bearer <first line of file>'");
  sub->add_option("-t,--threads", o->threads, "compute threads shared by all sessions (0 = physical cores)")
      ->capture_default_str();
  sub->callback([o] { serve(*o); });

  auto h = std::make_shared<transport::HealthProbe>();
  auto* hc = cloud->add_subcommand(
      "health", "ask a cloud (or a balancer) grpc.health.v1.Health/Check, as grpc_health_probe does: prints the "
                "status; exit 0 SERVING, 2 cannot connect, 3 the RPC failed, 4 not serving");
  hc->add_option("--cloud,--addr", h->target, "HOST:PORT of the server")->required();
  hc->add_option("--service", h->service, "service name (\"\" = the server; specsteer.v1.Cloud)")
      ->capture_default_str();
  hc->add_option("--tls-ca", h->tls_ca_file, "PEM roots to verify the server (TLS)");
  hc->add_option("--timeout", h->timeout_s, "seconds for connecting and the answer")->capture_default_str();
  hc->callback([h] {
    const auto a = transport::check_health(*h);
    using K = transport::HealthAnswer::Kind;
    if (a.kind != K::Answered) {
      std::fprintf(stderr, "error: %s\n", a.error.c_str());
      throw ExitStatus{a.kind == K::Unreachable ? 2 : 3};
    }
    std::printf("%s\n", a.status.c_str());
    if (a.status != "SERVING") throw ExitStatus{4};
  });

  auto l = std::make_shared<LoadOpts>();
  auto* ld = cloud->add_subcommand("load", "run many concurrent edges against a server, print one JSON line");
  ld->add_option("--cloud", l->cloud, "HOST:PORT of the server")->required();
  ld->add_option("--llm", l->llm, "large model (identity and tokenizer)")->required();
  ld->add_option("--slm", l->slm, "small model (edge SLM+)")->required();
  ld->add_option("--method", l->method, "sd|lightcosteer|costeer|specsteer")->capture_default_str();
  ld->add_option("--input", l->input, "non-private input x")->required();
  ld->add_option("--private-context", l->private_context, "private text only the edges see");
  ld->add_option("--concurrency", l->concurrency, "edges running at once")->capture_default_str();
  ld->add_option("--sessions", l->sessions, "generations in total (default: --concurrency)");
  ld->add_option("--lambda", l->lambda, "Eq. 7 threshold")->capture_default_str();
  ld->add_option("--draft", l->draft, "draft length K")->capture_default_str();
  ld->add_option("--steer-k", l->topk, "steering entries on rejection")->capture_default_str();
  add_deprecated(ld, "--topk", l->topk, "--steer-k");
  ld->add_option("--steer-candidates", l->steer_candidates, "steering-vector ids: contrast|plausible")
      ->capture_default_str();
  ld->add_option("--plausibility", l->plausibility, "gamma of --steer-candidates plausible")->capture_default_str();
  ld->add_option("-n,--n-predict", l->n, "new tokens per generation")->capture_default_str();
  ld->add_option("-s,--seed", l->seed, "seed of generation 0 (generation i uses seed + i)")->capture_default_str();
  ld->add_option("--temp", l->temp, "temperature (0 = greedy)")->capture_default_str();
  ld->add_option("--net-delay-ms", l->net_delay_ms, "added round-trip time per exchange")->capture_default_str();
  ld->add_option("--tls-ca", l->tls_ca, "PEM roots to verify the server (TLS)");
  ld->add_option("--auth-token-file", l->token_file, "bearer token file");
  ld->add_option("-t,--threads", l->threads, "edge compute threads (0 = physical cores)")->capture_default_str();
  ld->callback([l] { load(*l); });
});

}  // namespace
}  // namespace specsteer::cli
#endif  // SPECSTEER_HAVE_GRPC
