// specsteer generate: one personalized generation with any method (edge and
// cloud in this process, talking through the in-process transport, or with
// --cloud a remote `specsteer cloud serve` over gRPC).
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "cli/command.h"
#include "cli/options.h"
#include "eval/schedule_json.h"
#include "common/error.h"
#include "personalize/personalize.h"
#include "profile/profile.h"
#include "steer/generate.h"
#ifdef SPECSTEER_HAVE_GRPC
#include "transport/client.h"
#endif

namespace specsteer::cli {
namespace {

struct GenOpts {
  std::string slm, llm, method = "specsteer", input, input_file, private_context, private_file;
  bool input_given = false;
  std::string profile_db, user, task;
  int retrieve_k = 4;
  double lambda = 0.5, beta = 1.0;
  SamplingOptions sampling;
  std::vector<std::string> stop;
  std::string system;
  int topk = 32, n = 128, threads = 0;
  DraftOptions drafting;
  uint64_t seed = 0;
  bool bonus = false, no_chat = false, json = false;
  int costeer_T = 20;
  std::string cloud, tls_ca, token_file, on_failure;  // on_failure empty: the default policy
  std::string steer_candidates{steer::candidates_name(steer::Settings{}.steer_candidates)};
  double plausibility = steer::Settings{}.plausibility;
  double net_delay_ms = 0;
  std::vector<std::string> lora;  // the edge's SLM+ adapters, FILE[:SCALE]
  double cloud_timeout_s = 30;
  bool cloud_timeout_given = false;
  int cloud_retries = 2;
  bool cloud_retries_given = false;
  bool byte_level = false;
};

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("--private-context-file: cannot open '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void run_generate(GenOpts o) {
  o.input = resolve_prompt(o.input, o.input_file, o.input_given, "-p/--input");
  if (o.input.empty()) throw Error("--input: the task input x is empty");
  steer::GenerateRequest req;
  auto& s = req.settings;
  s.method = steer::parse_method(o.method);
  s.lambda = o.lambda;
  s.beta = o.beta;
  o.drafting.apply(s);
  s.top_k = o.topk;
  s.max_new = o.n;
  s.seed = o.seed;
  o.sampling.apply(s);
  s.bonus = o.bonus;
  s.costeer.iterations = o.costeer_T;
  s.steer_candidates = steer::parse_candidates(o.steer_candidates);
  s.plausibility = o.plausibility;
  steer::validate(s);
  req.chat = !o.no_chat;
  req.stop = o.stop;
  req.system = o.system;

  const int n_private = !o.private_context.empty() + !o.private_file.empty() + !o.profile_db.empty();
  if (n_private > 1) throw Error("give only one of --private-context, --private-context-file, --profile-db");
  std::optional<profile::Store> store;
  std::optional<profile::Task> task;
  if (!o.profile_db.empty()) {
    if (o.user.empty() || o.task.empty()) throw Error("--profile-db needs --user and --task");
    store = profile::Store::open(o.profile_db, profile::Store::Mode::ReadOnly);
    // A typo in --user would silently give an unpersonalized generation.
    if (!store->has_user(o.user))
      throw Error("--user '" + o.user + "' is not in the profile store '" + o.profile_db +
                  "' (import its records with `specsteer profile import`)");
    task = profile::parse_task(o.task);  // refused before the models load
  } else {
    const std::string ctx = o.private_file.empty() ? o.private_context : read_file(o.private_file);
    req.x = o.input;
    // Raw private context: the personalized prompt is the context, a blank line, then x.
    req.personalized = ctx.empty() ? o.input : ctx + "\n\n" + o.input;
  }

  if (o.on_failure.empty())
    req.on_cloud_failure = steer::CloudFailure::FallbackAfterOpen;
  else if (o.on_failure == "fallback")
    req.on_cloud_failure = steer::CloudFailure::Fallback;
  else if (o.on_failure == "fail")
    req.on_cloud_failure = steer::CloudFailure::Fail;
  else
    throw Error("--on-cloud-failure must be 'fallback' or 'fail', got '" + o.on_failure + "'");
  if (!o.on_failure.empty() && o.cloud.empty())
    throw Error("--on-cloud-failure needs --cloud (an in-process cloud cannot be lost)");
  if (o.cloud_retries < 0) throw Error("--cloud-retries must be >= 0, got " + std::to_string(o.cloud_retries));
  if (o.cloud_retries_given && o.cloud.empty())
    throw Error("--cloud-retries needs --cloud (an in-process cloud cannot be lost)");
  req.cloud_retries = o.cloud_retries;
#ifdef SPECSTEER_HAVE_GRPC
  std::unique_ptr<transport::GrpcTransport> link;
  if (!o.cloud.empty()) {
    transport::ClientOptions co;
    co.target = o.cloud;
    co.tls_ca_file = o.tls_ca;
    if (!o.token_file.empty()) co.auth_token = transport::read_token_file(o.token_file);
    co.net_delay_ms = o.net_delay_ms;
    co.exchange_timeout_s = o.cloud_timeout_s;
    link = std::make_unique<transport::GrpcTransport>(co);
    // Once, at start: without TLS everything, the token included, is readable on the way.
    if (o.tls_ca.empty() && !transport::is_loopback_target(o.cloud))
      std::fprintf(stderr, "warning: --cloud %s without --tls-ca: %s\n", o.cloud.c_str(),
                   co.auth_token.empty()
                       ? "x and the drafted tokens cross the network unencrypted"
                       : "the bearer token (and x and the drafted tokens) cross the network in clear");
    req.cloud = link.get();
  }
#else
  if (!o.cloud.empty()) throw Error("--cloud: this build has no network transport (gRPC was not found)");
#endif
  if (o.cloud.empty() && (!o.tls_ca.empty() || !o.token_file.empty() || o.net_delay_ms != 0 || o.cloud_timeout_given))
    throw Error("--tls-ca, --auth-token-file, --net-delay-ms and --cloud-timeout need --cloud");

  // With --cloud the edge needs only its own model: the cloud tokenizes x
  // for its models. --llm is loaded when given (in process: the cloud's
  // LLM; with --cloud: the LLM the edge insists the cloud runs).
  const bool needs_llm = o.cloud.empty() && s.method != steer::Method::Slm && s.method != steer::Method::SlmPlus;
  if (needs_llm && o.llm.empty())
    throw Error("--llm is required for method '" + o.method +
                "' without --cloud (with --cloud the edge needs only --slm)");
  auto models = o.llm.empty() ? steer::Models::load_edge(o.slm, {.n_threads = o.threads})
                              : steer::Models::load(o.llm, o.slm, {.n_threads = o.threads});
  if (o.byte_level) {
    if (!o.cloud.empty() || o.llm.empty())
      throw Error("--byte-level forces the cross-tokenizer path in the in-process cloud (give --llm, not --cloud); "
                  "a remote cloud pairs through bytes when its models' vocabularies differ");
    models.pair_through_bytes();
  }
  req.edge_lora = load_lora_args(o.lora, *models.slm);
  // The profile's entries and, unless --lora names adapters, the user's own (`profile lora`).
  if (store)
    personalize::apply(*store, o.user, *task, o.retrieve_k, o.input, *models.slm, req, /*user_adapters=*/o.lora.empty());
  // Plain output streams: the text is printed as it is decided.
  if (!o.json)
    req.on_token = [](int32_t, std::string_view piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    };
  const auto r = steer::generate(models, req);
  // With `fail` the text so far is still printed, then the error.
  const bool failed = r.stop_reason == "cloud_error";
  const bool fell_back = r.cloud_failed_at && !failed;
  const std::string cloud_error =
      r.cloud_failed_at_open
          ? "the cloud did not open the session: " + r.cloud_error +
                (failed ? " (--on-cloud-failure fallback generates on the device alone)" : "")
          : r.cloud_error;
  if (r.counters.resumed > 0 && !o.json)
    std::fprintf(stderr, "note: the cloud session was lost and resumed %llu time(s) (%llu decided tokens re-prefilled)\n",
                 static_cast<unsigned long long>(r.counters.resumed),
                 static_cast<unsigned long long>(r.counters.resume_tokens));
  if (fell_back && !o.json)
    std::fprintf(stderr, "warning: the cloud failed at token %llu (%s); the edge finished alone (exit status %d)\n",
                 static_cast<unsigned long long>(*r.cloud_failed_at), cloud_error.c_str(), kExitFellBack);
  if (!o.json) {
    if (!(failed && r.cloud_failed_at_open)) {  // nothing was generated when the session never opened
      std::printf("\n");
      std::fflush(stdout);
    }
    if (failed) throw Error(cloud_error);
    if (fell_back) throw ExitStatus{kExitFellBack};
    return;
  }
  const auto& c = r.counters;
  nlohmann::json j = {
      {"text", r.text},
      {"tokens", r.tokens},
      {"method", std::string(steer::method_name(s.method))},
      // llm+ and sd send something derived from the profile to the cloud.
      {"private", steer::keeps_profile_on_device(s.method)},
      {"stop_reason", r.stop_reason},
      {"n_generated", c.n_generated},
      {"n_drafted", c.n_drafted},
      {"n_accepted", c.n_accepted},
      {"acceptance_rate", c.acceptance_rate()},
      {"rejections", c.rejections},
      {"bonus_tokens", c.bonus_tokens},
      {"round_trips", c.round_trips},
      {"pipeline", {{"blocks_sent_early", c.blocks_sent_early}, {"blocks_dropped", c.blocks_dropped},
                    {"t_ahead_s", c.t_ahead_s}}},
      {"bytes_up", c.bytes_up},
      {"bytes_down", c.bytes_down},
      {"resumed", c.resumed},
      {"resume_tokens", c.resume_tokens},
      {"cached_tokens", c.edge_cached_tokens},
      {"cloud_cached_tokens", c.cloud_cached_tokens},
      {"t_resume_s", c.t_resume_s},
      {"t_prefill_s", c.t_prefill_s},
      {"t_draft_s", c.t_draft_s},
      {"t_cloud_s", c.t_cloud_s},
      {"t_recover_s", c.t_recover_s},
      {"t_total_s", c.t_total_s},
      {"gen_tok_per_s", c.gen_tok_per_s()},
      {"positions_llm", c.positions_llm},
      {"positions_slm_minus", c.positions_slm_minus},
      {"positions_slm_plus", c.positions_slm_plus},
      {"settings",
       {{"lambda", s.lambda},
        {"beta", s.beta},
        {"draft", s.draft},
        {"draft_min", s.draft_min},
        {"draft_p_min", s.draft_p_min},
        {"pipeline", s.pipeline},
        {"topk", s.top_k},
        {"steer_candidates", std::string(steer::candidates_name(s.steer_candidates))},
        {"plausibility", s.plausibility},
        {"n", s.max_new},
        {"seed", s.seed},
        {"temp", s.sampler.temperature},
        {"top_p", s.sampler.top_p},
        {"top_k", s.sampler.top_k},
        {"min_p", s.sampler.min_p},
        {"repeat_penalty", s.repeat.penalty},
        {"repeat_last_n", s.repeat.last_n},
        {"bonus", s.bonus},
        {"chat", req.chat},
        {"costeer_T", s.costeer.iterations},
        {"llm", o.llm.empty() ? nlohmann::json(nullptr) : nlohmann::json(o.llm)},
        {"slm", o.slm}}},
      {"cloud", o.cloud.empty() ? "in-process" : o.cloud},
      {"breakdown", eval::breakdown_json(c)},
      {"trace", eval::schedule_to_json(r.schedule)},
  };
  if (!steer::keeps_profile_on_device(s.method)) j["privacy_note"] = std::string(steer::privacy_note(s.method));
  // "fallback": the edge finished alone after losing the cloud (exit status 3).
  j["fallback"] = fell_back;
  if (r.cloud_failed_at) {
    j["cloud_failed_at_token"] = *r.cloud_failed_at;
    j["cloud_failed_at_open"] = r.cloud_failed_at_open;
    j["cloud_error"] = r.cloud_error;
  }
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
  if (failed) throw Error(cloud_error);
  if (fell_back) throw ExitStatus{kExitFellBack};
}

Registrar reg("generate", [](CLI::App& root) {
  auto o = std::make_shared<GenOpts>();
  auto* sub = root.add_subcommand("generate", "personalized generation: SLM+ on the edge, LLM and SLM- in the cloud");
  sub->add_option("--slm", o->slm, "small model (edge SLM+; the cloud's SLM- is the same file)")->required();
  sub->add_option("--llm", o->llm,
                  "large model (Generalist): needed in process; with --cloud optional (the cloud must run it)");
  sub->add_option("--method", o->method, "llm|slm|slm+|llm+|sd|lightcosteer|costeer|specsteer (llm+ sends the profile to the Generalist)")->capture_default_str();
  sub->add_option("-p,--prompt,--input", o->input, "the non-private task input x (the cloud sees it); - = stdin");
  sub->add_option("-f,--file", o->input_file, "file holding the task input x");
  sub->add_option("--private-context", o->private_context, "private text only the edge sees");
  sub->add_option("--private-context-file", o->private_file, "file with private text only the edge sees");
  sub->add_option("--profile-db", o->profile_db, "profile store: retrieve the private context from it");
  sub->add_option("--user", o->user, "profile user id (with --profile-db)");
  sub->add_option("--task", o->task, "task: abstract|review|writing|lamp4|lamp5|lamp7 (with --profile-db)");
  sub->add_option("--retrieve-k", o->retrieve_k, "profile entries to retrieve")->capture_default_str();
  sub->add_option("--lambda", o->lambda, "Eq. 7 verification threshold")->capture_default_str();
  sub->add_option("--beta", o->beta, "Eq. 8 steering strength")->capture_default_str();
  o->drafting.add_to(sub);
  sub->add_option("--steer-k", o->topk, "steering-vector entries sent on rejection")->capture_default_str();
  add_deprecated(sub, "--topk", o->topk, "--steer-k (--top-k is the sampling filter)");
  sub->add_option("--steer-candidates", o->steer_candidates,
                  "steering-vector ids: contrast (paper: top-k of h_LLM - beta*h_SLM-) or plausible (ids with "
                  "p_LLM >= gamma * max p_LLM, at most k, ranked the same way)")
      ->capture_default_str();
  sub->add_option("--plausibility", o->plausibility, "gamma of --steer-candidates plausible, in [0, 1]")
      ->capture_default_str();
  sub->add_option("-n,--n-predict", o->n, "maximum new tokens")->capture_default_str();
  sub->add_option("-s,--seed", o->seed, "seed for every random draw")->capture_default_str();
  o->sampling.add_to(sub);
  sub->add_option("--system", o->system, "system text of the chat (the cloud sees it, like x)");
  sub->add_option("-r,--reverse-prompt", o->stop, "stop string: the text ends before it (repeatable)");
  sub->add_option("--costeer-iters", o->costeer_T, "CoSteer FTRL iterations T")->capture_default_str();
  sub->add_option("--lora", o->lora,
                  "LoRA adapter of the edge's SLM+ (llama.cpp GGUF), FILE or FILE:SCALE; repeatable; never sent to the "
                  "cloud; replaces the adapters `profile lora` gave the --user");
  sub->add_flag("--bonus", o->bonus, "emit a steered bonus token when a whole block is accepted");
  sub->add_flag("--no-chat", o->no_chat, "raw prompts, no chat template");
  sub->add_flag("--byte-level", o->byte_level,
                "pair the models through bytes even when they share a vocabulary (the cross-tokenizer path, "
                "for comparison with the token path; in-process cloud)");
  sub->add_option("-t,--threads", o->threads, "threads (0 = physical cores)")->capture_default_str();
  sub->add_flag("--json", o->json, "print one JSON object with text, tokens and counters");
  sub->add_option("--cloud", o->cloud,
                  "HOST:PORT of a `specsteer cloud serve` or of a balancer in front of replicas; A,B,C: several "
                  "replicas balanced by gRPC (round_robin); dns:///NAME:PORT balances over every address NAME "
                  "resolves to (default: cloud in this process)");
  sub->add_option("--tls-ca", o->tls_ca, "PEM roots to verify the cloud's certificate (TLS)");
  sub->add_option("--auth-token-file", o->token_file, "file whose first line is the cloud's bearer token");
  sub->add_option("--on-cloud-failure", o->on_failure,
                  "fallback: whenever the cloud fails, also at the start, finish on the device alone (exit status 3); "
                  "fail: stop with an error and the text so far. Default: a cloud that cannot be reached or refuses "
                  "the session (models, version) is an error, one lost mid-generation is replaced by the device "
                  "(exit status 3, JSON \"fallback\": true)")
      ->check(CLI::IsMember({"fallback", "fail"}));
  sub->add_option("--net-delay-ms", o->net_delay_ms, "added round-trip time per edge-cloud exchange (--cloud)")
      ->capture_default_str();
  auto* timeout = sub->add_option("--cloud-timeout", o->cloud_timeout_s,
                                  "seconds to wait for each cloud reply (SessionOpen's prefill included); "
                                  "expiry is a cloud failure (--on-cloud-failure)")
                      ->capture_default_str();
  auto* retries = sub->add_option("--cloud-retries", o->cloud_retries,
                                  "when the cloud fails mid-generation (connection lost, UNAVAILABLE, deadline, "
                                  "replica drained), open up to N new sessions that resume from the tokens decided "
                                  "so far (JSON \"resumed\"); then --on-cloud-failure applies")
                      ->capture_default_str();
  sub->callback([o, timeout, retries, sub] {
    o->cloud_timeout_given = timeout->count() > 0;
    o->cloud_retries_given = retries->count() > 0;
    o->input_given = sub->get_option("--input")->count() > 0;
    run_generate(*o);
  });
});

}  // namespace
}  // namespace specsteer::cli
