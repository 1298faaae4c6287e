// The edge against a scripted fake cloud: a gRPC server implementing
// specsteer.v1.Cloud in this process that answers N draft blocks correctly
// (every draft accepted, so the decided tokens are SLM+'s own) and then
// misbehaves on cue. Whatever it does, the edge keeps the decided tokens and
// applies --on-cloud-failure; it never hangs and never exits with nothing.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "steer/generate.h"
#include "transport/client.h"
#include "transport/specsteer.grpc.pb.h"

using namespace specsteer;
using namespace specsteer::steer;
namespace fs = std::filesystem;

extern char** environ;

namespace {

std::string fixture(const std::string& name) {
  return std::string(SPECSTEER_FIXTURES) + "/golden/" + name + "/" + name + ".gguf";
}
const std::string kLlm = fixture("tiny-qwen3-f32");
const std::string kSlm = fixture("tiny-qwen3-q8_0");
#define NEED_FIXTURES() \
  if (!fs::exists(kLlm) || !fs::exists(kSlm)) GTEST_SKIP() << "no shared fixtures"

const Models& models() {
  static Models m = Models::load(kLlm, kSlm, {.n_threads = 1});
  return m;
}

const std::string kInput = "Write a short review of the film you saw this weekend.";
const std::string kPrivate = "Private notes: I loved the soundtrack and I always mention the director.";
constexpr int kN = 24;        // tokens asked for
constexpr size_t kGood = 2;   // blocks answered correctly before the misbehaviour
constexpr size_t kK = 4;      // drafts per block
constexpr size_t kDecided = kGood * kK;

GenerateRequest request(Method m = Method::SpecSteer) {
  GenerateRequest r;
  r.x = kInput;
  r.personalized = kPrivate + "\n\n" + kInput;
  r.settings.method = m;
  r.settings.max_new = kN;
  r.settings.draft = static_cast<int>(kK);
  r.settings.seed = 7;
  return r;
}

enum class Act {
  Silent,               // never answers the block (connection kept alive)
  TooManyAccepted,      // Verdict.n_accepted > drafts
  RejectedAllAccepted,  // rejected with n_accepted == drafts
  CloseAckToDraft,      // a CloseAck in reply to a DraftBlock
  AcceptToDraft,        // a second SessionAccept
  HugeSteer,            // 3,000,000 steering entries
  DuplicateSteer,       // the same id twice
  TooManySteer,         // top_k + 1 entries (under the size limit)
  VerdictBeforeAccept,  // a Verdict in reply to SessionOpen
  WrongVocab,           // SessionAccept.n_vocab = 10^9
};

class FakeCloud final : public v1::Cloud::Service {
 public:
  FakeCloud(Act act, uint32_t n_vocab) : act_(act), n_vocab_(n_vocab) {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.SetMaxSendMessageSize(-1);
    b.RegisterService(this);
    server_ = b.BuildAndStart();
  }
  ~FakeCloud() override {
    stop_ = true;
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  bool ok() const { return server_ && port_ > 0; }

  grpc::Status Generate(grpc::ServerContext* ctx,
                        grpc::ServerReaderWriter<v1::CloudMessage, v1::EdgeMessage>* stream) override {
    v1::EdgeMessage in;
    if (!stream->Read(&in) || !in.has_open()) return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "no open");
    const uint32_t top_k = in.open().settings().top_k();
    const v1::SessionOpen open = in.open();
    // A well-formed protocol-2 SessionAccept for this open (x's lengths are
    // made up: this cloud computes nothing).
    auto accept = [&](v1::SessionAccept* a, uint32_t n_vocab) {
      a->set_version(steer::kProtocolVersion);
      a->set_session(7);
      a->set_n_vocab(n_vocab);
      *a->mutable_llm() = open.llm();
      a->set_x_llm_tokens(open.x_text().empty() ? static_cast<uint32_t>(open.x_llm_size()) : 16);
      a->set_x_slm_tokens(open.x_text().empty() ? static_cast<uint32_t>(open.x_slm_size()) : 16);
    };
    v1::CloudMessage out;
    if (act_ == Act::VerdictBeforeAccept) {
      out.mutable_verdict()->set_rejected(true);
    } else {
      accept(out.mutable_accept(), act_ == Act::WrongVocab ? 1000000000u : n_vocab_);
    }
    stream->Write(out);
    size_t blocks = 0;
    while (stream->Read(&in)) {
      out.Clear();
      if (in.has_close()) {
        out.mutable_close_ack();
        stream->Write(out);
        return grpc::Status::OK;
      }
      const uint32_t n = static_cast<uint32_t>(in.draft().drafts_size());
      auto* v = out.mutable_verdict();
      if (blocks++ < kGood) {
        v->set_n_accepted(n);
      } else {
        switch (act_) {
          case Act::Silent:
            while (!ctx->IsCancelled() && !stop_) std::this_thread::sleep_for(std::chrono::milliseconds(10));
            return grpc::Status::CANCELLED;
          case Act::TooManyAccepted:
            v->set_n_accepted(n + 5);
            v->set_rejected(true);
            break;
          case Act::RejectedAllAccepted:
            v->set_n_accepted(n);
            v->set_rejected(true);
            break;
          case Act::CloseAckToDraft:
            out.mutable_close_ack();
            break;
          case Act::AcceptToDraft:
            accept(out.mutable_accept(), n_vocab_);
            break;
          case Act::HugeSteer:
          case Act::DuplicateSteer:
          case Act::TooManySteer: {
            v->set_rejected(true);
            const int entries = act_ == Act::HugeSteer ? 3000000 : act_ == Act::TooManySteer ? top_k + 1 : 2;
            for (int i = 0; i < entries; ++i) {
              auto* e = v->add_steer();
              e->set_id(act_ == Act::DuplicateSteer ? 5 : i % static_cast<int>(n_vocab_));
              e->set_value(1.0f);
            }
            break;
          }
          default:
            v->set_n_accepted(n);
        }
      }
      if (!stream->Write(out)) break;
    }
    return grpc::Status::OK;
  }

 private:
  Act act_;
  uint32_t n_vocab_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::unique_ptr<grpc::Server> server_;
};

uint32_t shared_vocab() {
  return static_cast<uint32_t>(std::min(models().llm->config().n_vocab, models().slm->config().n_vocab));
}

// retries 0: the failure policy alone (a resumed session would meet the same
// fake again, which ignores the resume point).
GenerationResult run_against(const FakeCloud& cloud, CloudFailure policy, double timeout_s = 30, int retries = 0) {
  transport::ClientOptions o;
  o.target = cloud.address();
  o.exchange_timeout_s = timeout_s;
  transport::GrpcTransport link(o);
  auto req = request();
  req.cloud = &link;
  req.on_cloud_failure = policy;
  req.cloud_retries = retries;
  return generate(models(), req);
}

const std::vector<int32_t>& slm_plus() {
  static const auto t = generate(models(), request(Method::SlmPlus)).tokens;
  return t;
}

// Both policies after kGood good blocks: fail keeps exactly the decided
// tokens, fallback continues them with SLM+ alone (= the SLM+ output here).
void expect_kept(const FakeCloud& cloud, const std::string& says, double timeout_s = 30) {
  ASSERT_EQ(slm_plus().size(), static_cast<size_t>(kN)) << "the check needs SLM+ to run to -n";
  const auto fail = run_against(cloud, CloudFailure::Fail, timeout_s);
  EXPECT_EQ(fail.stop_reason, "cloud_error");
  ASSERT_TRUE(fail.cloud_failed_at) << "no cloud failure reported";
  EXPECT_EQ(*fail.cloud_failed_at, kDecided);
  EXPECT_EQ(fail.tokens, std::vector<int32_t>(slm_plus().begin(), slm_plus().begin() + kDecided));
  EXPECT_NE(fail.cloud_error.find(says), std::string::npos) << fail.cloud_error;
  const auto fb = run_against(cloud, CloudFailure::Fallback, timeout_s);
  ASSERT_TRUE(fb.cloud_failed_at);
  EXPECT_EQ(*fb.cloud_failed_at, kDecided);
  EXPECT_EQ(fb.tokens, slm_plus());
}

#define START_FAKE(var, act)                 \
  NEED_FIXTURES();                           \
  FakeCloud var(act, shared_vocab());        \
  ASSERT_TRUE(var.ok())

}  // namespace

TEST(FakeCloud, ProtocolViolationsAfterGoodBlocksKeepTheDecidedTokens) {
  NEED_FIXTURES();
  const std::vector<std::pair<Act, std::string>> cases = {
      {Act::TooManyAccepted, "Verdict.n_accepted 9 (rejected) inconsistent with 4 drafts"},
      {Act::RejectedAllAccepted, "inconsistent with 4 drafts"},
      {Act::CloseAckToDraft, "expected Verdict in reply to DraftBlock, got CloseAck"},
      {Act::AcceptToDraft, "expected Verdict in reply to DraftBlock, got SessionAccept"},
  };
  for (const auto& [act, says] : cases) {
    SCOPED_TRACE(says);
    FakeCloud cloud(act, shared_vocab());
    ASSERT_TRUE(cloud.ok());
    expect_kept(cloud, says);
  }
}

TEST(FakeCloud, OversizedSteeringIsRefusedByTheReceiveLimit) {
  START_FAKE(cloud, Act::HugeSteer);
  expect_kept(cloud, "RESOURCE_EXHAUSTED");
  // The limit is sized from k, K and (for sd/costeer) the vocabulary.
  SessionOpen open;
  open.llm.n_vocab = open.slm.n_vocab = 1000;
  open.settings.top_k = 32;
  open.settings.draft = 4;
  const int specsteer_limit = transport::max_reply_bytes(open);
  EXPECT_LT(specsteer_limit, 3000000);
  open.settings.method = Method::CoSteer;
  EXPECT_GE(transport::max_reply_bytes(open), specsteer_limit + 2 * 4 * 1000);
}

TEST(FakeCloud, DuplicateOrTooManySteeringIdsAreRefused) {
  NEED_FIXTURES();
  for (const auto& [act, says] : std::vector<std::pair<Act, std::string>>{
           {Act::DuplicateSteer, "Verdict.steer holds id 5 more than once"},
           {Act::TooManySteer, "Verdict.steer has 33 entries, more than the 32 requested"}}) {
    SCOPED_TRACE(says);
    FakeCloud cloud(act, shared_vocab());
    ASSERT_TRUE(cloud.ok());
    expect_kept(cloud, says);
  }
}

TEST(FakeCloud, SilentCloudHitsTheDeadlineAndKeepsTheDecidedTokens) {
  START_FAKE(cloud, Act::Silent);
  // (A broken deadline hangs here until ctest's own timeout.)
  expect_kept(cloud, "DEADLINE_EXCEEDED: no reply to DraftBlock within 0.5 s", 0.5);
}

// A deadline is an outage: by default the edge opens a new session with the
// decided tokens as its resume point (this fake answers it like a new one).
TEST(FakeCloud, SilentCloudIsResumedByDefault) {
  START_FAKE(cloud, Act::Silent);
  const auto r = run_against(cloud, CloudFailure::Fail, 0.5, 2);
  EXPECT_GE(r.counters.resumed, 1u);
  EXPECT_GE(r.counters.resume_tokens, static_cast<uint64_t>(kDecided));
  ASSERT_GE(r.tokens.size(), static_cast<size_t>(kDecided));
  EXPECT_EQ(std::vector<int32_t>(r.tokens.begin(), r.tokens.begin() + kDecided),
            std::vector<int32_t>(slm_plus().begin(), slm_plus().begin() + kDecided));
}

TEST(FakeCloud, BadReplyToSessionOpenRunsTheEdgeAlone) {
  NEED_FIXTURES();
  for (const auto& [act, says] : std::vector<std::pair<Act, std::string>>{
           {Act::VerdictBeforeAccept, "expected SessionAccept in reply to SessionOpen, got Verdict"},
           {Act::WrongVocab, "SessionAccept.n_vocab 1000000000 differs"}}) {
    SCOPED_TRACE(says);
    FakeCloud cloud(act, shared_vocab());
    ASSERT_TRUE(cloud.ok());
    const auto r = run_against(cloud, CloudFailure::Fallback);
    ASSERT_TRUE(r.cloud_failed_at);
    EXPECT_EQ(*r.cloud_failed_at, 0u);
    EXPECT_NE(r.cloud_error.find(says), std::string::npos) << r.cloud_error;
    EXPECT_EQ(r.tokens, slm_plus());
  }
}

TEST(FakeCloud, CliWithASilentCloudPrintsTheTextWithinTheDeadline) {
  START_FAKE(cloud, Act::Silent);
  const fs::path out = fs::path(::testing::TempDir()) / "fake_cloud_cli.out";
  const fs::path err = fs::path(::testing::TempDir()) / "fake_cloud_cli.err";
  std::vector<std::string> args = {SPECSTEER_CLI, "generate", "--llm", kLlm, "--slm", kSlm, "--method", "specsteer",
                                   "--input", kInput, "--private-context", kPrivate, "-n", std::to_string(kN),
                                   "--draft", std::to_string(kK), "--seed", "7", "-t", "1", "--json",
                                   "--cloud", cloud.address(), "--cloud-timeout", "1", "--on-cloud-failure", "fail",
                                   "--cloud-retries", "0"};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid;
  ASSERT_EQ(posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  int status = 0;
  waitpid(pid, &status, 0);
  std::stringstream o, e;
  o << std::ifstream(out).rdbuf();
  e << std::ifstream(err).rdbuf();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << "--on-cloud-failure fail exits non-zero";
  const auto j = nlohmann::json::parse(o.str(), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << o.str() << e.str();
  EXPECT_EQ(j["cloud_failed_at_token"], kDecided);
  EXPECT_EQ(j["tokens"].get<std::vector<int32_t>>(),
            std::vector<int32_t>(slm_plus().begin(), slm_plus().begin() + kDecided));
  EXPECT_NE(e.str().find("DEADLINE_EXCEEDED"), std::string::npos) << e.str();
}
