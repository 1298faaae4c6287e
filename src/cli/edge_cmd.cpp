// specsteer edge serve: the device side as a local OpenAI-compatible HTTP
// server (src/serve/edge_server.h), with the cloud over gRPC (--cloud) or in
// this process (--llm).
#ifdef SPECSTEER_HAVE_HTTP
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>

#include "cli/command.h"
#include "cli/options.h"
#include "common/error.h"
#include "model/lora.h"
#include "serve/edge_server.h"
#include "steer/generate.h"
#ifdef SPECSTEER_HAVE_GRPC
#include "transport/client.h"
#endif

namespace specsteer::cli {
namespace {

struct EdgeServeOpts {
  std::string slm, llm, cloud, tls_ca, token_file, on_failure, host = "127.0.0.1", port_file, alias;
  std::string api_key, api_key_file;
  bool no_api_key = false;
  std::string method = "specsteer", profile_db, task;
  int port = 8080, threads = 0, retrieve_k = 4, steer_k = 32, n = 128, cloud_retries = 2;
  double lambda = 0.5, beta = 1.0, cloud_timeout_s = 30, net_delay_ms = 0;
  SamplingOptions sampling;
  DraftOptions drafting;
  std::vector<std::string> lora, stop;
  std::string system;
  uint64_t seed = 0;
  bool no_chat = false;
  double cache_ram_mb = 256;
  std::string history_to_cloud = "verified";
};

void log_line(const std::string& line) {
  const std::time_t now = std::time(nullptr);
  char ts[32];
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", std::gmtime(&now));
  std::fprintf(stderr, "%s edge: %s\n", ts, line.c_str());
}

// The first line of an API key file, surrounding whitespace removed.
std::string read_api_key_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error("--api-key-file: cannot open '" + path + "'");
  std::string line;
  std::getline(f, line);
  const auto b = line.find_first_not_of(" \t\r");
  if (b == std::string::npos) throw Error("--api-key-file: '" + path + "' holds no key on its first line");
  return line.substr(b, line.find_last_not_of(" \t\r") - b + 1);
}

void serve(const EdgeServeOpts& o) {
  sigset_t sigs;  // taken by sigwait below; blocked before any thread exists
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  serve::EdgeServerOptions so;
  so.host = o.host;
  if (!o.api_key.empty() && !o.api_key_file.empty()) throw Error("give --api-key or --api-key-file, not both");
  so.api_key = o.api_key_file.empty() ? o.api_key : read_api_key_file(o.api_key_file);
  if (o.no_api_key && !so.api_key.empty()) throw Error("--no-api-key contradicts --api-key/--api-key-file");
  const bool loopback = o.host == "localhost" || o.host == "::1" || o.host.rfind("127.", 0) == 0;
  if (!loopback) {
    // Anyone who reaches the port could generate from the private profile.
    if (!o.profile_db.empty() && so.api_key.empty() && !o.no_api_key)
      throw Error("edge serve: --host " + o.host + " is reachable from the network and --profile-db holds private "
                  "profiles: set --api-key (or --api-key-file), or pass --no-api-key to serve them to anyone anyway");
    log_line("warning: listening on " + o.host + ", not loopback: other machines can reach this server" +
             std::string(so.api_key.empty() ? " and it requires no API key (--api-key)" : "") +
             (o.no_api_key && !o.profile_db.empty() ? "; --no-api-key: anyone can generate from the profile store" : ""));
  }
  so.port = o.port;
  so.chat = !o.no_chat;
  so.profile_db = o.profile_db;
  so.task = o.task;
  so.retrieve_k = o.retrieve_k;
  so.log = log_line;
  so.cloud_name = o.cloud.empty() ? "in-process" : o.cloud;
  auto& s = so.defaults;
  s.method = steer::parse_method(o.method);
  s.lambda = o.lambda;
  s.beta = o.beta;
  o.drafting.apply(s);
  s.top_k = o.steer_k;
  s.max_new = o.n;
  s.seed = o.seed;
  o.sampling.apply(s);
  steer::validate(s);
  so.stop = o.stop;
  for (const auto& st : o.stop)
    if (st.empty()) throw Error("-r/--reverse-prompt: a stop string is empty");
  so.system = o.system;
  if (o.retrieve_k < 0) throw Error("--retrieve-k must be >= 0");
  if (!o.profile_db.empty() && !std::filesystem::exists(o.profile_db))
    throw Error("--profile-db: '" + o.profile_db + "' does not exist");
  if (o.on_failure.empty()) so.on_cloud_failure = steer::CloudFailure::FallbackAfterOpen;
  else if (o.on_failure == "fallback") so.on_cloud_failure = steer::CloudFailure::Fallback;
  else so.on_cloud_failure = steer::CloudFailure::Fail;
  if (o.cloud_retries < 0) throw Error("--cloud-retries must be >= 0");
  so.cloud_retries = o.cloud_retries;
  so.cache_ram_bytes = cache_ram_bytes(o.cache_ram_mb);
  if (o.history_to_cloud == "verified")
    so.history_to_cloud = serve::EdgeServerOptions::HistoryToCloud::Verified;
  else if (o.history_to_cloud == "all")
    so.history_to_cloud = serve::EdgeServerOptions::HistoryToCloud::All;
  else
    throw Error("--history-to-cloud '" + o.history_to_cloud + "': use verified or all");
  if (!o.cloud.empty() && !o.llm.empty()) throw Error("give --cloud (a remote cloud) or --llm (the cloud in this process), not both");
  if (o.cloud.empty() && o.llm.empty() && steer::uses_cloud(s.method))
    throw Error("--method " + o.method + " needs a cloud: --cloud HOST:PORT (or --llm for one in this process)");
#ifdef SPECSTEER_HAVE_GRPC
  if (!o.cloud.empty()) {
    transport::ClientOptions co;
    co.target = o.cloud;
    co.tls_ca_file = o.tls_ca;
    if (!o.token_file.empty()) co.auth_token = transport::read_token_file(o.token_file);
    co.exchange_timeout_s = o.cloud_timeout_s;
    co.net_delay_ms = o.net_delay_ms;
    transport::GrpcTransport probe(co);  // validates the options now, not at the first request
    so.connect = [co] { return std::make_unique<transport::GrpcTransport>(co); };
  }
#else
  if (!o.cloud.empty()) throw Error("--cloud: this build has no network transport (gRPC was not found)");
#endif
  // With --cloud the device holds only its small model.
  const auto models = o.llm.empty() ? steer::Models::load_edge(o.slm, {.n_threads = o.threads})
                                    : steer::Models::load(o.llm, o.slm, {.n_threads = o.threads});
  so.lora = load_lora_args(o.lora, *models.slm);
  so.model_id = o.alias.empty() ? std::filesystem::path(o.slm).stem().string() : o.alias;
  serve::EdgeServer server(models, so);
  if (!o.port_file.empty()) write_port_file(o.port_file, server.port());
  int sig = 0;
  sigwait(&sigs, &sig);
  log_line(std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT"));
  server.stop();
}

Registrar reg("edge", [](CLI::App& root) {
  auto* edge = root.add_subcommand("edge", "the device side as a service");
  edge->require_subcommand(1);
  auto o = std::make_shared<EdgeServeOpts>();
  auto* sub = edge->add_subcommand(
      "serve", "OpenAI-compatible HTTP server on this device (POST /v1/chat/completions, /v1/completions; "
               "GET /v1/models, /health) until SIGTERM/SIGINT");
  sub->add_option("--slm", o->slm, "small model (SLM+; the cloud's SLM- is the same file)")->required();
  sub->add_option("--cloud", o->cloud,
                  "HOST:PORT of a `specsteer cloud serve` or a balancer (the device needs only --slm); A,B,C or "
                  "dns:///NAME:PORT: several replicas, balanced by gRPC (round_robin)");
  sub->add_option("--cloud-retries", o->cloud_retries,
                  "sessions reopened (resuming from the decided tokens) after the cloud fails mid-generation, "
                  "before --on-cloud-failure applies")
      ->capture_default_str();
  sub->add_option("--llm", o->llm, "large model: run the cloud in this process instead of --cloud");
  sub->add_option("--cache-ram", o->cache_ram_mb,
                  "MiB of each user's prompt KV kept so a conversation's next turn prefills only its new message "
                  "(prefix cache, per user; 0 = off)")
      ->capture_default_str();
  sub->add_option("--history-to-cloud", o->history_to_cloud,
                  "earlier assistant turns the cloud never saw (replies written on the device alone, edited ones): "
                  "verified = send them empty (SLM+ still reads them), all = send them as they are")
      ->capture_default_str();
  sub->add_option("--host", o->host, "address to listen on (not loopback: anyone who can reach it may use it)")
      ->capture_default_str();
  sub->add_option("--port", o->port, "port (0: any free port)")->capture_default_str()->check(CLI::Range(0, 65535));
  sub->add_option("--port-file", o->port_file, "write the bound port to this file once listening");
  sub->add_option("--api-key", o->api_key,
                  "require 'Authorization: Bearer KEY' on every route but /health (OpenAI clients send their api_key so)");
  sub->add_option("--api-key-file", o->api_key_file, "read the API key from the first line of this file");
  sub->add_flag("--no-api-key", o->no_api_key,
                "serve a profile store on a non-loopback --host without an API key (refused otherwise)");
  sub->add_option("--alias", o->alias, "model id in /v1/models and responses (default: the SLM's file name)");
  sub->add_option("--method", o->method, "default method: llm|slm|slm+|sd|lightcosteer|costeer|specsteer")
      ->capture_default_str();
  sub->add_option("--profile-db", o->profile_db, "profile store: a request's `user` picks the profile user");
  sub->add_option("--task", o->task, "default task for profile prompts: abstract|review|writing|lamp4|lamp5|lamp7");
  sub->add_option("--retrieve-k", o->retrieve_k, "profile entries to retrieve")->capture_default_str();
  sub->add_option("--lambda", o->lambda, "Eq. 7 verification threshold")->capture_default_str();
  sub->add_option("--beta", o->beta, "Eq. 8 steering strength")->capture_default_str();
  o->drafting.add_to(sub);  // defaults of the requests' K (specsteer.K), adaptive length and pipelining
  sub->add_option("--steer-k", o->steer_k, "steering-vector entries sent on rejection")->capture_default_str();
  sub->add_option("-n,--n-predict", o->n, "default maximum new tokens (max_tokens overrides)")->capture_default_str();
  sub->add_option("-s,--seed", o->seed, "default seed")->capture_default_str();
  o->sampling.add_to(sub);  // defaults of the requests' temperature, top_p, top_k, min_p, repeat_penalty, ...
  sub->add_option("--system", o->system, "default system text of chat requests without a system message");
  sub->add_option("-r,--reverse-prompt", o->stop, "default stop string of requests without `stop` (repeatable)");
  sub->add_option("--lora", o->lora,
                  "LoRA adapter of the SLM+ for every request, FILE or FILE:SCALE (repeatable); a profile user's "
                  "own adapters (`profile lora`) follow it; never sent to the cloud");
  sub->add_flag("--no-chat", o->no_chat, "no chat template on /v1/chat/completions");
  sub->add_option("-t,--threads", o->threads, "threads (0 = physical cores)")->capture_default_str();
  sub->add_option("--tls-ca", o->tls_ca, "PEM roots to verify the cloud's certificate (TLS)");
  sub->add_option("--auth-token-file", o->token_file, "file whose first line is the cloud's bearer token");
  sub->add_option("--cloud-timeout", o->cloud_timeout_s, "seconds to wait for each cloud reply")
      ->capture_default_str();
  sub->add_option("--net-delay-ms", o->net_delay_ms, "added round-trip time per edge-cloud exchange (--cloud)")
      ->capture_default_str();
  sub->add_option("--on-cloud-failure", o->on_failure,
                  "fallback: whenever the cloud fails, also at the start, answer from the device alone; fail: "
                  "answer 502. Default: a cloud that does not open the session is a 502, one lost "
                  "mid-generation is replaced by the device (\"specsteer\": {\"fallback\": true})")
      ->check(CLI::IsMember({"fallback", "fail"}));
  sub->callback([o] { serve(*o); });
});

}  // namespace
}  // namespace specsteer::cli
#endif  // SPECSTEER_HAVE_HTTP
