#include "steer/messages.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "common/error.h"
#include "sampling/sampling.h"

using namespace specsteer;
using namespace specsteer::steer;

namespace {

SessionOpen sample_open() {
  SessionOpen o;
  o.llm = {"tiny-llm", "qwen3", 151936, 0x1234567890abcdefull};
  o.slm = {"tiny-slm", "qwen2", 151936, 42};
  o.x_llm = {1, 2, 3, 151935, 0};
  o.x_slm = {1, 2, 3, 151935, 0};
  o.settings.method = Method::SpecSteer;
  o.settings.lambda = 0.1;
  o.settings.beta = 1.5;
  o.settings.draft = 6;
  o.settings.top_k = 16;
  o.settings.seed = 0xfeedfacecafebeefull;
  o.settings.sampler.temperature = 0.7;
  o.settings.sampler.top_p = 0.9;
  o.settings.bonus = true;
  o.settings.steer_candidates = SteerCandidates::Plausible;
  o.settings.plausibility = 0.25;
  return o;
}

std::vector<Message> samples() {
  std::vector<Message> v;
  v.push_back(sample_open());
  SessionOpen o2 = sample_open();
  o2.x_slm = {9, 8};
  o2.settings.method = Method::CoSteer;
  v.push_back(o2);
  SessionAccept short_accept;
  short_accept.session = 77;
  short_accept.n_vocab = 151936;
  v.push_back(short_accept);
  SessionOpen text = sample_open();  // protocol 2: x as text, no LLM named
  text.llm = {};
  text.x_llm.clear();
  text.x_slm.clear();
  text.x_text = "Write a review of \"Dune\" \xE2\x80\x94 in 3 lines.";
  text.chat = false;
  text.system = "Answer in French.";
  v.push_back(text);
  SessionAccept full{78, 151936, {"tiny-llm", "qwen3", 151936, 99}, 40, 41, {151643, 151645}, 4096, kProtocolVersion};
  v.push_back(full);
  v.push_back(DraftBlock{77, {5}, {1, 2, 300, 4}, {}});
  v.push_back(DraftBlock{77, {}, {1, 2}, {0.5f, 1.0f}});
  Verdict vd;
  vd.n_accepted = 2;
  vd.rejected = true;
  vd.steer = {{10, 1.5f}, {3, -2.25f}};
  v.push_back(vd);
  Verdict vt;
  vt.n_accepted = 0;
  vt.rejected = true;
  vt.target = {{4, 0.25f}, {9, 0.75f}};
  v.push_back(vt);
  v.push_back(StepRequest{3, {42}});
  StepReply sr;
  sr.steer = {{1, 0.5f}};
  v.push_back(sr);
  v.push_back(Close{9});
  v.push_back(CloseAck{1000, 2000});
  v.push_back(ErrorReply{"boom"});
  return v;
}

SessionAccept short_accept_of(uint64_t session, uint32_t n_vocab) {
  SessionAccept a;
  a.session = session;
  a.n_vocab = n_vocab;
  return a;
}

bool same(const Message& a, const Message& b) { return encode(a) == encode(b); }

}  // namespace

TEST(Codec, RoundTripsEveryMessage) {
  for (const auto& m : samples()) {
    auto bytes = encode(m);
    Message back = decode(bytes);
    EXPECT_EQ(back.index(), m.index()) << message_name(m);
    EXPECT_TRUE(same(back, m)) << message_name(m);
  }
  auto o = std::get<SessionOpen>(decode(encode(sample_open())));
  EXPECT_EQ(o.settings.seed, 0xfeedfacecafebeefull);
  EXPECT_DOUBLE_EQ(o.settings.lambda, 0.1);
  EXPECT_EQ(o.x_slm, o.x_llm);
  EXPECT_EQ(o.llm.fingerprint, 0x1234567890abcdefull);
  EXPECT_EQ(o.settings.steer_candidates, SteerCandidates::Plausible);
  EXPECT_DOUBLE_EQ(o.settings.plausibility, 0.25);
  SessionOpen c = sample_open();
  c.settings.steer_candidates = SteerCandidates::Contrast;
  c.settings.method = Method::LlmPlus;  // a local method still encodes (the cloud refuses it, not the codec)
  auto back = std::get<SessionOpen>(decode(encode(c)));
  EXPECT_EQ(back.settings.steer_candidates, SteerCandidates::Contrast);
  EXPECT_EQ(back.settings.method, Method::LlmPlus);
}

TEST(Codec, SteeringCandidateSettingsAreValidated) {
  SessionOpen o = sample_open();
  o.settings.plausibility = 1.5;
  try {
    decode(encode(o));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("plausibility"), std::string::npos) << e.what();
  }
  // An unknown rule byte: the second-to-last settings field (a u8 before the
  // f64 gamma), followed by the empty resume and history lists and the two
  // empty cache keys (one count byte each).
  auto bytes = encode(sample_open());
  bytes[bytes.size() - 13] = 7;
  try {
    decode(bytes);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("steer_candidates"), std::string::npos) << e.what();
  }
}

TEST(Codec, DraftBlockIsCompact) {
  // Four small ids: type + session + two counts + ids + empty probs.
  auto bytes = encode(DraftBlock{1, {}, {10, 20, 30, 40}, {}});
  EXPECT_EQ(bytes.size(), 1u + 1 + 1 + 1 + 4 + 1);
  // Large Qwen ids take 3 bytes each.
  EXPECT_EQ(encode(DraftBlock{1, {}, {151000}, {}}).size(), 1u + 1 + 1 + 1 + 3 + 1);
}

TEST(Codec, EveryTruncationIsRejected) {
  for (const auto& m : samples()) {
    auto bytes = encode(m);
    for (size_t n = 0; n < bytes.size(); ++n) {
      std::span<const uint8_t> cut(bytes.data(), n);
      EXPECT_THROW(decode(cut), Error) << message_name(m) << " cut at " << n;
    }
  }
}

TEST(Codec, RandomCorruptionNeverCrashes) {
  sampling::Rng rng(7);
  size_t rejected = 0, total = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    for (const auto& m : samples()) {
      auto bytes = encode(m);
      const int flips = 1 + static_cast<int>(rng.next_u64() % 4);
      for (int f = 0; f < flips; ++f) bytes[rng.next_u64() % bytes.size()] = static_cast<uint8_t>(rng.next_u64());
      if (rng.next_u64() % 3 == 0) bytes.resize(rng.next_u64() % (bytes.size() + 1));
      if (rng.next_u64() % 5 == 0) bytes.push_back(static_cast<uint8_t>(rng.next_u64()));
      ++total;
      try {
        DecodeLimits lim;
        lim.n_vocab = 151936;
        lim.max_tokens = 4096;
        lim.max_vector = 1 << 20;
        (void)decode(bytes, lim);
      } catch (const Error&) {
        ++rejected;
      }
    }
  }
  EXPECT_GT(rejected, total / 4);  // most corruptions are caught
}

TEST(Codec, ErrorsNameFieldAndOffset) {
  auto bytes = encode(DraftBlock{1, {}, {10, 200000}, {}});
  DecodeLimits lim;
  lim.n_vocab = 151936;
  try {
    decode(bytes, lim);
    FAIL();
  } catch (const Error& e) {
    std::string w = e.what();
    EXPECT_NE(w.find("DraftBlock.drafts"), std::string::npos) << w;
    EXPECT_NE(w.find("offset 5"), std::string::npos) << w;
    EXPECT_NE(w.find("200000"), std::string::npos) << w;
  }
}

TEST(Codec, HostileInputs) {
  // A count far larger than the buffer must not allocate or read past it.
  std::vector<uint8_t> huge = {3, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f};
  EXPECT_THROW(decode(huge), Error);
  // Overlong varint.
  std::vector<uint8_t> overlong = {7, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  EXPECT_THROW(decode(overlong), Error);
  // 64-bit overflow in the 10th byte.
  std::vector<uint8_t> overflow = {7, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
  EXPECT_THROW(decode(overflow), Error);
  // Unknown type, trailing bytes.
  EXPECT_THROW(decode(std::vector<uint8_t>{0}), Error);
  EXPECT_THROW(decode(std::vector<uint8_t>{200}), Error);
  auto close = encode(Close{5});
  close.push_back(0);
  EXPECT_THROW(decode(close), Error);
  EXPECT_THROW(decode(std::vector<uint8_t>{}), Error);
  // NaN and infinity in values.
  Verdict v;
  v.rejected = true;
  v.steer = {{1, std::numeric_limits<float>::quiet_NaN()}};
  EXPECT_THROW(decode(encode(v)), Error);
  v.steer = {{1, std::numeric_limits<float>::infinity()}};
  EXPECT_THROW(decode(encode(v)), Error);
  // A flag that is neither 0 nor 1.
  auto vb = encode(Verdict{});
  vb[2] = 2;
  EXPECT_THROW(decode(vb), Error);
  // Probabilities out of range; mismatched draft_probs.
  Verdict t;
  t.target = {{1, 1.5f}};
  EXPECT_THROW(decode(encode(t)), Error);
  EXPECT_THROW(decode(encode(DraftBlock{1, {}, {1, 2}, {0.5f}})), Error);
  EXPECT_THROW(decode(encode(DraftBlock{1, {}, {1}, {0.f}})), Error);
  // Full-vocabulary vectors must have exactly n_vocab entries.
  StepReply sr;
  sr.llm_logprobs = {-1.f, -2.f};
  sr.slm_logprobs = {-1.f, -2.f};
  DecodeLimits lim;
  lim.n_vocab = 3;
  EXPECT_THROW(decode(encode(sr), lim), Error);
  lim.n_vocab = 2;
  EXPECT_NO_THROW(decode(encode(sr), lim));
  // Invalid settings inside SessionOpen are refused with the field named.
  SessionOpen o = sample_open();
  o.settings.draft = 0;
  try {
    decode(encode(o));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("draft"), std::string::npos);
  }
  // Wrong protocol version.
  o = sample_open();
  o.version = 99;
  EXPECT_THROW(decode(encode(o)), Error);
}

TEST(Codec, XTravelsAsTextOrAsIdsAndVersionsMustMatch) {
  SessionOpen both = sample_open();
  both.x_text = "x";
  EXPECT_THROW(
      {
        try {
          decode(encode(both));
        } catch (const specsteer::Error& e) {
          EXPECT_NE(std::string(e.what()).find("both as text and as token ids"), std::string::npos) << e.what();
          throw;
        }
      },
      specsteer::Error);
  SessionOpen neither = sample_open();
  neither.x_llm.clear();
  neither.x_slm.clear();
  EXPECT_THROW(decode(encode(neither)), specsteer::Error);
  for (uint32_t other : {kProtocolVersion - 1, kProtocolVersion + 1}) {
    SessionOpen o = sample_open();
    o.version = other;
    try {
      decode(encode(o));
      ADD_FAILURE() << "version " << other << " accepted";
    } catch (const specsteer::Error& e) {
      EXPECT_NE(std::string(e.what()).find("protocol version mismatch: the edge speaks version " +
                                           std::to_string(other)),
                std::string::npos)
          << e.what();
    }
    SessionAccept a = short_accept_of(1, 10);
    a.version = other;
    EXPECT_THROW(decode(encode(a)), specsteer::Error);
  }
  const auto a = std::get<SessionAccept>(
      decode(encode(SessionAccept{78, 151936, {"l", "qwen3", 151936, 99}, 40, 41, {7, 9}, 4096, kProtocolVersion})));
  EXPECT_EQ(a.x_llm_tokens, 40u);
  EXPECT_EQ(a.x_slm_tokens, 41u);
  EXPECT_EQ(a.eog, (std::vector<int32_t>{7, 9}));
  EXPECT_EQ(a.n_ctx, 4096u);
  EXPECT_EQ(a.llm.fingerprint, 99u);
}
