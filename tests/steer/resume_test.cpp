// Session resumption: when the link to the cloud fails mid-generation the edge
// opens a new session whose resume point is the tokens the lost one agreed
// on; the cloud prefills x + those and draws its accept tests by (seed,
// position), so the generation goes on exactly as if it had never been cut.
// A flaky in-process transport loses chosen exchanges (before or after the
// cloud handled them) and can reopen, as the network transport does.
#include <gtest/gtest.h>

#include <set>

#include "common/error.h"
#include "steer/cloud.h"
#include "steer/edge.h"
#include "flaky_transport.h"
#include "synth.h"

using namespace specsteer;
using namespace specsteer::steer;
using specsteer::steer::test_support::FlakyTransport;

namespace {

const synth::Pair kPair;
constexpr int V = synth::Pair::V;
const std::vector<int32_t>& kX = kPair.x;
const std::vector<int32_t>& kPersonalized = kPair.personalized;

std::unique_ptr<CloudService> make_cloud() { return kPair.cloud(); }
SessionOpen open_for(const Settings& s) { return kPair.open(s); }

Settings settings(Method m, bool sampled) {
  Settings s;
  s.method = m;
  s.max_new = 40;
  s.seed = 9;
  s.lambda = 0.5;
  s.draft = 4;
  if (sampled) s.sampler.temperature = 0.9;
  return s;
}

RunResult run(const Settings& s, Transport& t, CloudFailurePolicy policy = {}) {
  auto edge = synth::source(V, kPair.slm);
  return run_edge(*edge, kPersonalized, t, open_for(s), [](int32_t) { return false; }, {}, policy);
}

RunResult uninterrupted(const Settings& s) {
  auto cloud = make_cloud();
  InProcessTransport t(*cloud);
  return run(s, t);
}

}  // namespace

TEST(Resume, EveryMethodContinuesTokenIdenticalAfterLostExchanges) {
  for (Method m : {Method::SpecSteer, Method::Sd, Method::LightCoSteer, Method::CoSteer}) {
    for (bool sampled : {false, true}) {
      for (bool after : {false, true}) {
        SCOPED_TRACE(std::string(method_name(m)) + (sampled ? " sampled" : " greedy") +
                     (after ? ", replies lost" : ", requests lost"));
        const Settings s = settings(m, sampled);
        const RunResult ref = uninterrupted(s);
        ASSERT_EQ(ref.tokens.size(), 40u);
        ASSERT_GT(ref.counters.rejections + (m == Method::LightCoSteer || m == Method::CoSteer ? 1 : 0), 0u)
            << "the check needs rejections";
        auto cloud = make_cloud();
        // Exchange 2 and 6 (blocks or steps), and the first one after the
        // second resumption's open.
        FlakyTransport t(*cloud, {2, 6, 8}, after);
        const RunResult r = run(s, t, {CloudFailure::Fail, 3});
        EXPECT_EQ(r.tokens, ref.tokens);
        EXPECT_FALSE(r.cloud_failed_at) << r.cloud_error;
        EXPECT_EQ(r.stop_reason, ref.stop_reason);
        EXPECT_EQ(r.counters.resumed, 3u);
        EXPECT_EQ(t.reopened(), 3);
        // Each resume point is a prefix of the output: only tokens already decided travel.
        ASSERT_EQ(t.resume_points().size(), 4u);
        EXPECT_TRUE(t.resume_points()[0].empty());
        uint64_t sum = 0;
        for (const auto& p : t.resume_points()) {
          ASSERT_LE(p.size(), ref.tokens.size());
          EXPECT_TRUE(std::equal(p.begin(), p.end(), ref.tokens.begin()));
          sum += p.size();
        }
        EXPECT_EQ(r.counters.resume_tokens, sum);
        EXPECT_EQ(r.counters.n_accepted, ref.counters.n_accepted);
      }
    }
  }
}

TEST(Resume, AFailedOpenIsRetriedToo) {
  const Settings s = settings(Method::SpecSteer, true);
  const RunResult ref = uninterrupted(s);
  auto cloud = make_cloud();
  FlakyTransport t(*cloud, {0}, false);
  const RunResult r = run(s, t);
  EXPECT_EQ(r.tokens, ref.tokens);
  EXPECT_FALSE(r.cloud_failed_at);
  EXPECT_EQ(t.reopened(), 1);
  EXPECT_EQ(r.counters.resumed, 0u) << "a retried open resumes nothing";
}

TEST(Resume, RetriesAreBoundedThenThePolicyApplies) {
  const Settings s = settings(Method::SpecSteer, false);
  const RunResult ref = uninterrupted(s);
  auto cloud = make_cloud();
  // Every exchange from the third on is lost: two reopenings, then fallback.
  std::set<size_t> all;
  for (size_t i = 2; i < 100; ++i) all.insert(i);
  FlakyTransport t(*cloud, all, false);
  const RunResult r = run(s, t, {CloudFailure::Fallback, 2});
  EXPECT_EQ(t.reopened(), 2);
  ASSERT_TRUE(r.cloud_failed_at);
  EXPECT_EQ(r.tokens.size(), 40u);
  EXPECT_TRUE(std::equal(r.tokens.begin(), r.tokens.begin() + static_cast<ptrdiff_t>(*r.cloud_failed_at),
                         ref.tokens.begin()));
  // --cloud-retries 0: the policy at once.
  auto cloud2 = make_cloud();
  FlakyTransport t2(*cloud2, {2}, false);
  const RunResult r2 = run(s, t2, {CloudFailure::Fail, 0});
  EXPECT_EQ(t2.reopened(), 0);
  EXPECT_EQ(r2.stop_reason, "cloud_error");
}

TEST(Resume, RefusalsAndTransportsThatCannotReopenAreNotRetried) {
  const Settings s = settings(Method::SpecSteer, false);
  for (const bool resumable : {false, true}) {
    auto cloud = make_cloud();
    FlakyTransport t(*cloud, {2}, false, resumable, /*can_reopen=*/resumable ? false : true);
    const RunResult r = run(s, t, {CloudFailure::Fail, 2});
    EXPECT_EQ(t.reopened(), 0);
    EXPECT_EQ(r.stop_reason, "cloud_error");
  }
}

TEST(Resume, CloudPrefillsTheResumePointAndChecksIt) {
  const Settings s = settings(Method::SpecSteer, false);
  const RunResult ref = uninterrupted(s);
  auto cloud = make_cloud();
  SessionOpen o = open_for(s);
  o.resume.assign(ref.tokens.begin(), ref.tokens.begin() + 10);
  InProcessTransport t(*cloud);
  const auto accept = std::get<SessionAccept>(decode(t.exchange(encode(o))));
  // The resumed session's caches hold x + the 10 decided tokens.
  const Cloud* c = cloud->session(accept.session);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->llm().size(), kX.size() + 10);
  EXPECT_EQ(c->slm_minus().size(), kX.size() + 10);
  // A resume point longer than max_new, or with ids outside the vocabulary, is refused by name.
  SessionOpen bad = o;
  bad.resume.assign(41, 1);
  auto reply = decode(cloud->handle(encode(bad)));
  ASSERT_TRUE(std::holds_alternative<ErrorReply>(reply));
  EXPECT_NE(std::get<ErrorReply>(reply).message.find("resume"), std::string::npos);
  bad.resume = {1, 99};
  EXPECT_THROW(decode(encode(bad), DecodeLimits{.n_vocab = V}), Error);
}
