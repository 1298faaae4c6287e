// The protocol on the real fixture models (tiny random-weight GGUFs):
// qwen3-f32 as the LLM, qwen3-q8_0 (same weights) and qwen2-q8_0 (other
// weights, same vocabulary) as SLMs.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>

#include "common/error.h"
#include "steer/cloud.h"
#include "steer/edge.h"
#include "steer/generate.h"
#include "flaky_transport.h"

using namespace specsteer;
using namespace specsteer::steer;

namespace {

std::string fixture(const std::string& name) {
  return std::string(SPECSTEER_FIXTURES) + "/golden/" + name + "/" + name + ".gguf";
}

bool have_fixtures() { return std::filesystem::exists(fixture("tiny-qwen3-f32")); }

const Models& pair_q8() {
  static Models m = Models::load(fixture("tiny-qwen3-f32"), fixture("tiny-qwen3-q8_0"), {.n_threads = 1});
  return m;
}
const Models& pair_qwen2() {
  static Models m = Models::load(fixture("tiny-qwen3-f32"), fixture("tiny-qwen2-q8_0"), {.n_threads = 1});
  return m;
}

const char* kPrivate =
    "Private notes: my codename is ZQXWVBNMARKER, I live at 1234 Quillfeather Lane in Zorbtown, "
    "and my favourite dish is KLMNOPSTEW.";
const char* kMarkers[] = {"ZQXWVBNMARKER", "Quillfeather", "Zorbtown", "KLMNOPSTEW"};

GenerateRequest request(Method m, int n = 40) {
  GenerateRequest r;
  r.x = "Write a short review of the film you saw this weekend.";
  r.personalized = std::string(kPrivate) + "\n\n" + r.x;
  r.settings.method = m;
  r.settings.max_new = n;
  r.settings.seed = 7;
  return r;
}

#define NEED_FIXTURES() \
  if (!have_fixtures()) GTEST_SKIP() << "no shared fixtures"

}  // namespace

// Cross-tokenizer SpecSteer (paper appendix A.4): the Llama-3-vocabulary
// fixture as the Generalist, the Qwen-vocabulary fixture as the Specialist.
const Models& pair_cross() {
  static Models m = Models::load(fixture("tiny-llama3-f32"), fixture("tiny-qwen3-q8_0"), {.n_threads = 1});
  return m;
}

TEST(CrossVocab, DifferentVocabulariesPairThroughBytes) {
  NEED_FIXTURES();
  EXPECT_TRUE(pair_cross().byte_level);
  EXPECT_NE(pair_cross().byte_level_why.find("differs"), std::string::npos) << pair_cross().byte_level_why;
  EXPECT_FALSE(pair_q8().byte_level);
  EXPECT_FALSE(pair_qwen2().byte_level);
}

TEST(CrossVocab, SpecSteerRunsInEverySamplingModeDeterministicallyAndPrivately) {
  NEED_FIXTURES();
  struct Mode {
    const char* name;
    double temperature;
    int top_k;
    double top_p, min_p;
    float repeat;
  };
  for (const Mode& mode : {Mode{"greedy", 0, 0, 1, 0, 1}, Mode{"temperature", 0.8, 0, 1, 0, 1},
                           Mode{"top-k", 1.0, 20, 1, 0, 1}, Mode{"top-p", 0.7, 0, 0.9, 0, 1},
                           Mode{"min-p", 1.0, 0, 1, 0.05, 1}, Mode{"repeat", 0.9, 40, 0.95, 0, 1.3f}}) {
    SCOPED_TRACE(mode.name);
    auto req = request(Method::SpecSteer, 8);
    req.settings.sampler.temperature = mode.temperature;
    req.settings.sampler.top_k = mode.top_k;
    req.settings.sampler.top_p = mode.top_p;
    req.settings.sampler.min_p = mode.min_p;
    req.settings.repeat.penalty = mode.repeat;
    Trace trace;
    const auto a = generate(pair_cross(), req, &trace);
    const auto b = generate(pair_cross(), req);
    EXPECT_EQ(a.tokens, b.tokens);
    EXPECT_EQ(a.text, b.text);
    EXPECT_FALSE(a.tokens.empty());
    EXPECT_GT(a.counters.round_trips, 0u);
    EXPECT_FALSE(a.cloud_failed_at) << a.cloud_error;
    EXPECT_GT(a.counters.positions_llm, 0u);
    // Nothing private goes up: only x (as text) and the Specialist's ids.
    ASSERT_FALSE(trace.uplink.empty());
    for (const auto& msg : trace.uplink) {
      const std::string bytes(msg.begin(), msg.end());
      for (const char* marker : kMarkers) EXPECT_EQ(bytes.find(marker), std::string::npos) << marker;
      const Message m = decode(msg);
      if (const auto* o = std::get_if<SessionOpen>(&m)) {
        EXPECT_EQ(o->x_text, req.x);
      }
      if (const auto* d = std::get_if<DraftBlock>(&m)) {
        for (int32_t id : d->drafts) EXPECT_LT(id, pair_cross().slm_tok->n_vocab());
      }
    }
    const Message accept = decode(trace.downlink.front());
    ASSERT_TRUE(std::holds_alternative<SessionAccept>(accept));
    EXPECT_TRUE(std::get<SessionAccept>(accept).byte_level);
    EXPECT_EQ(std::get<SessionAccept>(accept).n_vocab, static_cast<uint32_t>(pair_cross().slm_tok->n_vocab()));
  }
}

TEST(CrossVocab, AcceptingEveryUnitIsTheSpecialistAlone) {
  NEED_FIXTURES();
  auto req = request(Method::SpecSteer, 16);
  req.settings.lambda = 1e-30;  // every unit passes Eq. 7
  const auto all = generate(pair_cross(), req);
  const auto plus = generate(pair_cross(), request(Method::SlmPlus, 16));
  EXPECT_EQ(all.tokens, plus.tokens);
  EXPECT_EQ(all.counters.n_accepted, all.counters.n_drafted);
  // A strict threshold rejects and steers: the text changes, still deterministic.
  req.settings.lambda = 1.0;
  const auto strict = generate(pair_cross(), req);
  EXPECT_GT(strict.counters.rejections, 0u);
  EXPECT_EQ(strict.tokens, generate(pair_cross(), req).tokens);
}

// A byte-level session lost mid-generation resumes: the new session's LLM
// spells the decided bytes (up to a word boundary into its cache, the rest
// pending) and the generation completes in the cloud. Its units after the
// resume point may split differently than the lost session's, so only the
// resumed prefix is compared.
TEST(CrossVocab, AByteLevelSessionResumesAfterALostExchange) {
  NEED_FIXTURES();
  const Models& m = pair_cross();
  auto cloud = CloudService::from_models(m.llm, m.slm, {}, m.llm_tok, m.slm_tok, m.bytes);
  for (const double temp : {0.0, 0.8}) {
    SCOPED_TRACE(temp);
    auto req = request(Method::SpecSteer, 24);
    req.settings.sampler.temperature = temp;
    const auto ref = generate(m, req);
    test_support::FlakyTransport flaky(*cloud, {3, 5}, /*after=*/true);
    req.cloud = &flaky;
    const auto r = generate(m, req);
    EXPECT_FALSE(r.cloud_failed_at) << r.cloud_error;
    EXPECT_EQ(r.counters.resumed, 2u);
    ASSERT_EQ(flaky.resume_points().size(), 3u);
    const auto& point = flaky.resume_points()[1];
    ASSERT_GT(point.size(), 0u);
    ASSERT_LE(point.size(), ref.tokens.size());
    EXPECT_TRUE(std::equal(point.begin(), point.end(), ref.tokens.begin()));
    EXPECT_TRUE(std::equal(point.begin(), point.end(), r.tokens.begin()));
    EXPECT_TRUE(r.schedule.byte_level);
  }
}

TEST(CrossVocab, ASameVocabularyPairCanBeForcedThroughBytes) {
  NEED_FIXTURES();
  Models bytes = pair_qwen2();
  bytes.pair_through_bytes();
  // Every unit accepted: both paths give the Specialist's own text.
  auto req = request(Method::SpecSteer, 16);
  req.settings.lambda = 1e-30;
  EXPECT_EQ(generate(bytes, req).tokens, generate(pair_qwen2(), req).tokens);
  // With rejections the byte path runs (and says so) and is deterministic.
  req.settings.lambda = 1.0;
  Trace trace;
  const auto a = generate(bytes, req, &trace);
  EXPECT_GT(a.counters.rejections, 0u);
  EXPECT_TRUE(a.schedule.byte_level);
  EXPECT_TRUE(std::get<SessionAccept>(decode(trace.downlink.front())).byte_level);
  EXPECT_EQ(a.tokens, generate(bytes, req).tokens);
  EXPECT_FALSE(generate(pair_qwen2(), req).schedule.byte_level);
}

// The correctness anchor on a trained pair: forced through bytes, the bundled
// MiniLaMP pair (one vocabulary) gives the token path's greedy text. Not a
// theorem — the byte path values y by the Generalist's longest-match
// probability, not P(next token = y) — but measured on 471 of the 500 test
// records (BENCHMARKS.md); these prompts reject and recover 11-17 times each.
TEST(CrossVocab, TrainedSameVocabularyPairThroughBytesGivesTheTokenPathsText) {
  const std::string dir = std::string(SPECSTEER_SOURCE_DIR) + "/models/minilamp/";
  static const Models tokens = Models::load(dir + "generalist.gguf", dir + "specialist.gguf", {.n_threads = 1});
  Models bytes = tokens;
  bytes.pair_through_bytes();
  for (const char* x : {"Write a review of the product: a cast iron pan.", "Write a review of the product: a wool scarf.",
                        "Write a short essay about the harbour festival."}) {
    GenerateRequest req;
    req.x = x;
    req.personalized = std::string("Past review: the lid did not fit and the price was poor. I always mention my "
                                   "dog Biscuit.\n\n") + x;
    req.settings.max_new = 64;
    const auto t = generate(tokens, req);
    const auto b = generate(bytes, req);
    EXPECT_GT(t.counters.rejections, 5u) << x;
    EXPECT_TRUE(b.schedule.byte_level);
    EXPECT_EQ(b.tokens, t.tokens) << x;
  }
}

TEST(CrossVocab, MethodsThatNeedOneVocabularyAreRefusedByName) {
  NEED_FIXTURES();
  for (auto m : {Method::Sd, Method::LightCoSteer, Method::CoSteer}) {
    try {
      generate(pair_cross(), request(m, 4));
      ADD_FAILURE() << method_name(m) << " ran on a byte-level pair";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("share a vocabulary"), std::string::npos) << e.what();
    }
  }
  // The local methods run on either model.
  for (auto m : {Method::Llm, Method::LlmPlus, Method::Slm, Method::SlmPlus})
    EXPECT_FALSE(generate(pair_cross(), request(m, 4)).tokens.empty()) << method_name(m);
}

TEST(Models, GreedySdEqualsGreedyLlm) {
  NEED_FIXTURES();
  for (const Models* m : {&pair_q8(), &pair_qwen2()}) {
    auto llm = generate(*m, request(Method::Llm));
    auto sd = generate(*m, request(Method::Sd));
    EXPECT_EQ(sd.tokens, llm.tokens);
    EXPECT_EQ(sd.text, llm.text);
    EXPECT_GT(sd.counters.n_drafted, 0u);
  }
}

TEST(Models, SameWeightsAcceptMoreThanOtherWeights) {
  NEED_FIXTURES();
  auto req = request(Method::SpecSteer, 48);
  req.settings.lambda = 1.0;
  auto hi = generate(pair_q8(), req);
  auto lo = generate(pair_qwen2(), req);
  EXPECT_GT(hi.counters.acceptance_rate(), lo.counters.acceptance_rate());
  EXPECT_GT(lo.counters.rejections, 0u);
  // lambda -> 0 accepts every draft: output equals slm+.
  req.settings.lambda = 1e-30;
  auto all = generate(pair_qwen2(), req);
  auto plus = generate(pair_qwen2(), request(Method::SlmPlus, 48));
  EXPECT_EQ(all.tokens, plus.tokens);
  EXPECT_EQ(all.counters.n_accepted, all.counters.n_drafted);
}

TEST(Models, EveryMethodRunsAndIsDeterministic) {
  NEED_FIXTURES();
  for (auto m : {Method::Llm, Method::Slm, Method::SlmPlus, Method::LlmPlus, Method::Sd, Method::LightCoSteer,
                 Method::CoSteer, Method::SpecSteer}) {
    auto req = request(m, 6);
    req.settings.costeer.iterations = 3;
    req.settings.sampler.temperature = 0.8;
    req.settings.sampler.top_p = 0.95;
    auto a = generate(pair_qwen2(), req);
    auto b = generate(pair_qwen2(), req);
    EXPECT_EQ(a.tokens, b.tokens) << method_name(m);
    EXPECT_FALSE(a.tokens.empty()) << method_name(m);
    if (uses_cloud(m)) {
      EXPECT_GT(a.counters.round_trips, 0u) << method_name(m);
    }
  }
}

TEST(Models, CountersCarryExactForwardWork) {
  NEED_FIXTURES();
  const Models& m = pair_q8();
  // Local decoding: the prompt, then one position per generated token except
  // the last; position j (1-based) attends j tokens.
  auto req = request(Method::Llm, 5);
  const PromptIds p = prepare_prompts(m, req);
  auto r = generate(m, req);
  const uint64_t n = p.x_llm.size() + r.tokens.size() - (r.stop_reason == "length" ? 1 : 0);
  EXPECT_EQ(r.counters.positions_llm, n);
  EXPECT_EQ(r.counters.attention_llm, n * (n + 1) / 2);
  // SpecSteer: the cloud reports its work in CloseAck (rolled-back positions
  // count too): every position attends at least one token and at most all
  // positions evaluated so far.
  auto s = generate(m, request(Method::SpecSteer, 8));
  for (auto [pos, att] : {std::pair{s.counters.positions_llm, s.counters.attention_llm},
                          std::pair{s.counters.positions_slm_minus, s.counters.attention_slm_minus},
                          std::pair{s.counters.positions_slm_plus, s.counters.attention_slm_plus}}) {
    EXPECT_GT(pos, 0u);
    EXPECT_GE(att, pos);
    EXPECT_LE(att, pos * (pos + 1) / 2);
  }
}

TEST(Models, RollbackMatchesFreshEvaluation) {
  NEED_FIXTURES();
  const Models& m = pair_qwen2();
  auto req = request(Method::SpecSteer, 24);
  req.settings.lambda = 1.0;
  const PromptIds p = prepare_prompts(m, req);
  auto cloud = CloudService::from_models(m.llm, m.slm);
  InProcessTransport t(*cloud);
  SessionOpen open{kProtocolVersion, identity_of(*m.llm), identity_of(*m.slm), {}, true, {}, p.x_llm, p.x_slm, req.settings, {}};
  auto edge = make_sequence_source(m.slm);
  auto close = [](std::span<const float> a, std::span<const float> b) {
    if (a.size() > b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (std::fabs(a[i] - b[i]) > 1e-3f * (1 + std::fabs(b[i]))) return false;
    return true;
  };
  int rejections = 0;
  run_edge(*edge, p.personalized, t, open, [](int32_t) { return false; },
           [&](std::span<const int32_t> cache, std::span<const float> next, const Verdict& v) {
             if (!v.rejected || rejections >= 4) return;
             ++rejections;
             auto fresh = make_sequence_source(m.slm);
             auto rows = fresh->eval(cache);
             EXPECT_TRUE(close(next, rows.last(fresh->n_vocab()))) << "edge cache after rejection " << rejections;
             const Cloud* c = cloud->session(1);
             ASSERT_NE(c, nullptr);
             std::vector<int32_t> gen(cache.begin() + p.personalized.size(), cache.end());
             std::vector<int32_t> want_l(p.x_llm), want_s(p.x_slm);
             want_l.insert(want_l.end(), gen.begin(), gen.end());
             want_s.insert(want_s.end(), gen.begin(), gen.end());
             EXPECT_EQ(c->llm().tokens(), want_l);
             EXPECT_EQ(c->slm_minus().tokens(), want_s);
             auto fl = make_sequence_source(m.llm);
             auto rl = fl->eval(want_l);
             EXPECT_TRUE(close(c->llm_next(), rl.last(fl->n_vocab()))) << "cloud LLM cache";
             auto fs = make_sequence_source(m.slm);
             auto rs = fs->eval(want_s);
             EXPECT_TRUE(close(c->slm_next(), rs.last(fs->n_vocab()))) << "cloud SLM- cache";
           });
  EXPECT_GT(rejections, 0);
}

TEST(Models, PrivateContextNeverReachesTheCloud) {
  NEED_FIXTURES();
  for (const Models* m : {&pair_q8(), &pair_qwen2()}) {
    auto req = request(Method::SpecSteer, 48);
    const PromptIds p = prepare_prompts(*m, req);
    auto cloud = CloudService::from_models(m->llm, m->slm);
    InProcessTransport t(*cloud, true);
    SessionOpen open{kProtocolVersion, identity_of(*m->llm), identity_of(*m->slm), {}, true, {}, p.x_llm, p.x_slm,
                     req.settings, {}};
    auto edge = make_sequence_source(m->slm);
    std::vector<std::vector<float>> edge_rows;
    auto r = run_edge(*edge, p.personalized, t, open, [](int32_t) { return false; },
                      [&](std::span<const int32_t>, std::span<const float> next, const Verdict&) {
                        edge_rows.emplace_back(next.begin(), next.end());
                      });
    // The private context really was in the edge's prompt.
    const std::string edge_text = m->slm_tok->decode(p.personalized);
    for (const char* mk : kMarkers) ASSERT_NE(edge_text.find(mk), std::string::npos);

    std::vector<int32_t> stream;            // every id that went up, in order
    for (const auto& rec : t.records()) {
      if (!rec.uplink) continue;
      const std::string raw(rec.bytes.begin(), rec.bytes.end());
      for (const char* mk : kMarkers) EXPECT_EQ(raw.find(mk), std::string::npos) << mk;
      Message msg = decode(rec.bytes);
      if (auto* o = std::get_if<SessionOpen>(&msg)) {
        EXPECT_EQ(o->x_llm, p.x_llm);
        stream.insert(stream.end(), o->x_llm.begin(), o->x_llm.end());
        stream.insert(stream.end(), o->x_slm.begin(), o->x_slm.end());
      } else if (auto* b = std::get_if<DraftBlock>(&msg)) {
        EXPECT_TRUE(b->draft_probs.empty());
        stream.insert(stream.end(), b->committed.begin(), b->committed.end());
        stream.insert(stream.end(), b->drafts.begin(), b->drafts.end());
      } else {
        EXPECT_TRUE(std::holds_alternative<Close>(msg)) << message_name(msg);
      }
    }
    // No run of 3+ private-context ids in the uplink unless x or the output explains it.
    const auto priv = m->slm_tok->encode(kPrivate, false, false);
    std::vector<int32_t> explained(p.x_llm);
    explained.insert(explained.end(), p.x_slm.begin(), p.x_slm.end());
    explained.insert(explained.end(), r.tokens.begin(), r.tokens.end());
    auto contains = [](const std::vector<int32_t>& hay, std::span<const int32_t> needle) {
      return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
    };
    int checked = 0;
    for (size_t i = 0; i + 3 <= priv.size(); ++i) {
      std::span<const int32_t> tri(priv.data() + i, 3);
      if (contains(explained, tri)) continue;
      ++checked;
      EXPECT_FALSE(contains(stream, tri)) << "private ids at " << i << " reached the cloud";
    }
    EXPECT_GT(checked, 10);
    // No edge logit can be in the uplink: every uplink buffer is exactly the
    // canonical encoding of its decoded message (no hidden bytes), and the
    // decoded messages hold no float besides the settings we chose.
    ASSERT_FALSE(edge_rows.empty());
    for (const auto& rec : t.records()) {
      if (!rec.uplink) continue;
      Message msg = decode(rec.bytes);
      EXPECT_EQ(encode(msg), rec.bytes);
      if (auto* o = std::get_if<SessionOpen>(&msg)) {
        EXPECT_EQ(encode(*o), encode(open));
      }
    }
  }
}

TEST(Models, StreamedTokensConcatenateToTheTextAndCancelStopsEarly) {
  NEED_FIXTURES();
  for (Method m : {Method::SpecSteer, Method::LightCoSteer, Method::SlmPlus, Method::Llm}) {
    SCOPED_TRACE(std::string(method_name(m)));
    auto req = request(m, 24);
    std::string streamed;
    std::vector<int32_t> ids;
    req.on_token = [&](int32_t id, std::string_view piece) {
      if (id >= 0) ids.push_back(id);
      streamed += piece;
    };
    const auto r = generate(pair_qwen2(), req);
    EXPECT_EQ(streamed, r.text);
    EXPECT_EQ(ids, r.tokens);
    ASSERT_GE(r.tokens.size(), 12u) << "the cancel check needs a longer generation";

    // Cancelled once 5 tokens were streamed: the run stops at the next round
    // with a prefix of the full run (at most one more block decided).
    std::atomic<bool> stop{false};
    auto c = request(m, 24);
    c.cancel = &stop;
    size_t seen = 0;
    c.on_token = [&](int32_t id, std::string_view) {
      if (id >= 0 && ++seen >= 5) stop = true;
    };
    const auto rc = generate(pair_qwen2(), c);
    EXPECT_EQ(rc.stop_reason, "cancelled");
    EXPECT_GE(rc.tokens.size(), 5u);
    EXPECT_LE(rc.tokens.size(), 5u + static_cast<size_t>(c.settings.draft) + 1);
    EXPECT_LT(rc.tokens.size(), r.tokens.size());
    EXPECT_EQ(rc.tokens, std::vector<int32_t>(r.tokens.begin(), r.tokens.begin() + rc.tokens.size()));
  }
}

TEST(Models, StopStringsEndTheTextBeforeThemAndStopTheRun) {
  NEED_FIXTURES();
  for (Method m : {Method::SpecSteer, Method::SlmPlus}) {
    SCOPED_TRACE(std::string(method_name(m)));
    const auto full = generate(pair_qwen2(), request(m, 32));
    ASSERT_GE(full.text.size(), 24u);
    // A stop string taken from the middle of the full text: its first
    // occurrence is where the text must end.
    const std::string stop = full.text.substr(full.text.size() / 2, 3);
    const size_t at = full.text.find(stop);
    auto req = request(m, 32);
    req.stop = {"never appears \x01", stop};
    std::string streamed;
    req.on_token = [&](int32_t, std::string_view piece) { streamed += piece; };
    const auto r = generate(pair_qwen2(), req);
    EXPECT_EQ(r.stop_reason, "stop");
    EXPECT_EQ(r.text, full.text.substr(0, at));
    EXPECT_EQ(streamed, r.text) << "nothing past the stop string is streamed";
    EXPECT_EQ(std::vector<int32_t>(full.tokens.begin(), full.tokens.begin() + r.tokens.size()), r.tokens);
  }
  auto empty = request(Method::SlmPlus, 4);
  empty.stop = {""};
  EXPECT_THROW(generate(pair_qwen2(), empty), Error);
}

// The repeat penalty acts only on the rows the edge samples from: the cloud's
// LLM stays unpenalized, so greedy sd still equals the LLM's own greedy
// decoding, while slm+ equals a hand-written penalized greedy loop over
// prompt + generated tokens, and specsteer changes and stays deterministic.
TEST(Models, RepeatPenaltyActsOnTheEdgesRowsOnly) {
  NEED_FIXTURES();
  const Models& m = pair_qwen2();
  const sampling::RepeatPenalty rp{.penalty = 1.8, .last_n = 16};
  const auto llm = generate(m, request(Method::Llm, 24));
  auto sd = request(Method::Sd, 24);
  sd.settings.repeat = rp;
  EXPECT_EQ(generate(m, sd).tokens, llm.tokens);

  auto req = request(Method::SlmPlus, 24);
  req.settings.repeat = rp;
  const auto r = generate(m, req);
  std::vector<int32_t> history = prepare_prompts(m, req).personalized;
  Sequence seq(m.slm, {.n_ctx = 1024});
  std::span<const float> rows = seq.eval(history, false);
  std::vector<int32_t> expect;
  const size_t V = static_cast<size_t>(m.slm->config().n_vocab);
  while (expect.size() < 24) {
    std::vector<float> row(rows.end() - static_cast<std::ptrdiff_t>(V), rows.end());
    sampling::apply_repeat_penalty(row, history, rp);
    const int32_t t = sampling::argmax(std::span<const float>(row));
    if (m.slm_tok->is_eog(t)) break;
    expect.push_back(t);
    history.push_back(t);
    const int32_t one[1] = {t};
    rows = seq.eval(one, false);
  }
  EXPECT_EQ(r.tokens, expect);
  EXPECT_NE(r.tokens, generate(m, request(Method::SlmPlus, 24)).tokens) << "the penalty changed nothing";

  auto spec = request(Method::SpecSteer, 24);
  spec.settings.repeat = rp;
  const auto a = generate(m, spec), b = generate(m, spec);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_NE(a.tokens, generate(m, request(Method::SpecSteer, 24)).tokens) << "the penalty changed nothing";
  spec.settings.repeat.penalty = 0;
  EXPECT_THROW(generate(m, spec), Error);
}

