// The network transport end to end: a real `specsteer cloud serve` process
// on a free loopback port, driven by real edges (the CLI, or GrpcTransport
// in threads) and by hand-made hostile streams.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "model/model.h"
#include "steer/cloud.h"
#include "steer/generate.h"
#include "steer/logit_source.h"
#include "transport/client.h"
#include "common/secret.h"
#include "transport/convert.h"
#include "transport/health.h"
#include "transport/server.h"
#include "transport/specsteer.grpc.pb.h"

using namespace specsteer;
using namespace specsteer::steer;
namespace fs = std::filesystem;
using json = nlohmann::json;

extern char** environ;

namespace {

std::string fixture(const std::string& name) {
  return std::string(SPECSTEER_FIXTURES) + "/golden/" + name + "/" + name + ".gguf";
}
const std::string kLlm = fixture("tiny-qwen3-f32");
const std::string kSlm = fixture("tiny-qwen3-q8_0");
bool have_fixtures() { return fs::exists(kLlm) && fs::exists(kSlm); }
#define NEED_FIXTURES() \
  if (!have_fixtures()) GTEST_SKIP() << "no shared fixtures"

const Models& models() {
  static Models m = Models::load(kLlm, kSlm, {.n_threads = 1});
  return m;
}

const std::string kInput = "Write a short review of the film you saw this weekend.";
const std::string kPrivate = "Private notes: I loved the soundtrack and I always mention the director.";

GenerateRequest request(Method m, int n, uint64_t seed = 7, const std::string& x = kInput) {
  GenerateRequest r;
  r.x = x;
  r.personalized = kPrivate + "\n\n" + x;
  r.settings.method = m;
  r.settings.max_new = n;
  r.settings.seed = seed;
  return r;
}

fs::path temp_dir() {
  static fs::path d = [] {
    fs::path p = fs::temp_directory_path() / ("specsteer-transport-" + std::to_string(getpid()));
    fs::create_directories(p);
    return p;
  }();
  return d;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A child process with stdout/stderr in files.
struct Proc {
  pid_t pid = -1;
  fs::path out, err;
  int rc = -1;

  static Proc spawn(const std::vector<std::string>& args, const std::string& tag) {
    static int counter = 0;
    Proc p;
    p.out = temp_dir() / (tag + std::to_string(counter) + ".out");
    p.err = temp_dir() / (tag + std::to_string(counter++) + ".err");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, p.out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, p.err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    if (posix_spawn(&p.pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) p.pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    return p;
  }
  int wait() {
    if (pid > 0) {
      int status = 0;
      waitpid(pid, &status, 0);
      rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      pid = -1;
    }
    return rc;
  }
  std::string stdout_text() const { return slurp(out); }
  std::string stderr_text() const { return slurp(err); }
};

Proc run_cli(std::vector<std::string> args, const std::string& tag = "cli") {
  args.insert(args.begin(), SPECSTEER_CLI);
  Proc p = Proc::spawn(args, tag);
  p.wait();
  return p;
}

// `specsteer cloud serve` on 127.0.0.1:<free port>.
class ServerProc {
 public:
  explicit ServerProc(std::vector<std::string> extra = {}, const std::string& llm = kLlm) {
    static int counter = 0;
    port_file_ = temp_dir() / ("port" + std::to_string(counter++));
    fs::remove(port_file_);
    std::vector<std::string> args = {SPECSTEER_CLI, "cloud", "serve", "--llm", llm, "--slm", kSlm,
                                     "--port-file", port_file_.string(), "-t", "1"};
    if (std::find(extra.begin(), extra.end(), "--listen") == extra.end())
      args.insert(args.end(), {"--listen", "127.0.0.1:0"});
    if (std::find(extra.begin(), extra.end(), "--ctx") == extra.end()) args.insert(args.end(), {"--ctx", "256"});
    args.insert(args.end(), extra.begin(), extra.end());
    proc_ = Proc::spawn(args, "server");
    for (int i = 0; i < 600 && !fs::exists(port_file_); ++i) {
      if (waitpid(proc_.pid, nullptr, WNOHANG) != 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (fs::exists(port_file_)) port_ = std::stoi(slurp(port_file_));
  }
  ~ServerProc() {
    if (proc_.pid > 0) {
      kill(proc_.pid, SIGKILL);
      proc_.wait();
    }
  }
  bool ok() const { return port_ > 0; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return proc_.stderr_text(); }
  void signal(int sig) { kill(proc_.pid, sig); }
  int wait() { return proc_.wait(); }
  // Waits until the log holds `needle` `count` times.
  bool wait_log(const std::string& needle, int count = 1, double timeout_s = 20) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (std::chrono::steady_clock::now() < end) {
      const std::string l = log();
      int n = 0;
      for (size_t at = l.find(needle); at != std::string::npos; at = l.find(needle, at + 1)) ++n;
      if (n >= count) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

 private:
  fs::path port_file_;
  Proc proc_;
  int port_ = 0;
};

#define START_SERVER(var, ...)                        \
  ServerProc var{std::vector<std::string>{__VA_ARGS__}}; \
  ASSERT_TRUE(var.ok()) << var.log()

std::vector<std::string> gen_args(const std::string& method, int n, const std::vector<std::string>& extra) {
  std::vector<std::string> a = {"generate", "--llm", kLlm, "--slm", kSlm, "--method", method,
                                "--input", kInput, "--private-context", kPrivate, "-n", std::to_string(n),
                                "--seed", "7", "-t", "1", "--json"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

json parse_json(const Proc& p) {
  const std::string out = p.stdout_text();
  try {
    return json::parse(out);
  } catch (const std::exception&) {
    ADD_FAILURE() << "not JSON: " << out << "\nstderr: " << p.stderr_text();
    return json::object();
  }
}

std::vector<int32_t> tokens_of(const json& j) {
  return j.contains("tokens") ? j["tokens"].get<std::vector<int32_t>>() : std::vector<int32_t>{};
}

// SLM+ alone, greedy, from the personalized prompt + `prefix` (what the
// fallback must produce after the cloud died).
std::vector<int32_t> local_continuation(const GenerateRequest& req, const std::vector<int32_t>& prefix, int n) {
  const auto p = prepare_prompts(models(), req);
  auto src = make_sequence_source(models().slm);
  std::vector<int32_t> all = p.personalized;
  all.insert(all.end(), prefix.begin(), prefix.end());
  auto rows = src->eval(all);
  const size_t V = static_cast<size_t>(src->n_vocab());
  std::vector<int32_t> out = prefix;
  const Tokenizer& st = *models().slm_tok;
  const Tokenizer& lt = *models().llm_tok;
  while (out.size() < static_cast<size_t>(n)) {
    auto last = rows.subspan(rows.size() - V, V);
    const int32_t t = static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
    if ((t < st.n_vocab() && st.is_eog(t)) || (t < lt.n_vocab() && lt.is_eog(t))) break;
    out.push_back(t);
    const int32_t one[1] = {t};
    rows = src->eval(one);
  }
  return out;
}

// --- hand-made streams for the hostile cases --------------------------------

transport::ClientOptions client(const std::string& addr, double delay_ms = 0) {
  transport::ClientOptions o;
  o.target = addr;
  o.net_delay_ms = delay_ms;
  return o;
}

// A generation over its own link with an added round-trip time, in a thread
// (a session kept in flight while a test acts on the server).
std::thread edge_thread(const std::string& addr, double delay_ms, const GenerateRequest& req, GenerationResult& out,
                        CloudFailure policy = CloudFailure::Fail) {
  return std::thread([addr, delay_ms, req, &out, policy] {
    transport::GrpcTransport link(client(addr, delay_ms));
    auto q = req;
    q.cloud = &link;
    q.on_cloud_failure = policy;
    out = generate(models(), q);
  });
}

std::unique_ptr<v1::Cloud::Stub> stub_for(const std::string& addr) {
  return v1::Cloud::NewStub(grpc::CreateChannel(addr, grpc::InsecureChannelCredentials()));
}

v1::EdgeMessage open_message(const GenerateRequest& req) {
  const auto p = prepare_prompts(models(), req);
  SessionOpen o;
  o.llm = identity_of(*models().llm);
  o.slm = identity_of(*models().slm);
  o.x_llm = p.x_llm;
  o.x_slm = p.x_slm;
  o.settings = req.settings;
  return transport::to_proto_uplink(o);
}

struct RawStream {
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReaderWriter<v1::EdgeMessage, v1::CloudMessage>> s;
  explicit RawStream(v1::Cloud::Stub& stub) { s = stub.Generate(&ctx); }
  // Sends one message; returns the reply, or nullopt with the final status.
  std::optional<v1::CloudMessage> send(const v1::EdgeMessage& m, grpc::Status* status) {
    v1::CloudMessage reply;
    if (s->Write(m) && s->Read(&reply)) return reply;
    *status = s->Finish();
    return std::nullopt;
  }
};

}  // namespace

TEST(Transport, NetworkedOutputEqualsInProcess) {
  NEED_FIXTURES();
  START_SERVER(server);
  for (const char* method : {"specsteer", "sd", "lightcosteer", "costeer"}) {
    SCOPED_TRACE(method);
    const int n = std::string(method) == "costeer" ? 4 : 16;  // costeer moves 1.2 MB per token
    const auto ref = generate(models(), request(parse_method(method), n));
    Proc p = run_cli(gen_args(method, n, {"--cloud", server.address()}));
    ASSERT_EQ(p.rc, 0) << p.stderr_text();
    const json j = parse_json(p);
    EXPECT_EQ(tokens_of(j), ref.tokens);
    EXPECT_EQ(j["text"], ref.text);
    EXPECT_EQ(j["round_trips"], ref.counters.round_trips);
    EXPECT_EQ(j["cloud"], server.address());
    EXPECT_FALSE(j.contains("cloud_failed_at_token"));
    // Wire bytes are protobuf + framing, so they differ from the codec's,
    // but are of the same order.
    EXPECT_GT(j["bytes_up"].get<uint64_t>(), ref.counters.bytes_up / 2);
    EXPECT_GT(j["bytes_down"].get<uint64_t>(), ref.counters.bytes_down / 2);
  }
  EXPECT_EQ(server.log().find(kInput), std::string::npos) << "prompt text in the server log";
  EXPECT_EQ(server.log().find("soundtrack"), std::string::npos);
}

// Pipelined drafting over a real link with a 30 ms round trip: the edge
// drafts the next block while the cloud verifies, so blocks go up early, and
// the tokens are those of the plain schedule in every sampling mode.
TEST(Transport, PipelinedDraftingOverALinkKeepsTheTokens) {
  NEED_FIXTURES();
  START_SERVER(server);
  uint64_t sent_early = 0;
  for (const std::vector<std::string>& sampling :
       {std::vector<std::string>{}, std::vector<std::string>{"--temp", "0.8"},
        std::vector<std::string>{"--temp", "0.9", "--top-p", "0.9", "--draft-max", "8"}}) {
    std::string mode;
    for (const auto& a : sampling) mode += a + " ";
    SCOPED_TRACE(mode);
    std::vector<std::string> on = {"--cloud", server.address(), "--net-delay-ms", "30", "--on-cloud-failure", "fail"};
    on.insert(on.end(), sampling.begin(), sampling.end());
    std::vector<std::string> off = on;
    off.push_back("--no-pipeline");
    Proc a = run_cli(gen_args("specsteer", 24, on)), b = run_cli(gen_args("specsteer", 24, off));
    ASSERT_EQ(a.rc, 0) << a.stderr_text();
    ASSERT_EQ(b.rc, 0) << b.stderr_text();
    const json ja = parse_json(a), jb = parse_json(b);
    ASSERT_GT(tokens_of(ja).size(), 8u);
    EXPECT_EQ(tokens_of(ja), tokens_of(jb));
    EXPECT_EQ(ja["round_trips"], jb["round_trips"]);
    EXPECT_EQ(jb["pipeline"]["blocks_sent_early"], 0);
    EXPECT_EQ(jb["pipeline"]["blocks_dropped"], 0);
    EXPECT_EQ(jb["settings"]["pipeline"], false);
    EXPECT_EQ(ja["settings"]["pipeline"], true);
    sent_early += ja["pipeline"]["blocks_sent_early"].get<uint64_t>();
    if (sampling.empty()) {
      EXPECT_EQ(tokens_of(ja), generate(models(), request(Method::SpecSteer, 24)).tokens);
    }
  }
  EXPECT_GT(sent_early, 0u);
  EXPECT_EQ(server.log().find("soundtrack"), std::string::npos);
}

TEST(Transport, SixteenConcurrentSessionsAreCorrectAndUnmixed) {
  NEED_FIXTURES();
  START_SERVER(server, "--max-sessions", "16");
  constexpr int kN = 16;
  std::vector<GenerateRequest> reqs;
  for (int i = 0; i < kN; ++i) {
    auto r = request(i % 2 ? Method::SpecSteer : Method::LightCoSteer, 12, 100 + i,
                     "Topic number " + std::to_string(i) + ": describe your favourite place.");
    r.settings.sampler.temperature = 0.9;  // seeds matter: every session differs
    reqs.push_back(r);
  }
  std::vector<GenerationResult> net(kN);
  std::vector<std::string> errors(kN);
  std::vector<std::thread> threads;
  for (int i = 0; i < kN; ++i)
    threads.emplace_back([&, i] {
      try {
        transport::GrpcTransport link(client(server.address()));
        auto r = reqs[i];
        r.cloud = &link;
        r.on_cloud_failure = CloudFailure::Fail;
        net[i] = generate(models(), r);
        errors[i] = net[i].cloud_error;
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  std::set<std::vector<int32_t>> distinct;
  for (int i = 0; i < kN; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(errors[i], "");
    const auto ref = generate(models(), reqs[i]);
    EXPECT_EQ(net[i].tokens, ref.tokens);
    distinct.insert(ref.tokens);
  }
  EXPECT_GT(distinct.size(), 8u);  // the comparison can tell sessions apart
  EXPECT_TRUE(server.wait_log("closed after", kN));
  // Sixteen sessions at once on one compute thread: blocks were verified in
  // shared forward passes (the shutdown line counts them).
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait(), 0);
  std::smatch m;
  const std::string log = server.log();
  ASSERT_TRUE(std::regex_search(log, m, std::regex("(\\d+) evals in (\\d+) forward passes"))) << log;
  EXPECT_LT(std::stoull(m[2].str()), std::stoull(m[1].str())) << m[0].str();
}

TEST(Transport, KilledServerFallsBackWithoutLosingTokens) {
  NEED_FIXTURES();
  const int n = 64;
  const auto ref = generate(models(), request(Method::SpecSteer, n));
  for (const char* policy : {"fallback", "fail"}) {
    SCOPED_TRACE(policy);
    START_SERVER(server);
    Proc p = Proc::spawn({SPECSTEER_CLI, "generate", "--llm", kLlm, "--slm", kSlm, "--method", "specsteer",
                          "--input", kInput, "--private-context", kPrivate, "-n", std::to_string(n), "--seed", "7",
                          "-t", "1", "--json", "--cloud", server.address(), "--net-delay-ms", "150",
                          "--on-cloud-failure", policy},
                         "kill");
    ASSERT_TRUE(server.wait_log("opened"));
    // 64 tokens need >= 16 round trips of >= 150 ms: killing after 1.2 s
    // lands mid-generation even in a slow sanitizer build.
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    server.signal(SIGKILL);
    p.wait();
    const json j = parse_json(p);
    ASSERT_TRUE(j.contains("cloud_failed_at_token")) << p.stdout_text() << p.stderr_text();
    const size_t at = j["cloud_failed_at_token"];
    const auto toks = tokens_of(j);
    EXPECT_GT(at, 0u);
    EXPECT_LT(at, ref.tokens.size());
    ASSERT_GE(toks.size(), at);
    // Everything decided with the cloud is kept, identical to the cloud run.
    EXPECT_EQ(std::vector<int32_t>(toks.begin(), toks.begin() + at),
              std::vector<int32_t>(ref.tokens.begin(), ref.tokens.begin() + at));
    EXPECT_THAT(j["cloud_error"].get<std::string>(), testing::HasSubstr("UNAVAILABLE"));
    if (std::string(policy) == "fallback") {
      EXPECT_EQ(p.rc, 3) << "a generation the edge finished alone exits 3: " << p.stderr_text();
      EXPECT_EQ(j["fallback"], true);
      const std::vector<int32_t> prefix(toks.begin(), toks.begin() + at);
      EXPECT_EQ(toks, local_continuation(request(Method::SpecSteer, n), prefix, n));
    } else {
      EXPECT_NE(p.rc, 0);
      EXPECT_EQ(toks.size(), at);
      EXPECT_EQ(j["stop_reason"], "cloud_error");
      EXPECT_THAT(p.stderr_text(), testing::HasSubstr("UNAVAILABLE"));
    }
  }
}

TEST(Transport, UnreachableCloudIsAnErrorUnlessFallbackIsAsked) {
  NEED_FIXTURES();
  int port;
  {  // a port nobody listens on
    ServerProc s;
    ASSERT_TRUE(s.ok());
    port = std::stoi(s.address().substr(10));
  }
  const std::string closed = "127.0.0.1:" + std::to_string(port);
  // By default a cloud that cannot be reached is an error, not a quiet
  // device-only answer; the message names the cure.
  Proc p = run_cli(gen_args("specsteer", 12, {"--cloud", closed}));
  EXPECT_EQ(p.rc, 1) << p.stderr_text();
  EXPECT_THAT(p.stderr_text(), testing::HasSubstr("the cloud did not open the session"));
  EXPECT_THAT(p.stderr_text(), testing::HasSubstr("UNAVAILABLE"));
  EXPECT_THAT(p.stderr_text(), testing::HasSubstr("--on-cloud-failure fallback"));
  Proc text = run_cli({"generate", "--slm", kSlm, "--input", kInput, "-n", "4", "-t", "1", "--cloud", closed});
  EXPECT_EQ(text.rc, 1);
  EXPECT_EQ(text.stdout_text(), "") << "nothing generated, nothing printed";
  // Asked for explicitly: the edge runs alone, and exit status 3 and the JSON say so.
  Proc fb = run_cli(gen_args("specsteer", 12, {"--cloud", closed, "--on-cloud-failure", "fallback"}));
  EXPECT_EQ(fb.rc, 3) << fb.stderr_text();
  const json j = parse_json(fb);
  EXPECT_EQ(j["cloud_failed_at_token"], 0);
  EXPECT_EQ(j["cloud_failed_at_open"], true);
  EXPECT_EQ(j["fallback"], true);
  EXPECT_EQ(tokens_of(j), generate(models(), request(Method::SlmPlus, 12)).tokens);
}

TEST(Transport, EdgeWithOnlyTheSmallModelEqualsInProcess) {
  NEED_FIXTURES();
  START_SERVER(server);
  for (const char* method : {"specsteer", "sd", "lightcosteer"}) {
    SCOPED_TRACE(method);
    const int n = 16;
    const auto req = request(parse_method(method), n);
    const auto ref = generate(models(), req);  // both models, cloud in process
    // The CLI with --slm alone: x goes up as text, the cloud tokenizes it.
    Proc p = run_cli({"generate", "--slm", kSlm, "--method", method, "--input", kInput, "--private-context", kPrivate,
                      "-n", std::to_string(n), "--seed", "7", "-t", "1", "--json", "--cloud", server.address()});
    ASSERT_EQ(p.rc, 0) << p.stderr_text();
    const json j = parse_json(p);
    EXPECT_EQ(tokens_of(j), ref.tokens);
    EXPECT_EQ(j["text"], ref.text);
    EXPECT_EQ(j["fallback"], false);
    EXPECT_EQ(j["round_trips"], ref.counters.round_trips);
    // The schedule of the cloud's passes starts after x as the cloud's
    // models read it (SessionAccept's lengths) and matches the in-process one.
    const auto ids = prepare_prompts(models(), req);
    EXPECT_EQ(ref.schedule.llm_prompt, ids.x_llm.size());
    EXPECT_EQ(j["trace"]["prompt"]["llm"], ref.schedule.llm_prompt);
    EXPECT_EQ(j["trace"]["prompt"]["slm"], ref.schedule.slm_prompt);
    // The library path: an edge Models without the LLM.
    static const Models edge = Models::load_edge(kSlm, {.n_threads = 1});
    transport::GrpcTransport link(client(server.address()));
    auto r = req;
    r.cloud = &link;
    const auto lib = generate(edge, r);
    EXPECT_FALSE(lib.cloud_failed_at) << lib.cloud_error;
    EXPECT_EQ(lib.tokens, ref.tokens);
    EXPECT_EQ(lib.schedule.llm_prompt, ref.schedule.llm_prompt);
    EXPECT_EQ(lib.schedule.slm_prompt, ref.schedule.slm_prompt);
    EXPECT_EQ(lib.schedule.edge_prompt, ref.schedule.edge_prompt);
    EXPECT_EQ(lib.schedule.rounds, ref.schedule.rounds) << "the cloud's passes, round by round";
  }
  // Without --cloud the LLM is needed, and the error says so.
  Proc no_llm = run_cli({"generate", "--slm", kSlm, "--input", kInput, "-n", "4", "-t", "1"});
  EXPECT_EQ(no_llm.rc, 1);
  EXPECT_THAT(no_llm.stderr_text(), testing::HasSubstr("--llm is required"));
  EXPECT_EQ(server.log().find(kInput), std::string::npos) << "prompt text in the server log";
}

// Cross-tokenizer SpecSteer over the network: the Llama-3-vocabulary
// fixture as the cloud's Generalist, the Qwen-vocabulary Specialist on the edge.
TEST(Transport, CrossVocabularyPairEqualsInProcess) {
  NEED_FIXTURES();
  const std::string cross_llm = fixture("tiny-llama3-f32");
  if (!fs::exists(cross_llm)) GTEST_SKIP() << "no llama3 fixture";
  ServerProc server({}, cross_llm);
  ASSERT_TRUE(server.ok()) << server.log();
  static const Models cross = Models::load(cross_llm, kSlm, {.n_threads = 1});
  for (const char* temp : {"0", "0.8"}) {
    SCOPED_TRACE(temp);
    auto req = request(Method::SpecSteer, 12);
    req.settings.sampler.temperature = std::stod(temp);
    const auto ref = generate(cross, req);
    ASSERT_FALSE(ref.cloud_failed_at) << ref.cloud_error;
    // The edge with its small model alone, and with both models (it names the LLM).
    for (bool with_llm : {false, true}) {
      std::vector<std::string> args = {"generate", "--slm", kSlm, "--method", "specsteer", "--input", kInput,
                                       "--private-context", kPrivate, "-n", "12", "--seed", "7", "-t", "1",
                                       "--temp", temp, "--json", "--cloud", server.address()};
      if (with_llm) args.insert(args.end(), {"--llm", cross_llm});
      Proc p = run_cli(args);
      ASSERT_EQ(p.rc, 0) << p.stderr_text();
      const json j = parse_json(p);
      EXPECT_EQ(tokens_of(j), ref.tokens) << "with_llm " << with_llm;
      EXPECT_EQ(j["text"], ref.text);
      EXPECT_EQ(j["fallback"], false);
      EXPECT_EQ(j["round_trips"], ref.counters.round_trips);
    }
  }
  // A method that needs one vocabulary is refused by the cloud, by name.
  Proc sd = run_cli({"generate", "--slm", kSlm, "--method", "sd", "--input", kInput, "-n", "4", "-t", "1", "--cloud",
                     server.address()});
  EXPECT_EQ(sd.rc, 1);
  EXPECT_THAT(sd.stderr_text(), testing::HasSubstr("share a vocabulary"));
  EXPECT_EQ(server.log().find(kPrivate), std::string::npos) << "private text in the server log";
  EXPECT_EQ(server.log().find("soundtrack"), std::string::npos);
}

TEST(Transport, ModelMismatchIsAnErrorUnlessFallbackIsAsked) {
  NEED_FIXTURES();
  START_SERVER(server);
  // The edge's small model is not the cloud's SLM- (here: the LLM's file).
  std::vector<std::string> a = {"generate", "--slm", kLlm, "--input", kInput, "-n", "6", "-t", "1", "--json",
                                "--cloud", server.address()};
  Proc p = run_cli(a);
  EXPECT_EQ(p.rc, 1) << p.stderr_text();
  EXPECT_THAT(p.stderr_text(), testing::HasSubstr("FAILED_PRECONDITION"));
  EXPECT_THAT(p.stderr_text(), testing::HasSubstr("differs from the cloud's SLM"));
  // An edge that insists on another LLM is refused too.
  Proc llm = run_cli({"generate", "--llm", kSlm, "--slm", kSlm, "--input", kInput, "-n", "6", "-t", "1",
                      "--cloud", server.address()});
  EXPECT_EQ(llm.rc, 1);
  EXPECT_THAT(llm.stderr_text(), testing::HasSubstr("but this cloud serves"));
  a.insert(a.end(), {"--on-cloud-failure", "fallback"});
  Proc fb = run_cli(a);
  EXPECT_EQ(fb.rc, 3) << fb.stderr_text();
  EXPECT_EQ(parse_json(fb)["fallback"], true);
}

TEST(Transport, OtherProtocolVersionsAreRefusedByName) {
  NEED_FIXTURES();
  START_SERVER(server);
  auto stub = stub_for(server.address());
  v1::EdgeMessage old = open_message(request(Method::SpecSteer, 8));
  old.mutable_open()->set_version(1);  // a protocol-1 edge: x as ids only, no text
  RawStream s(*stub);
  grpc::Status st;
  EXPECT_FALSE(s.send(old, &st));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(st.error_message(), testing::HasSubstr("protocol version mismatch: the edge speaks version 1"));
  // The current version with x as text is accepted and answered with what
  // an edge without the LLM needs.
  v1::EdgeMessage text;
  const auto req = request(Method::SpecSteer, 8);
  auto* o = text.mutable_open();
  o->set_version(kProtocolVersion);
  const auto slm_id = identity_of(*models().slm);
  o->mutable_slm()->set_name(slm_id.name);
  o->mutable_slm()->set_arch(slm_id.arch);
  o->mutable_slm()->set_n_vocab(slm_id.n_vocab);
  o->mutable_slm()->set_fingerprint(slm_id.fingerprint);
  o->set_x_text(kInput);
  o->set_chat(true);
  *o->mutable_settings() = old.open().settings();
  RawStream t(*stub);
  auto accept = t.send(text, &st);
  ASSERT_TRUE(accept) << st.error_message();
  const auto& a = accept->accept();
  const auto ids = prepare_prompts(models(), req);
  EXPECT_EQ(a.version(), kProtocolVersion);
  EXPECT_EQ(a.x_llm_tokens(), ids.x_llm.size());
  EXPECT_EQ(a.x_slm_tokens(), ids.x_slm.size());
  EXPECT_EQ(a.llm().fingerprint(), identity_of(*models().llm).fingerprint);
  EXPECT_EQ(a.n_ctx(), 256u);
  std::vector<int32_t> eog(a.eog().begin(), a.eog().end());
  EXPECT_FALSE(eog.empty());
  for (int32_t t : eog) EXPECT_TRUE(models().slm_tok->is_eog(t) || models().llm_tok->is_eog(t)) << t;
}

TEST(Transport, WrongTokenIsUnauthenticated) {
  NEED_FIXTURES();
  const fs::path good = temp_dir() / "token", bad = temp_dir() / "badtoken";
  std::ofstream(good) << "s3cret-token-for-tests\n";
  std::ofstream(bad) << "s3cret-token-for-tesTs\n";
  START_SERVER(server, "--auth-token-file", good.string());
  Proc denied = run_cli(gen_args("specsteer", 8, {"--cloud", server.address(), "--auth-token-file", bad.string(),
                                                  "--on-cloud-failure", "fail"}));
  EXPECT_NE(denied.rc, 0);
  EXPECT_THAT(denied.stderr_text(), testing::HasSubstr("UNAUTHENTICATED"));
  Proc none = run_cli(gen_args("specsteer", 8, {"--cloud", server.address(), "--on-cloud-failure", "fail"}));
  EXPECT_NE(none.rc, 0);
  EXPECT_THAT(none.stderr_text(), testing::HasSubstr("UNAUTHENTICATED"));
  Proc ok = run_cli(gen_args("specsteer", 8, {"--cloud", server.address(), "--auth-token-file", good.string()}));
  ASSERT_EQ(ok.rc, 0) << ok.stderr_text();
  const json j = parse_json(ok);
  EXPECT_FALSE(j.contains("cloud_failed_at_token"));
  EXPECT_EQ(tokens_of(j), generate(models(), request(Method::SpecSteer, 8)).tokens);
  EXPECT_EQ(server.log().find("s3cret"), std::string::npos);
}

TEST(Transport, TokenComparisonIsExact) {
  EXPECT_TRUE(specsteer::token_equal("abc", "abc"));
  EXPECT_FALSE(specsteer::token_equal("abc", "abd"));
  EXPECT_FALSE(specsteer::token_equal("abc", "abcd"));
  EXPECT_FALSE(specsteer::token_equal("", "abc"));
}

namespace {

// A throwaway CA and a server certificate for 127.0.0.1/localhost it signed.
EVP_PKEY* new_key() { return EVP_EC_gen("P-256"); }

X509* make_cert(EVP_PKEY* key, EVP_PKEY* signer, X509* issuer, const char* cn, bool ca, long serial) {
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, issuer ? issuer : x, x, nullptr, nullptr, 0);
  auto add = [&](int nid, const char* value) {
    X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
  };
  if (ca) {
    add(NID_basic_constraints, "critical,CA:TRUE");
    add(NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add(NID_basic_constraints, "CA:FALSE");
    add(NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
    add(NID_ext_key_usage, "serverAuth");
  }
  X509_sign(x, signer, EVP_sha256());
  return x;
}

void write_pem(const fs::path& p, X509* cert, EVP_PKEY* key) {
  FILE* f = std::fopen(p.c_str(), "w");
  if (cert) PEM_write_X509(f, cert);
  if (key) PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
}

}  // namespace

TEST(Transport, TlsWithATestCa) {
  NEED_FIXTURES();
  EVP_PKEY* ca_key = new_key();
  EVP_PKEY* srv_key = new_key();
  EVP_PKEY* other_key = new_key();
  X509* ca = make_cert(ca_key, ca_key, nullptr, "specsteer test CA", true, 1);
  X509* srv = make_cert(srv_key, ca_key, ca, "specsteer test server", false, 2);
  X509* other_ca = make_cert(other_key, other_key, nullptr, "unrelated CA", true, 3);
  const fs::path ca_pem = temp_dir() / "ca.pem", other_pem = temp_dir() / "other.pem",
                 cert_pem = temp_dir() / "server.pem", key_pem = temp_dir() / "server.key";
  write_pem(ca_pem, ca, nullptr);
  write_pem(other_pem, other_ca, nullptr);
  write_pem(cert_pem, srv, nullptr);
  write_pem(key_pem, nullptr, srv_key);
  for (X509* x : {ca, srv, other_ca}) X509_free(x);
  for (EVP_PKEY* k : {ca_key, srv_key, other_key}) EVP_PKEY_free(k);

  START_SERVER(server, "--tls-cert", cert_pem.string(), "--tls-key", key_pem.string());
  Proc ok = run_cli(gen_args("specsteer", 10, {"--cloud", server.address(), "--tls-ca", ca_pem.string()}));
  ASSERT_EQ(ok.rc, 0) << ok.stderr_text();
  const json j = parse_json(ok);
  EXPECT_FALSE(j.contains("cloud_failed_at_token")) << j.dump();
  EXPECT_EQ(tokens_of(j), generate(models(), request(Method::SpecSteer, 10)).tokens);
  // A client that trusts another CA, or speaks plaintext, gets nothing.
  for (const auto& extra : std::vector<std::vector<std::string>>{
           {"--cloud", server.address(), "--tls-ca", other_pem.string(), "--on-cloud-failure", "fail"},
           {"--cloud", server.address(), "--on-cloud-failure", "fail"}}) {
    Proc bad = run_cli(gen_args("specsteer", 10, extra));
    EXPECT_NE(bad.rc, 0);
    EXPECT_THAT(bad.stderr_text(), testing::HasSubstr("UNAVAILABLE"));
  }
  EXPECT_THAT(server.log(), testing::HasSubstr("(TLS)"));
}

TEST(Transport, MalformedAndOversizedRequestsDoNotAffectOtherSessions) {
  NEED_FIXTURES();
  START_SERVER(server, "--max-message-bytes", "4096");
  // A well-behaved session runs slowly throughout.
  const auto good_req = request(Method::SpecSteer, 24);
  GenerationResult good;
  std::thread edge = edge_thread(server.address(), 40, good_req, good);
  ASSERT_TRUE(server.wait_log("opened"));
  auto stub = stub_for(server.address());
  const v1::EdgeMessage open = open_message(request(Method::SpecSteer, 24));
  grpc::Status st;

  {  // oversized: x far above the 4096-byte limit
    RawStream s(*stub);
    v1::EdgeMessage big = open;
    for (int i = 0; i < 5000; ++i) big.mutable_open()->add_x_llm(100000 + i);
    EXPECT_FALSE(s.send(big, &st));
    EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  }
  {  // draft before open
    RawStream s(*stub);
    v1::EdgeMessage d;
    d.mutable_draft()->add_drafts(1);
    EXPECT_FALSE(s.send(d, &st));
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  }
  {  // ids outside the vocabulary, and a session id that is not this stream's
    for (int variant = 0; variant < 3; ++variant) {
      RawStream s(*stub);
      auto accept = s.send(open, &st);
      ASSERT_TRUE(accept) << st.error_message();
      v1::EdgeMessage d;
      d.mutable_draft()->set_session(accept->accept().session() + (variant == 1 ? 1 : 0));
      if (variant == 0) d.mutable_draft()->add_drafts(1 << 30);
      if (variant == 1) d.mutable_draft()->add_drafts(5);
      if (variant == 2) d.mutable_draft()->add_drafts(-3);
      EXPECT_FALSE(s.send(d, &st));
      EXPECT_EQ(st.error_code(), variant == 1 ? grpc::StatusCode::FAILED_PRECONDITION
                                              : grpc::StatusCode::INVALID_ARGUMENT)
          << variant << ": " << st.error_message();
    }
  }
  {  // bad settings, and a block longer than K
    RawStream s(*stub);
    v1::EdgeMessage bad = open;
    bad.mutable_open()->mutable_settings()->set_draft(0);
    EXPECT_FALSE(s.send(bad, &st));
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    RawStream s2(*stub);
    auto accept = s2.send(open, &st);
    ASSERT_TRUE(accept);
    v1::EdgeMessage d;
    d.mutable_draft()->set_session(accept->accept().session());
    for (int i = 0; i < 9; ++i) d.mutable_draft()->add_drafts(5);
    EXPECT_FALSE(s2.send(d, &st));
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  {  // bytes that are not a protobuf message at all
    grpc::GenericStub generic(grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    grpc::CompletionQueue cq;
    auto call = generic.PrepareCall(&ctx, "/specsteer.v1.Cloud/Generate", &cq);
    void* tag;
    bool ok;
    call->StartCall(reinterpret_cast<void*>(1));
    cq.Next(&tag, &ok);
    const char garbage[] = "\xff\xff\xff\xff\x0f not a protobuf";
    grpc::Slice slice(garbage, sizeof garbage);
    grpc::ByteBuffer buf(&slice, 1);
    call->Write(buf, reinterpret_cast<void*>(2));
    cq.Next(&tag, &ok);
    grpc::ByteBuffer reply;
    call->Read(&reply, reinterpret_cast<void*>(3));
    cq.Next(&tag, &ok);
    EXPECT_FALSE(ok);  // no reply
    grpc::Status gst;
    call->Finish(&gst, reinterpret_cast<void*>(4));
    cq.Next(&tag, &ok);
    EXPECT_FALSE(gst.ok());
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
  }
  edge.join();
  EXPECT_EQ(good.cloud_error, "");
  EXPECT_EQ(good.tokens, generate(models(), good_req).tokens);
}

TEST(Transport, SessionLimitMemoryBudgetAndIdleReclaim) {
  NEED_FIXTURES();
  const auto req = request(Method::SpecSteer, 16);
  // KV caches at --ctx 256 plus logits rows: one formula, spelled out here.
  const auto& lc = models().llm->config();
  const auto& sc = models().slm->config();
  const double kv = 2.0 * 256 * sizeof(float) * (lc.n_layer * lc.kv_dim() + sc.n_layer * sc.kv_dim());
  const double logits = (2.0 * (req.settings.draft + 1) + 1) * sizeof(float) * (lc.n_vocab + sc.n_vocab);
  const double per_session = kv + logits;
  EXPECT_EQ(static_cast<uint64_t>(per_session),
            transport::session_memory_bytes(*models().llm, *models().slm, 256, req.settings.draft));
  const v1::EdgeMessage open = open_message(req);
  grpc::Status st;
  {
    START_SERVER(server, "--max-sessions", "1");
    auto stub = stub_for(server.address());
    RawStream a(*stub), b(*stub);
    ASSERT_TRUE(a.send(open, &st));
    EXPECT_FALSE(b.send(open, &st));
    EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_THAT(st.error_message(), testing::HasSubstr("--max-sessions 1"));
  }
  {
    char mb[32];
    std::snprintf(mb, sizeof mb, "%.6f", 2.5 * per_session / (1024.0 * 1024.0));
    START_SERVER(server, "--memory-budget-mb", mb);
    auto stub = stub_for(server.address());
    RawStream a(*stub), b(*stub), c(*stub);
    ASSERT_TRUE(a.send(open, &st));
    ASSERT_TRUE(b.send(open, &st));
    EXPECT_FALSE(c.send(open, &st));
    EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_THAT(st.error_message(), testing::HasSubstr("memory budget"));
  }
  {
    START_SERVER(server, "--idle-timeout", "0.5");
    auto stub = stub_for(server.address());
    RawStream a(*stub);
    auto accept = a.send(open, &st);
    ASSERT_TRUE(accept);
    ASSERT_TRUE(server.wait_log("reclaimed"));
    v1::EdgeMessage close;
    close.mutable_close()->set_session(accept->accept().session());
    EXPECT_FALSE(a.send(close, &st));
    EXPECT_EQ(st.error_code(), grpc::StatusCode::CANCELLED);
  }
}

TEST(Transport, SigtermFinishesInFlightSessions) {
  NEED_FIXTURES();
  START_SERVER(server);
  const auto req = request(Method::SpecSteer, 24);
  GenerationResult r;
  std::thread edge = edge_thread(server.address(), 40, req, r);
  ASSERT_TRUE(server.wait_log("opened"));
  server.signal(SIGTERM);
  ASSERT_TRUE(server.wait_log("draining"));
  // New sessions are refused while draining (the edge tries again until its
  // deadline: another replica may take it).
  Proc late = run_cli(gen_args("specsteer", 4, {"--cloud", server.address(), "--on-cloud-failure", "fail",
                                                "--cloud-timeout", "1", "--cloud-retries", "0"}));
  EXPECT_NE(late.rc, 0);
  edge.join();
  EXPECT_EQ(r.cloud_error, "");
  EXPECT_EQ(r.tokens, generate(models(), req).tokens);
  EXPECT_EQ(server.wait(), 0);
  EXPECT_THAT(server.log(), testing::HasSubstr("1 closed"));
}

// --- the server's own port, options and credentials (issue 17) --------------

namespace {
size_t count_lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }
std::vector<std::string> serve_args(std::vector<std::string> extra) {
  std::vector<std::string> a = {"cloud", "serve", "--llm", kLlm, "--slm", kSlm, "-t", "1"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}
}  // namespace

TEST(Transport, SecondServerOnAUsedPortExitsNonZeroWithOneLine) {
  NEED_FIXTURES();
  START_SERVER(first);
  Proc second = run_cli(serve_args({"--listen", first.address()}));
  EXPECT_NE(second.rc, 0);
  EXPECT_THAT(second.stderr_text(), testing::HasSubstr("already in use"));
  EXPECT_EQ(count_lines(second.stderr_text()), 1u) << second.stderr_text();
  // The first one still serves every session.
  Proc ok = run_cli(gen_args("specsteer", 4, {"--cloud", first.address(), "--on-cloud-failure", "fail"}));
  EXPECT_EQ(ok.rc, 0) << ok.stderr_text();
}

TEST(Transport, ListenAddressIsValidated) {
  NEED_FIXTURES();
  for (const auto& [listen, says] : std::vector<std::pair<std::string, std::string>>{
           {"127.0.0.1:99999", "out of range 1..65535"}, {"7070", "expected HOST:PORT"},
           {"127.0.0.1:http", "not a number"}}) {
    SCOPED_TRACE(listen);
    Proc p = run_cli(serve_args({"--listen", listen}));
    EXPECT_NE(p.rc, 0);
    EXPECT_THAT(p.stderr_text(), testing::HasSubstr(says));
    EXPECT_EQ(count_lines(p.stderr_text()), 1u) << p.stderr_text();
  }
}

TEST(Transport, ServeRefusesBadNumbersAShortTokenAndAContextBeyondTraining) {
  NEED_FIXTURES();
  const fs::path short_token = temp_dir() / "short-token";
  std::ofstream(short_token) << "s3cret\n";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--shutdown-grace", "-1"}, "--shutdown-grace"},
      {{"--shutdown-grace", "nan"}, "--shutdown-grace"},
      {{"--memory-budget-mb", "nan"}, "--memory-budget-mb"},
      {{"--idle-timeout", "inf"}, "--idle-timeout"},
      {{"--ctx", "10000000"}, "exceeds the training context"},
      {{"--auth-token-file", short_token.string()}, "at least 16"},
  };
  for (const auto& [extra, says] : cases) {
    SCOPED_TRACE(extra[0] + " " + extra[1]);
    auto args = serve_args({"--listen", "127.0.0.1:0"});
    args.insert(args.end(), extra.begin(), extra.end());
    Proc p = run_cli(args);
    EXPECT_NE(p.rc, 0);
    EXPECT_THAT(p.stderr_text(), testing::HasSubstr(says));
  }
  Proc edge = run_cli(gen_args("specsteer", 4, {"--cloud", "127.0.0.1:1", "--net-delay-ms", "-5"}));
  EXPECT_NE(edge.rc, 0);
  EXPECT_THAT(edge.stderr_text(), testing::HasSubstr("--net-delay-ms"));
  Proc timeout = run_cli(gen_args("specsteer", 4, {"--cloud", "127.0.0.1:1", "--cloud-timeout", "0"}));
  EXPECT_NE(timeout.rc, 0);
  EXPECT_THAT(timeout.stderr_text(), testing::HasSubstr("--cloud-timeout"));
}

TEST(Transport, SessionBeyondTheServersContextIsRefusedUpFront) {
  NEED_FIXTURES();
  ServerProc server{std::vector<std::string>{"--ctx", "0"}};  // 0: the models' training context (256)
  ASSERT_TRUE(server.ok()) << server.log();
  auto req = request(Method::SpecSteer, 300);
  auto stub = stub_for(server.address());
  RawStream s(*stub);
  grpc::Status st;
  EXPECT_FALSE(s.send(open_message(req), &st));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), testing::HasSubstr("exceeds the context of the cloud's sessions (256"));
  // --ctx defaults to 0, the training context.
  Proc help = run_cli({"cloud", "serve", "--help"});
  EXPECT_THAT(help.stdout_text(), testing::HasSubstr("--ctx INT=0 "));
}

TEST(Transport, PlaintextOffLoopbackWarnsOnBothSides) {
  NEED_FIXTURES();
  const fs::path token = temp_dir() / "long-token";
  std::ofstream(token) << "a-token-of-sufficient-length\n";
  // 0.0.0.0 is not loopback, yet reachable from this machine.
  START_SERVER(server, "--listen", "0.0.0.0:0", "--auth-token-file", token.string());
  EXPECT_THAT(server.log(), testing::HasSubstr("warning: listening on 0.0.0.0:0 without TLS"));
  EXPECT_THAT(server.log(), testing::HasSubstr("bearer token"));
  const std::string addr = "0.0.0.0:" + server.address().substr(10);
  Proc edge = run_cli(gen_args("specsteer", 4, {"--cloud", addr, "--auth-token-file", token.string()}));
  EXPECT_EQ(edge.rc, 0) << edge.stderr_text();
  EXPECT_THAT(edge.stderr_text(), testing::HasSubstr("without --tls-ca: the bearer token"));
  // On loopback neither side warns.
  START_SERVER(local);
  EXPECT_EQ(local.log().find("warning"), std::string::npos) << local.log();
  Proc quiet = run_cli(gen_args("specsteer", 4, {"--cloud", local.address()}));
  EXPECT_EQ(quiet.stderr_text().find("warning"), std::string::npos) << quiet.stderr_text();
  EXPECT_TRUE(transport::is_loopback_target("127.0.0.1:7070"));
  EXPECT_TRUE(transport::is_loopback_target("[::1]:7070"));
  EXPECT_TRUE(transport::is_loopback_target("localhost:7070"));
  EXPECT_FALSE(transport::is_loopback_target("0.0.0.0:7070"));
  EXPECT_FALSE(transport::is_loopback_target("cloud.example.com:7070"));
  EXPECT_FALSE(transport::is_loopback_target("[::]:7070"));
}

// The steering-candidate settings cross the proto codec; an edge that predates
// the fields (absent) gets the paper's contrast rule it ran; an unknown rule
// or gamma outside [0, 1] is refused with the field named.
TEST(Convert, SteeringCandidatesTravelAndDefaultToContrast) {
  SessionOpen o;
  o.llm = {"l", "qwen3", 100, 1};
  o.slm = {"s", "qwen3", 100, 2};
  o.x_llm = o.x_slm = {1, 2, 3};
  o.settings.steer_candidates = SteerCandidates::Plausible;
  o.settings.plausibility = 0.3;
  v1::EdgeMessage p = transport::to_proto_uplink(o);
  auto back = std::get<SessionOpen>(transport::from_proto(p, {}));
  EXPECT_EQ(back.settings.steer_candidates, SteerCandidates::Plausible);
  EXPECT_DOUBLE_EQ(back.settings.plausibility, 0.3);
  p.mutable_open()->mutable_settings()->clear_steer_candidates();
  p.mutable_open()->mutable_settings()->clear_plausibility();
  back = std::get<SessionOpen>(transport::from_proto(p, {}));
  EXPECT_EQ(back.settings.steer_candidates, SteerCandidates::Contrast);
  p.mutable_open()->mutable_settings()->set_steer_candidates(static_cast<v1::Settings::SteerCandidates>(9));
  try {
    transport::from_proto(p, {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("steer_candidates"), std::string::npos) << e.what();
  }
  p.mutable_open()->mutable_settings()->set_steer_candidates(v1::Settings::PLAUSIBLE);
  p.mutable_open()->mutable_settings()->set_plausibility(2.0);
  try {
    transport::from_proto(p, {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("plausibility"), std::string::npos) << e.what();
  }
}

// `cloud serve --steer-candidates R` admits only sessions that ask for R; the
// rule each edge asks for travels in its SessionOpen.
TEST(Transport, ServerCanPinTheSteeringCandidateRule) {
  NEED_FIXTURES();
  START_SERVER(server, "--steer-candidates", "contrast");
  Proc ok = run_cli(gen_args("specsteer", 6, {"--cloud", server.address(), "--steer-candidates", "contrast",
                                               "--on-cloud-failure", "fail"}));
  ASSERT_EQ(ok.rc, 0) << ok.stderr_text();
  EXPECT_EQ(parse_json(ok)["settings"]["steer_candidates"], "contrast");
  Proc bad = run_cli(gen_args("specsteer", 6, {"--cloud", server.address(), "--steer-candidates", "plausible",
                                                "--on-cloud-failure", "fail"}));
  EXPECT_NE(bad.rc, 0);
  EXPECT_THAT(bad.stderr_text(), testing::HasSubstr("FAILED_PRECONDITION"));
  EXPECT_THAT(bad.stderr_text(), testing::HasSubstr("only 'contrast' steering vectors"));
  EXPECT_THAT(server.log(), testing::HasSubstr("(contrast steering)"));
}

// --- the cloud tier: health, drain, metrics, resumption (issue 24) ----------

namespace {

// GET http://127.0.0.1:port/path; the body, or "" when it cannot connect.
std::string http_get(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return "";
  }
  const std::string req = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
  if (write(fd, req.data(), req.size()) < 0) {
    close(fd);
    return "";
  }
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fd);
  const auto body = out.find("\r\n\r\n");
  return body == std::string::npos ? "" : out.substr(body + 4);
}

// The value of the first sample line starting with `name` (-1: none).
double sample(const std::string& metrics, const std::string& name) {
  std::istringstream in(metrics);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(name, 0) == 0 && line.size() > name.size() && (line[name.size()] == ' ' || line[name.size()] == '{'))
      return std::stod(line.substr(line.rfind(' ') + 1));
  return -1;
}

std::string health_of(const std::string& addr, const std::string& service = "") {
  transport::HealthProbe p;
  p.target = addr;
  p.service = service;
  const auto a = transport::check_health(p);
  return a.kind == transport::HealthAnswer::Kind::Answered ? a.status : "error: " + a.error;
}

}  // namespace

TEST(CloudTier, HealthServesUntilADrainAndMetricsCountSessions) {
  NEED_FIXTURES();
  const fs::path mport = temp_dir() / "metrics-port";
  fs::remove(mport);
  START_SERVER(server, "--metrics-listen", "127.0.0.1:0", "--metrics-port-file", mport.string(), "--shutdown-grace",
               "20");
  const int mp = std::stoi(slurp(mport));
  EXPECT_EQ(health_of(server.address()), "SERVING");
  EXPECT_EQ(health_of(server.address(), "specsteer.v1.Cloud"), "SERVING");
  EXPECT_EQ(health_of(server.address(), "no.such.Service"), "error: NOT_FOUND: service name unknown");
  std::string m = http_get(mp, "/metrics");
  EXPECT_EQ(sample(m, "specsteer_serving"), 1);
  EXPECT_EQ(sample(m, "specsteer_sessions_active"), 0);
  EXPECT_THAT(m, testing::HasSubstr("specsteer_model_info{"));

  // One session in flight (slow link) while the server drains.
  const auto req = request(Method::SpecSteer, 24);
  GenerationResult r;
  std::thread edge = edge_thread(server.address(), 60, req, r);
  ASSERT_TRUE(server.wait_log("opened"));
  EXPECT_EQ(sample(http_get(mp, "/metrics"), "specsteer_sessions_active"), 1);
  server.signal(SIGTERM);
  ASSERT_TRUE(server.wait_log("draining"));
  EXPECT_EQ(health_of(server.address()), "NOT_SERVING");
  EXPECT_EQ(health_of(server.address(), "specsteer.v1.Cloud"), "NOT_SERVING");
  Proc cli = run_cli({"cloud", "health", "--cloud", server.address()});
  EXPECT_EQ(cli.rc, 4) << cli.stderr_text();
  EXPECT_EQ(cli.stdout_text(), "NOT_SERVING\n");
  m = http_get(mp, "/metrics");
  EXPECT_EQ(sample(m, "specsteer_serving"), 0);
  edge.join();
  EXPECT_EQ(r.cloud_error, "");
  EXPECT_EQ(r.tokens, generate(models(), req).tokens);
  EXPECT_EQ(server.wait(), 0);
}

TEST(CloudTier, MetricsCountBlocksTokensAndRefusalsButHoldNoText) {
  NEED_FIXTURES();
  const fs::path mport = temp_dir() / "metrics-port2";
  fs::remove(mport);
  START_SERVER(server, "--metrics-listen", "127.0.0.1:0", "--metrics-port-file", mport.string(), "--max-sessions",
               "1");
  const int mp = std::stoi(slurp(mport));
  transport::GrpcTransport link(client(server.address()));
  auto q = request(Method::SpecSteer, 16);
  q.cloud = &link;
  const auto r = generate(models(), q);
  ASSERT_EQ(r.cloud_error, "");
  const std::string m = http_get(mp, "/metrics");
  EXPECT_THAT(m, testing::HasSubstr("specsteer_sessions_opened_total{kind=\"new\"} 1"));
  EXPECT_THAT(m, testing::HasSubstr("specsteer_sessions_ended_total{how=\"closed\"} 1"));
  EXPECT_EQ(sample(m, "specsteer_blocks_verified_total"), static_cast<double>(r.counters.round_trips));
  EXPECT_EQ(sample(m, "specsteer_drafted_tokens_total"), static_cast<double>(r.counters.n_drafted));
  EXPECT_EQ(sample(m, "specsteer_accepted_tokens_total"), static_cast<double>(r.counters.n_accepted));
  EXPECT_EQ(sample(m, "specsteer_rejections_total"), static_cast<double>(r.counters.rejections));
  EXPECT_GT(sample(m, "specsteer_exchange_seconds_count"), 0);
  EXPECT_GT(sample(m, "specsteer_shared_pass_requests_count"), 0);
  // Bytes: what the edge counted on the wire, seen from the other side.
  EXPECT_THAT(m, testing::HasSubstr("specsteer_wire_bytes_total{direction=\"in\"} " +
                                    std::to_string(r.counters.bytes_up)));
  // No text of x or the output, no ids list.
  EXPECT_EQ(m.find("film"), std::string::npos);
  EXPECT_EQ(m.find(r.text.substr(0, std::min<size_t>(r.text.size(), 12))), std::string::npos);
  // A refusal is counted by reason: a wrong protocol version.
  auto stub = stub_for(server.address());
  RawStream raw(*stub);
  auto open = open_message(request(Method::SpecSteer, 4));
  open.mutable_open()->set_version(1);
  grpc::Status st;
  EXPECT_FALSE(raw.send(open, &st));
  EXPECT_THAT(http_get(mp, "/metrics"), testing::HasSubstr("specsteer_sessions_refused_total{reason=\"version\"} 1"));
}

TEST(CloudTier, ASessionCutByAKilledReplicaResumesOnAnotherTokenIdentical) {
  NEED_FIXTURES();
  const int n = 64;
  for (const bool sampled : {false, true}) {
    SCOPED_TRACE(sampled ? "sampled" : "greedy");
    std::vector<std::string> samp = sampled ? std::vector<std::string>{"--temp", "0.9"} : std::vector<std::string>{};
    auto ref_req = request(Method::SpecSteer, n);
    if (sampled) ref_req.settings.sampler.temperature = 0.9;
    const auto ref = generate(models(), ref_req);
    START_SERVER(a);
    START_SERVER(b);
    std::vector<std::string> args = gen_args("specsteer", n, {"--cloud", a.address() + "," + b.address(),
                                                              "--net-delay-ms", "120"});
    args.insert(args.end(), samp.begin(), samp.end());
    args.insert(args.begin(), SPECSTEER_CLI);
    Proc p = Proc::spawn(args, "resume");
    // Kill whichever replica opened the session, mid-generation.
    ServerProc* victim = nullptr;
    for (int i = 0; i < 400 && !victim; ++i) {
      if (a.log().find("opened") != std::string::npos) victim = &a;
      else if (b.log().find("opened") != std::string::npos) victim = &b;
      else std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(victim);
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    victim->signal(SIGKILL);
    p.wait();
    const json j = parse_json(p);
    EXPECT_EQ(p.rc, 0) << p.stderr_text();
    EXPECT_EQ(j["fallback"], false);
    EXPECT_GE(j["resumed"].get<int>(), 1);
    EXPECT_GT(j["resume_tokens"].get<int>(), 0);
    EXPECT_EQ(tokens_of(j), ref.tokens);
    ServerProc& other = victim == &a ? b : a;
    EXPECT_THAT(other.log(), testing::HasSubstr("resumed after"));
  }
}

TEST(CloudTier, ADrainingReplicaSendsNewSessionsElsewhereWithoutAFailure) {
  NEED_FIXTURES();
  START_SERVER(a, "--shutdown-grace", "30");
  START_SERVER(b);
  // Keep `a` draining (and listening) with a long session in flight.
  GenerationResult held;
  std::thread hold = edge_thread(a.address(), 150, request(Method::SpecSteer, 40), held, CloudFailure::Fallback);
  ASSERT_TRUE(a.wait_log("opened"));
  a.signal(SIGTERM);
  ASSERT_TRUE(a.wait_log("draining"));
  const auto ref = generate(models(), request(Method::SpecSteer, 8));
  for (int i = 0; i < 4; ++i) {
    // No retries allowed: a draining refusal is not a failure.
    Proc p = run_cli(gen_args("specsteer", 8, {"--cloud", a.address() + "," + b.address(), "--cloud-retries", "0"}));
    const json j = parse_json(p);
    EXPECT_EQ(p.rc, 0) << p.stderr_text();
    EXPECT_EQ(tokens_of(j), ref.tokens);
    EXPECT_EQ(j["resumed"], 0);
  }
  hold.join();
}

TEST(CloudTier, CloudListsBecomeOneBalancedChannelTarget) {
  using transport::channel_target;
  EXPECT_EQ(channel_target("127.0.0.1:7070"), "127.0.0.1:7070");
  EXPECT_EQ(channel_target("dns:///cloud.example:7070"), "dns:///cloud.example:7070");
  EXPECT_EQ(channel_target("127.0.0.1:7071,127.0.0.2:7072"), "ipv4:127.0.0.1:7071,127.0.0.2:7072");
  EXPECT_EQ(channel_target("[::1]:7071,127.0.0.1:7072"), "ipv6:[::1]:7071,[::ffff:127.0.0.1]:7072");
  for (const char* bad : {"127.0.0.1:7071,", "127.0.0.1:7071,:7072", "127.0.0.1:7071,host", "127.0.0.1:7071,h:0",
                          "127.0.0.1:7071,h:99999", "127.0.0.1:7071,no-such-host.invalid:7072"}) {
    SCOPED_TRACE(bad);
    try {
      channel_target(bad);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), testing::HasSubstr("--cloud"));
    }
  }
  EXPECT_TRUE(transport::is_loopback_target("127.0.0.1:1,[::1]:2,localhost:3"));
  EXPECT_FALSE(transport::is_loopback_target("127.0.0.1:1,10.0.0.2:2"));
}
