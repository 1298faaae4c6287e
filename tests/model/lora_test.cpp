// LoRA adapters in llama.cpp's GGUF format against llama.cpp's own logits
// (shared fixtures golden/lora/), merged vs unmerged, and refused adapters.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "model/lora.h"
#include "model/model.h"

using namespace specsteer;
namespace fs = std::filesystem;

namespace {

const std::string kGolden = std::string(SPECSTEER_FIXTURES) + "/golden";

std::string base_path(const std::string& model) { return kGolden + "/" + model + "/" + model + ".gguf"; }
std::string adapter_path(const std::string& model) { return kGolden + "/lora/" + model + "-lora.gguf"; }

std::vector<float> read_f32(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<float> v;
  f.seekg(0, std::ios::end);
  v.resize(static_cast<size_t>(f.tellg()) / sizeof(float));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
  return v;
}

// Max |d| between our last-position logits and the golden rows of one variant.
float max_diff(const std::string& model, const std::string& variant, const std::shared_ptr<const Model>& base,
               const std::vector<LoraRef>& lora) {
  const std::string dir = kGolden + "/lora/";
  std::ifstream jf(dir + model + "." + variant + ".json");
  const auto meta = nlohmann::json::parse(jf);
  const auto golden = read_f32(dir + meta["logits_file"].get<std::string>());
  const size_t V = static_cast<size_t>(base->config().n_vocab);
  float worst = 0;
  for (const auto& p : meta["prompts"]) {
    const auto ids = p["token_ids"].get<std::vector<int32_t>>();
    Sequence seq(base, {.n_ctx = 256, .kv_type = KvType::F32, .lora = lora});
    const auto row = seq.eval(ids, false);
    const size_t r = p["logits_row"].get<size_t>();
    for (size_t i = 0; i < V; ++i) worst = std::max(worst, std::fabs(row[i] - golden[r * V + i]));
  }
  return worst;
}

}  // namespace

class LoraGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(LoraGolden, MatchesLlamaCppAtBothScales) {
  const std::string model = GetParam();
  if (!fs::exists(adapter_path(model))) GTEST_SKIP() << "fixtures absent";
  auto base = Model::load(base_path(model), {.n_threads = 2});
  auto adapter = LoraAdapter::load(adapter_path(model), *base);
  EXPECT_EQ(adapter->n_pairs(), 14u);
  EXPECT_FLOAT_EQ(adapter->alpha(), 16.0f);
  // llama.cpp's F32 golden data; a correct F32 forward agrees to ~1e-5.
  EXPECT_LE(max_diff(model, "lora-s1.0", base, {{adapter, 1.0f}}), 1e-3f);
  EXPECT_LE(max_diff(model, "lora-s0.5", base, {{adapter, 0.5f}}), 1e-3f);
  // The same adapter twice at half scale is the adapter once at full scale.
  EXPECT_LE(max_diff(model, "lora-s1.0", base, {{adapter, 0.5f}, {adapter, 0.5f}}), 1e-3f);
  // Scale 0 means the adapter is not used: the base model's logits, which the adapter changes.
  EXPECT_LE(max_diff(model, "nolora", base, {{adapter, 0.0f}}), 1e-3f);
  EXPECT_GT(max_diff(model, "nolora", base, {{adapter, 1.0f}}), 1e-2f);
}

TEST_P(LoraGolden, MergedWeightsEqualTheAdapterApplied) {
  const std::string model = GetParam();
  if (!fs::exists(adapter_path(model))) GTEST_SKIP() << "fixtures absent";
  auto merged = Model::load(base_path(model), {.n_threads = 2, .merge_lora = {{adapter_path(model), 0.5f}}});
  auto base = Model::load(base_path(model), {.n_threads = 2});
  auto adapter = LoraAdapter::load(adapter_path(model), *base);
  const std::vector<int32_t> ids = {1, 17, 300, 4000, 52, 9};
  Sequence a(merged, {.n_ctx = 16, .kv_type = KvType::F32});
  Sequence b(base, {.n_ctx = 16, .kv_type = KvType::F32, .lora = {{adapter, 0.5f}}});
  const auto ra = a.eval(ids, true);
  const std::vector<float> rows_a(ra.begin(), ra.end());
  const auto rb = b.eval(ids, true);
  ASSERT_EQ(rows_a.size(), rb.size());
  float worst = 0;
  for (size_t i = 0; i < rb.size(); ++i) worst = std::max(worst, std::fabs(rows_a[i] - rb[i]));
  EXPECT_LE(worst, 1e-4f);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, LoraGolden, ::testing::Values("tiny-qwen3-f32", "tiny-llama3-f32"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

TEST(Lora, WrongArchitectureOrShapeIsRefusedWithTheReason) {
  if (!fs::exists(adapter_path("tiny-qwen3-f32"))) GTEST_SKIP() << "fixtures absent";
  auto llama = Model::load(base_path("tiny-llama3-f32"), {.n_threads = 1});
  try {
    LoraAdapter::load(adapter_path("tiny-qwen3-f32"), *llama);
    FAIL() << "accepted a qwen3 adapter on a llama model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("architecture 'qwen3'"), std::string::npos) << e.what();
  }
  // A base model that is not an adapter at all.
  try {
    LoraAdapter::load(base_path("tiny-llama3-f32"), *llama);
    FAIL() << "accepted a model file as an adapter";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not an adapter"), std::string::npos) << e.what();
  }
  // The adapter of one model file does not apply to a Sequence of another.
  auto qwen = Model::load(base_path("tiny-qwen3-f32"), {.n_threads = 1});
  auto qwen2 = Model::load(base_path("tiny-qwen3-f32"), {.n_threads = 1});
  auto adapter = LoraAdapter::load(adapter_path("tiny-qwen3-f32"), *qwen);
  EXPECT_THROW(Sequence(qwen2, {.lora = {{adapter, 1.0f}}}), Error);
}

TEST(Lora, ParsesFileAndScale) {
  EXPECT_EQ(parse_lora_arg("a.gguf"), (std::pair<std::string, float>{"a.gguf", 1.0f}));
  EXPECT_EQ(parse_lora_arg("a.gguf:0.5"), (std::pair<std::string, float>{"a.gguf", 0.5f}));
  EXPECT_EQ(parse_lora_arg("dir:x/a.gguf"), (std::pair<std::string, float>{"dir:x/a.gguf", 1.0f}));
  EXPECT_THROW(parse_lora_arg(":0.5"), Error);
  EXPECT_THROW(parse_lora_arg("a.gguf:inf"), Error);
}

TEST(Lora, MergingIntoQuantizedWeightsKeepsTheirTypeAndStaysClose) {
  const std::string q8 = base_path("tiny-qwen3-q8_0");
  if (!fs::exists(adapter_path("tiny-qwen3-f32")) || !fs::exists(q8)) GTEST_SKIP() << "fixtures absent";
  auto merged = Model::load(q8, {.n_threads = 1, .merge_lora = {{adapter_path("tiny-qwen3-f32"), 1.0f}}});
  auto base = Model::load(q8, {.n_threads = 1});
  const std::vector<LoraRef> lora = load_lora_args({adapter_path("tiny-qwen3-f32") + ":1"}, *base);
  EXPECT_EQ(merged->weight_bytes_per_token(), base->weight_bytes_per_token());  // still Q8_0
  const std::vector<int32_t> ids = {1, 17, 300, 4000, 52, 9};
  Sequence a(merged, {.n_ctx = 16, .kv_type = KvType::F32});
  Sequence b(base, {.n_ctx = 16, .kv_type = KvType::F32, .lora = lora});
  Sequence c(base, {.n_ctx = 16, .kv_type = KvType::F32});
  const auto ra = a.eval(ids, false);
  const std::vector<float> merged_row(ra.begin(), ra.end());
  const auto rb = b.eval(ids, false);
  const std::vector<float> applied_row(rb.begin(), rb.end());
  const auto rc = c.eval(ids, false);
  float merged_vs_applied = 0, base_vs_applied = 0;
  for (size_t i = 0; i < rc.size(); ++i) {
    merged_vs_applied = std::max(merged_vs_applied, std::fabs(merged_row[i] - applied_row[i]));
    base_vs_applied = std::max(base_vs_applied, std::fabs(rc[i] - applied_row[i]));
  }
  // Re-quantizing W' to Q8_0 moves logits by about a Q8_0 step, far less than the adapter itself does.
  EXPECT_LT(merged_vs_applied, 0.5f);
  EXPECT_LT(merged_vs_applied * 4, base_vs_applied);
}
