// KV-cache behaviour: batched == sequential, rollback == fresh, F16 cache,
// independent sequences, and clear errors on bad models and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "common/error.h"
#include "model/model.h"
#include "tiny_model.h"

namespace specsteer {
namespace {

namespace fs = std::filesystem;

std::string write_tmp(const gguf::Writer& w, const std::string& name) {
  auto p = fs::temp_directory_path() / ("specsteer_test_" + std::to_string(::getpid()) + "_" + name + ".gguf");
  w.write(p.string());
  return p.string();
}

float max_diff(std::span<const float> a, std::span<const float> b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

class ArchTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ArchTest, BatchedEqualsSequentialAndRollbackEqualsFresh) {
  testing::TinySpec spec;
  spec.arch = GetParam();
  auto path = write_tmp(testing::tiny_model(spec), spec.arch);
  auto model = Model::load(path, {.n_threads = 2});
  const std::vector<int32_t> ids = {1, 5, 9, 13, 2, 40, 63, 7};

  Sequence batched(model);
  auto all = batched.eval(ids, true);
  std::vector<float> batch_rows(all.begin(), all.end());
  ASSERT_EQ(batch_rows.size(), ids.size() * 64);

  Sequence step(model);
  for (size_t i = 0; i < ids.size(); ++i) {
    auto row = step.eval({&ids[i], 1}, false);
    EXPECT_LT(max_diff(row, {&batch_rows[i * 64], 64}), 1e-4f) << "position " << i;
  }

  // Roll back 3 tokens, evaluate different ones, compare with a fresh run.
  batched.truncate(5);
  EXPECT_EQ(batched.size(), 5u);
  const std::vector<int32_t> alt = {11, 12, 3};
  auto rolled = batched.eval(alt, true);
  std::vector<float> rolled_rows(rolled.begin(), rolled.end());
  std::vector<int32_t> fresh_ids(ids.begin(), ids.begin() + 5);
  fresh_ids.insert(fresh_ids.end(), alt.begin(), alt.end());
  Sequence fresh(model);
  auto f = fresh.eval(fresh_ids, true);
  EXPECT_LT(max_diff(rolled_rows, f.subspan(5 * 64)), 1e-5f);
  EXPECT_EQ(batched.tokens(), fresh_ids);
  EXPECT_EQ(batched.positions_evaluated(), 11u);
  fs::remove(path);
}

INSTANTIATE_TEST_SUITE_P(Archs, ArchTest, ::testing::Values("llama", "qwen2", "qwen3"));

TEST(Sequence, F16CacheStaysCloseToF32AndSequencesAreIndependent) {
  auto path = write_tmp(testing::tiny_model({}), "f16");
  auto model = Model::load(path, {.n_threads = 1});
  const std::vector<int32_t> ids = {3, 4, 5, 6, 7, 8};
  Sequence a(model, {.kv_type = KvType::F32});
  Sequence b(model, {.kv_type = KvType::F16});
  Sequence other(model);
  other.eval(std::vector<int32_t>{60, 61, 62}, false);  // interleaved work on another cache
  auto la = a.eval(ids, false);
  std::vector<float> ra(la.begin(), la.end());
  auto lb = b.eval(ids, false);
  EXPECT_LT(max_diff(ra, lb), 5e-2f);
  EXPECT_GT(max_diff(ra, lb), 0.f);  // the F16 cache really is used
  EXPECT_EQ(other.size(), 3u);
  fs::remove(path);
}

TEST(Sequence, RejectsOverflowAndBadIds) {
  auto path = write_tmp(testing::tiny_model({}), "errors");
  auto model = Model::load(path, {.n_threads = 1});
  Sequence s(model, {.n_ctx = 4});
  EXPECT_THROW(s.eval(std::vector<int32_t>{1, 2, 3, 4, 5}), Error);
  EXPECT_THROW(s.eval(std::vector<int32_t>{64}), Error);
  EXPECT_THROW(s.eval(std::vector<int32_t>{-1}), Error);
  EXPECT_THROW(s.eval(std::vector<int32_t>{}), Error);
  EXPECT_EQ(s.size(), 0u);  // failed evals leave the cache untouched
  s.eval(std::vector<int32_t>{1, 2, 3, 4});
  EXPECT_THROW(s.eval(std::vector<int32_t>{1}), Error);
  fs::remove(path);
}

void expect_load_error(const testing::TinySpec& spec, const std::string& needle) {
  auto path = write_tmp(testing::tiny_model(spec), "bad");
  try {
    Model::load(path);
    ADD_FAILURE() << "expected an error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
  fs::remove(path);
}

TEST(ModelLoad, ClearErrors) {
  testing::TinySpec unknown;
  unknown.arch = "mamba";
  expect_load_error(unknown, "unknown architecture 'mamba'");
  testing::TinySpec missing;
  missing.drop = {"blk.1.ffn_up.weight"};
  expect_load_error(missing, "missing tensor 'blk.1.ffn_up.weight'");
  testing::TinySpec shape;
  shape.reshape = "blk.0.attn_k.weight";
  expect_load_error(shape, "tensor 'blk.0.attn_k.weight' has shape");
  testing::TinySpec no_bias;
  no_bias.arch = "qwen2";
  no_bias.drop = {"blk.0.attn_v.bias"};
  expect_load_error(no_bias, "missing tensor 'blk.0.attn_v.bias'");
  EXPECT_THROW(Model::load("/nonexistent/model.gguf"), Error);
}

TEST(ModelConfig, ParameterCountsFromShapes) {
  auto path = write_tmp(testing::tiny_model({}), "params");
  auto model = Model::load(path);
  const auto& c = model->config();
  EXPECT_TRUE(c.tied_output);
  // per layer: q 16*16 + k,v 2*16*8 + o 16*16 + ffn 3*16*32; output head 64*16
  EXPECT_EQ(c.n_params_matmul(), 2u * (256 + 256 + 256 + 1536) + 1024u);
  EXPECT_EQ(model->weight_bytes_per_token(), c.n_params_matmul() * 4);
  fs::remove(path);
}

}  // namespace
}  // namespace specsteer
