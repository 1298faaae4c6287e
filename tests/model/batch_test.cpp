// Multi-sequence forward passes: Sequence::eval_batch and EvalBatcher give
// every Sequence exactly what its own eval would, reject bad items without
// touching any cache, and really share passes under concurrent load.
#include <gtest/gtest.h>

#include <barrier>

#include <cmath>
#include <filesystem>
#include <thread>

#include "common/error.h"
#include "model/batcher.h"
#include "model/model.h"
#include "tiny_model.h"

namespace specsteer {
namespace {

namespace fs = std::filesystem;

class BatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::TinySpec spec;
    spec.arch = "qwen3";
    path_ = (fs::temp_directory_path() / ("specsteer_batch_" + std::to_string(::getpid()) + ".gguf")).string();
    testing::tiny_model(spec).write(path_);
    model_ = Model::load(path_, {.n_threads = 2});
  }
  void TearDown() override { fs::remove(path_); }

  static float max_diff(std::span<const float> a, std::span<const float> b) {
    EXPECT_EQ(a.size(), b.size());
    float m = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
    return m;
  }

  std::string path_;
  std::shared_ptr<Model> model_;
};

TEST_F(BatchTest, EachItemGetsWhatItsOwnEvalGives) {
  // Different cache lengths, KV types and logits modes in one pass.
  const std::vector<int32_t> p1 = {1, 2, 3, 4, 5, 6, 7}, p2 = {9, 8}, p3 = {40, 41, 42, 43};
  const std::vector<int32_t> n1 = {10, 11, 12}, n2 = {13}, n3 = {50, 51, 52, 53, 54};
  Sequence a(model_), b(model_, {.kv_type = KvType::F16}), c(model_);
  Sequence ra(model_), rb(model_, {.kv_type = KvType::F16}), rc(model_);
  a.eval(p1), b.eval(p2), c.eval(p3);
  ra.eval(p1), rb.eval(p2), rc.eval(p3);

  const BatchItem items[] = {{&a, n1, true}, {&b, n2, true}, {&c, n3, false}};
  Sequence::eval_batch(items);

  auto want_a = ra.eval(n1, true);
  EXPECT_LT(max_diff(a.logits(), want_a), 1e-5f);
  auto want_b = rb.eval(n2, true);
  EXPECT_LT(max_diff(b.logits(), want_b), 1e-5f);
  auto want_c = rc.eval(n3, false);
  EXPECT_EQ(c.logits().size(), 64u);
  EXPECT_LT(max_diff(c.logits(), want_c), 1e-5f);

  EXPECT_EQ(a.tokens(), ra.tokens());
  EXPECT_EQ(c.tokens(), rc.tokens());
  EXPECT_EQ(a.positions_evaluated(), ra.positions_evaluated());
  EXPECT_EQ(c.attention_work(), rc.attention_work());

  // The caches now continue identically (the batch wrote the right KV rows).
  auto next_a = a.eval(std::vector<int32_t>{33}, false);
  std::vector<float> got(next_a.begin(), next_a.end());
  EXPECT_LT(max_diff(got, ra.eval(std::vector<int32_t>{33}, false)), 1e-5f);
}

TEST_F(BatchTest, BadItemIsNamedAndNothingChanges) {
  Sequence a(model_), b(model_, {.n_ctx = 4});
  const std::vector<int32_t> ok = {1, 2}, too_long = {1, 2, 3, 4, 5}, bad_id = {3, 64};
  auto expect_error = [](std::span<const BatchItem> items, const std::string& needle) {
    try {
      Sequence::eval_batch(items);
      ADD_FAILURE() << "expected an error containing '" << needle << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const BatchItem overflow[] = {{&a, ok}, {&b, too_long}};
  expect_error(overflow, "batch item 1: context overflow");
  const BatchItem vocab[] = {{&a, bad_id}, {&b, ok}};
  expect_error(vocab, "batch item 0: token id 64 at batch index 1");
  const BatchItem twice[] = {{&a, ok}, {&a, ok}};
  expect_error(twice, "appears twice");

  testing::TinySpec other_spec;
  other_spec.seed = 99;
  const std::string other_path = path_ + ".other.gguf";
  testing::tiny_model(other_spec).write(other_path);
  auto other_model = Model::load(other_path, {.n_threads = 1});
  Sequence o(other_model);
  const BatchItem mixed[] = {{&a, ok}, {&o, ok}};
  expect_error(mixed, "different models");
  fs::remove(other_path);

  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(o.size(), 0u);
}

TEST_F(BatchTest, ConcurrentCallersShareForwardPassesAndGetTheirOwnRows) {
  constexpr int kThreads = 8, kSteps = 24;
  // Reference: each thread's token stream evaluated alone.
  auto stream = [](int t, int step) { return static_cast<int32_t>((7 * t + 3 * step) % 64); };
  std::vector<std::vector<float>> want(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    Sequence s(model_);
    for (int step = 0; step < kSteps; ++step) {
      const int32_t tok[2] = {stream(t, step), stream(t + 1, step)};
      auto rows = s.eval(tok, true);
      want[t].insert(want[t].end(), rows.begin(), rows.end());
    }
  }

  // A tiny model's pass takes microseconds, so threads may not overlap in a
  // given attempt; every attempt must give the right rows, and passes must be
  // shared in at least one of several.
  bool shared = false;
  for (int attempt = 0; attempt < 8 && !shared; ++attempt) {
    EvalBatcher batcher(model_, 64);
    std::vector<std::vector<float>> got(kThreads);
    std::vector<std::thread> threads;
    std::barrier step_start(kThreads);  // all threads submit each step together
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        Sequence s(model_);
        for (int step = 0; step < kSteps; ++step) {
          step_start.arrive_and_wait();
          const int32_t tok[2] = {stream(t, step), stream(t + 1, step)};
          auto rows = batcher.eval(s, tok, true);
          got[t].insert(got[t].end(), rows.begin(), rows.end());
        }
      });
    for (auto& th : threads) th.join();

    for (int t = 0; t < kThreads; ++t) EXPECT_LT(max_diff(got[t], want[t]), 1e-5f) << "thread " << t;
    const BatcherStats st = batcher.stats();
    EXPECT_EQ(st.requests, static_cast<uint64_t>(kThreads * kSteps));
    EXPECT_EQ(st.rows, static_cast<uint64_t>(2 * kThreads * kSteps));
    shared = st.passes < st.requests;
  }
  EXPECT_TRUE(shared) << "eight threads hammering one model never shared a pass";
}

TEST_F(BatchTest, BatcherRejectsBadRequestsInTheCallersThread) {
  EvalBatcher batcher(model_);
  Sequence s(model_, {.n_ctx = 2});
  EXPECT_THROW(batcher.eval(s, std::vector<int32_t>{1, 2, 3}), Error);
  EXPECT_THROW(batcher.eval(s, std::vector<int32_t>{}), Error);
  EXPECT_EQ(batcher.stats().passes, 0u);
  auto rows = batcher.eval(s, std::vector<int32_t>{1, 2}, false);
  EXPECT_EQ(rows.size(), 64u);
  EXPECT_THROW(EvalBatcher(model_, 0), Error);
}

}  // namespace
}  // namespace specsteer
