// A cloud that breaks the protocol mid-generation is a cloud failure: the
// edge keeps exactly the tokens decided before the bad reply and applies its
// CloudFailure policy. A real in-process cloud answers; a tampering
// transport rewrites its reply to the N-th DraftBlock.
#include <gtest/gtest.h>

#include <functional>

#include "common/error.h"
#include "steer/cloud.h"
#include "steer/edge.h"
#include "steer/reply_check.h"
#include "synth.h"

using namespace specsteer;
using namespace specsteer::steer;

namespace {

const synth::Pair kPair;
constexpr int V = synth::Pair::V;
const std::vector<int32_t>& kPersonalized = kPair.personalized;

std::unique_ptr<CloudService> make_cloud() { return kPair.cloud(); }

// A SessionAccept with only the session and the vocabulary set.
SessionAccept accept_of(uint64_t session, uint32_t n_vocab) {
  SessionAccept a;
  a.session = session;
  a.n_vocab = n_vocab;
  return a;
}

SessionOpen open_for(const Settings& s) { return kPair.open(s); }

// Forwards to the real cloud; replaces the reply to the (good_blocks + 1)-th
// request of the kind `victim` matches with tamper(reply).
class TamperingTransport final : public Transport {
 public:
  using Tamper = std::function<Message(const Message& request, Message reply)>;
  TamperingTransport(CloudService& cloud, size_t good_blocks, Tamper tamper, bool tamper_open = false)
      : inner_(cloud), good_(good_blocks), tamper_(std::move(tamper)), tamper_open_(tamper_open) {}
  size_t exchanges() const { return exchanges_; }
  std::vector<uint8_t> exchange(std::span<const uint8_t> request) override {
    const Message req = decode(request);
    std::vector<uint8_t> raw = inner_.exchange(request);
    const bool is_block = std::holds_alternative<DraftBlock>(req) || std::holds_alternative<StepRequest>(req);
    const bool hit = tamper_open_ ? std::holds_alternative<SessionOpen>(req) : (is_block && blocks_++ == good_);
    ++exchanges_;
    if (!hit) return raw;
    return encode(tamper_(req, decode(raw)));
  }

 private:
  InProcessTransport inner_;
  size_t good_, blocks_ = 0, exchanges_ = 0;
  Tamper tamper_;
  bool tamper_open_;
};

Settings all_accepting(Method m = Method::SpecSteer) {
  Settings s;
  s.method = m;
  s.max_new = 24;
  s.seed = 5;
  s.lambda = 1e-30;  // every draft accepted: the decided tokens are SLM+'s own
  return s;
}

RunResult run(const Settings& s, size_t good_blocks, const TamperingTransport::Tamper& tamper, CloudFailure policy,
              bool tamper_open = false) {
  auto cloud = make_cloud();
  TamperingTransport t(*cloud, good_blocks, tamper, tamper_open);
  auto edge = synth::source(V, kPair.slm);
  return run_edge(*edge, kPersonalized, t, open_for(s), [](int32_t) { return false; }, {}, policy);
}

std::vector<int32_t> slm_plus(int n) {
  Settings s = all_accepting(Method::SlmPlus);
  s.max_new = n;
  auto src = synth::source(V, kPair.slm);
  return run_local(*src, kPersonalized, s, [](int32_t) { return false; }).tokens;
}

struct Violation {
  const char* name;
  TamperingTransport::Tamper tamper;
  const char* says;  // in the reported error
};

Verdict rejected_at_zero(std::vector<IdValue> steer) {
  Verdict v;
  v.rejected = true;
  v.steer = std::move(steer);
  return v;
}

const std::vector<Violation>& violations() {
  static const std::vector<Violation> v = {
      {"n_accepted above the drafts",
       [](const Message& q, Message) {
         Verdict v;
         v.n_accepted = static_cast<uint32_t>(std::get<DraftBlock>(q).drafts.size() + 5);
         v.rejected = true;
         return Message(v);
       },
       "inconsistent"},
      {"rejected with every draft accepted",
       [](const Message& q, Message) {
         Verdict v;
         v.n_accepted = static_cast<uint32_t>(std::get<DraftBlock>(q).drafts.size());
         v.rejected = true;
         return Message(v);
       },
       "inconsistent"},
      {"CloseAck to a DraftBlock", [](const Message&, Message) { return Message(CloseAck{}); }, "expected Verdict"},
      {"SessionAccept to a DraftBlock", [](const Message&, Message) { return Message(accept_of(1, V)); },
       "expected Verdict"},
      {"ErrorReply mid-generation", [](const Message&, Message) { return Message(ErrorReply{"out of cheese"}); },
       "out of cheese"},
      {"steering longer than top_k",
       [](const Message&, Message) {
         std::vector<IdValue> s;
         for (int i = 0; i < 33; ++i) s.push_back({i, 1.0f});
         return Message(rejected_at_zero(s));
       },
       "more than the 32 requested"},
      {"duplicate steering ids",
       [](const Message&, Message) { return Message(rejected_at_zero({{5, 1.0f}, {7, 0.5f}, {5, 2.0f}})); },
       "id 5 more than once"},
      {"steering id outside the vocabulary",
       [](const Message&, Message) { return Message(rejected_at_zero({{V, 1.0f}})); }, "out of range"},
  };
  return v;
}

}  // namespace

TEST(CloudFailure, EachViolationAfterGoodBlocksKeepsExactlyTheDecidedTokens) {
  const Settings s = all_accepting();
  const auto plus = slm_plus(s.max_new);
  ASSERT_EQ(plus.size(), 24u);
  constexpr size_t kGood = 3;  // 3 blocks of K = 4 accepted: 12 tokens decided
  const size_t decided = kGood * static_cast<size_t>(s.draft);
  for (const auto& v : violations()) {
    SCOPED_TRACE(v.name);
    const RunResult fail = run(s, kGood, v.tamper, CloudFailure::Fail);
    EXPECT_EQ(fail.stop_reason, "cloud_error");
    ASSERT_TRUE(fail.cloud_failed_at);
    EXPECT_EQ(*fail.cloud_failed_at, decided);
    EXPECT_EQ(fail.tokens, std::vector<int32_t>(plus.begin(), plus.begin() + decided));
    EXPECT_NE(fail.cloud_error.find(v.says), std::string::npos) << fail.cloud_error;

    const RunResult fb = run(s, kGood, v.tamper, CloudFailure::Fallback);
    ASSERT_TRUE(fb.cloud_failed_at);
    EXPECT_EQ(*fb.cloud_failed_at, decided);
    EXPECT_EQ(fb.tokens, plus);  // accepted SLM+ drafts, then SLM+ alone
  }
}

TEST(CloudFailure, StepMethodsViolationsAreCloudFailures) {
  Settings s = all_accepting(Method::LightCoSteer);
  s.max_new = 10;
  const auto too_long = [](const Message&, Message) {
    StepReply r;
    for (int i = 0; i < 40; ++i) r.steer.push_back({i, 0.1f});
    return Message(r);
  };
  const RunResult light = run(s, 4, too_long, CloudFailure::Fail);
  ASSERT_TRUE(light.cloud_failed_at);
  EXPECT_EQ(light.tokens.size(), *light.cloud_failed_at);
  EXPECT_NE(light.cloud_error.find("StepReply.steer has 40 entries"), std::string::npos) << light.cloud_error;

  s.method = Method::CoSteer;
  const auto short_vector = [](const Message&, Message reply) {
    auto r = std::get<StepReply>(reply);
    r.llm_logprobs.pop_back();
    return Message(r);
  };
  const RunResult co = run(s, 2, short_vector, CloudFailure::Fail);
  ASSERT_TRUE(co.cloud_failed_at);
  EXPECT_EQ(*co.cloud_failed_at, 2u);
  EXPECT_NE(co.cloud_error.find("vector has 63 entries"), std::string::npos) << co.cloud_error;
}

TEST(CloudFailure, WrongReplyToSessionOpenFallsBackFromTheStart) {
  const Settings s = all_accepting();
  const auto plus = slm_plus(s.max_new);
  const std::vector<std::pair<TamperingTransport::Tamper, const char*>> cases = {
      {[](const Message&, Message) { return Message(accept_of(1, 1000000000)); }, "n_vocab 1000000000"},
      {[](const Message&, Message) { return Message(rejected_at_zero({})); }, "expected SessionAccept"},
  };
  for (const auto& [tamper, says] : cases) {
    SCOPED_TRACE(says);
    const RunResult r = run(s, 0, tamper, CloudFailure::Fallback, /*tamper_open=*/true);
    ASSERT_TRUE(r.cloud_failed_at);
    EXPECT_EQ(*r.cloud_failed_at, 0u);
    EXPECT_NE(r.cloud_error.find(says), std::string::npos) << r.cloud_error;
    EXPECT_EQ(r.tokens, plus);
  }
}

TEST(CloudFailure, ACheckedTransportStopsTalkingAfterAViolation) {
  auto cloud = make_cloud();
  const SessionOpen open = open_for(all_accepting());
  TamperingTransport t(*cloud, 0, [](const Message&, Message) { return Message(CloseAck{}); });
  CheckedTransport checked(t, open);
  const auto accept = std::get<SessionAccept>(decode(checked.exchange(encode(open))));
  EXPECT_THROW(checked.exchange(encode(DraftBlock{accept.session, {}, {1, 2}, {}})), CloudProtocolError);
  // The Close after a violation is not sent: a misbehaving cloud is not waited on.
  const size_t sent = t.exchanges();
  EXPECT_THROW(checked.exchange(encode(Close{accept.session})), CloudProtocolError);
  EXPECT_EQ(t.exchanges(), sent);

  const DraftBlock two{accept.session, {}, {1, 2}, {}};
  EXPECT_NO_THROW(check_reply(open, two, Verdict{1, true, {{3, 1.0f}}, {}}));
  EXPECT_NO_THROW(check_reply(open, two, Verdict{2, false, {}, {}}));
  EXPECT_THROW(check_reply(open, two, Verdict{2, false, {{3, 1.0f}, {3, 1.0f}}, {}}), CloudProtocolError);
  EXPECT_THROW(check_reply(open, two, Verdict{1, false, {}, {}}), CloudProtocolError);
  EXPECT_THROW(check_reply(open, two, Verdict{0, true, {{-1, 1.0f}}, {}}), CloudProtocolError);
  EXPECT_THROW(check_reply(open, Close{accept.session}, Verdict{}), CloudProtocolError);
  EXPECT_NO_THROW(check_reply(open, open, ErrorReply{"refused"}));  // a refused session: reported by the caller
  EXPECT_THROW(check_reply(open, two, ErrorReply{"gone"}), CloudProtocolError);
}

namespace {
// A cloud that cannot be reached at all.
class UnreachableTransport final : public Transport {
 public:
  std::vector<uint8_t> exchange(std::span<const uint8_t>) override {
    throw TransportError("cloud 127.0.0.1:1: UNAVAILABLE: cannot connect");
  }
};
}  // namespace

TEST(CloudFailure, ByDefaultACloudThatNeverOpensTheSessionIsAnError) {
  const Settings s = all_accepting();
  const auto bad_accept = [](const Message&, Message) { return Message(accept_of(1, 1000000000)); };
  // The default policy: nothing generated, the run says the cloud failed at the open.
  const RunResult r = run(s, 0, bad_accept, CloudFailure::FallbackAfterOpen, /*tamper_open=*/true);
  EXPECT_EQ(r.stop_reason, "cloud_error");
  EXPECT_TRUE(r.cloud_failed_at_open);
  EXPECT_TRUE(r.tokens.empty());
  UnreachableTransport dead;
  auto edge = synth::source(V, kPair.slm);
  const RunResult u = run_edge(*edge, kPersonalized, dead, open_for(s), [](int32_t) { return false; });
  EXPECT_EQ(u.stop_reason, "cloud_error") << "the default policy of run_edge";
  EXPECT_TRUE(u.cloud_failed_at_open);
  EXPECT_NE(u.cloud_error.find("UNAVAILABLE"), std::string::npos);
  // Asked for explicitly, the edge runs alone from the start.
  auto edge2 = synth::source(V, kPair.slm);
  const RunResult f =
      run_edge(*edge2, kPersonalized, dead, open_for(s), [](int32_t) { return false; }, {}, CloudFailure::Fallback);
  EXPECT_TRUE(f.cloud_failed_at_open);
  EXPECT_EQ(f.tokens, slm_plus(s.max_new));
  // A cloud lost after the open still falls back by default.
  const RunResult mid = run(s, 2, [](const Message&, Message) { return Message(CloseAck{}); },
                            CloudFailure::FallbackAfterOpen);
  ASSERT_TRUE(mid.cloud_failed_at);
  EXPECT_FALSE(mid.cloud_failed_at_open);
  EXPECT_NE(mid.stop_reason, "cloud_error");
  EXPECT_EQ(mid.tokens, slm_plus(s.max_new));
}

TEST(CloudFailure, SessionAcceptIsCheckedAgainstTheOpen) {
  const SessionOpen ids = open_for(all_accepting());  // x as ids, both models named
  auto accept = [](uint32_t n_vocab, ModelIdentity llm, uint32_t xl, uint32_t xs, std::vector<int32_t> eog = {}) {
    SessionAccept a;
    a.session = 1;
    a.n_vocab = n_vocab;
    a.llm = std::move(llm);
    a.x_llm_tokens = xl;
    a.x_slm_tokens = xs;
    a.eog = std::move(eog);
    return Message(a);
  };
  const ModelIdentity llm{"llm", "synth", V, 1};
  EXPECT_NO_THROW(check_reply(ids, ids, accept(V, llm, 3, 3, {0, 63})));
  EXPECT_THROW(check_reply(ids, ids, accept(V, {"other", "synth", V, 9}, 3, 3)), CloudProtocolError);
  EXPECT_THROW(check_reply(ids, ids, accept(V, llm, 4, 3)), CloudProtocolError);  // not the ids sent
  EXPECT_THROW(check_reply(ids, ids, accept(V, llm, 3, 3, {64})), CloudProtocolError);  // EOG outside the vocabulary
  // An edge with only its small model: x as text, no LLM named. The shared
  // range is the smaller of its vocabulary and the announced LLM's.
  SessionOpen text = ids;
  text.llm = {};
  text.x_llm.clear();
  text.x_slm.clear();
  text.x_text = "x";
  EXPECT_NO_THROW(check_reply(text, text, accept(V, {"big", "synth", 2 * V, 7}, 5, 5)));
  EXPECT_THROW(check_reply(text, text, accept(2 * V, {"big", "synth", 2 * V, 7}, 5, 5)), CloudProtocolError);
  EXPECT_THROW(check_reply(text, text, accept(V, {"big", "synth", 2 * V, 7}, 0, 5)), CloudProtocolError);
}

TEST(CloudFailure, TheCloudReadsXAsTextOnlyWithTokenizers) {
  // A cloud over synthetic models has no tokenizer: x as text is refused
  // with a reason, x as ids is answered with its lengths.
  auto cloud = make_cloud();
  SessionOpen text = open_for(all_accepting());
  text.x_llm.clear();
  text.x_slm.clear();
  text.x_text = "hello";
  const Message refused = decode(cloud->handle(encode(text)));
  ASSERT_TRUE(std::holds_alternative<ErrorReply>(refused));
  EXPECT_NE(std::get<ErrorReply>(refused).message.find("no tokenizers"), std::string::npos);
  const Message ok = decode(cloud->handle(encode(open_for(all_accepting()))));
  ASSERT_TRUE(std::holds_alternative<SessionAccept>(ok));
  EXPECT_EQ(std::get<SessionAccept>(ok).x_llm_tokens, kPair.x.size());
  EXPECT_EQ(std::get<SessionAccept>(ok).llm.fingerprint, 1u);
}
