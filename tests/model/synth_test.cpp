// Random-weight model synthesis and the streaming GGUF writer, round-tripped
// through the reader; plus the Q8_0 quantizer checked byte-for-byte against
// the reference implementation's fixture (same weights as the F32 twin).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "common/error.h"
#include "gguf/gguf.h"
#include "kernels/quant.h"
#include "model/model.h"
#include "model/synth.h"

namespace specsteer {
namespace {

namespace fs = std::filesystem;
using gguf::TensorType;

std::string tmp_path(const std::string& name) { return ::testing::TempDir() + "specsteer_synth_" + name; }

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), {});
}

std::vector<float> dequant_tensor(const gguf::TensorInfo& t) {
  std::vector<float> out(t.n_elements);
  const size_t row_bytes = gguf::row_bytes(t.type, t.ne[0]);
  for (uint64_t r = 0; r < t.rows(); ++r)
    kernels::dequantize_row(t.type, t.data + r * row_bytes, out.data() + r * t.ne[0], t.ne[0]);
  return out;
}

void mean_std(const std::vector<float>& v, double* mean, double* sd) {
  double s = 0, s2 = 0;
  for (float x : v) {
    s += x;
    s2 += static_cast<double>(x) * x;
  }
  *mean = s / static_cast<double>(v.size());
  *sd = std::sqrt(s2 / static_cast<double>(v.size()) - *mean * *mean);
}

// ------------------------------------------------------------------ synth round trip

struct TypeCase {
  TensorType type;
  double std_tol;  // relative tolerance on the measured std of the weights
};

class SynthRoundTrip : public ::testing::TestWithParam<TypeCase> {};

TEST_P(SynthRoundTrip, ShapesTypesMetadataAndWeights) {
  const TypeCase tc = GetParam();
  model::SynthConfig c = model::synth_preset("tiny-qwen3");
  const bool k_quant = kernels::block_elems(tc.type) == 256;
  if (k_quant) {  // K-quant rows must be multiples of 256
    c.n_embd = 256;
    c.n_ff = 512;
    c.n_head = 4;
    c.head_dim = 64;
  }
  c.type = c.embd_type = c.output_type = tc.type;
  c.tied = false;
  c.seed = 7;
  const std::string path = tmp_path(std::string(gguf::type_name(tc.type)) + ".gguf");
  const model::SynthStats st = model::synthesize(c, path);
  EXPECT_EQ(st.file_bytes, fs::file_size(path));

  auto f = gguf::File::open(path);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->require_string("general.architecture"), "qwen3");
  EXPECT_EQ(f->require_u64("qwen3.embedding_length"), c.n_embd);
  EXPECT_EQ(f->require_u64("qwen3.block_count"), 2u);
  EXPECT_EQ(f->require_u64("qwen3.attention.head_count"), c.n_head);
  EXPECT_EQ(f->require_u64("qwen3.attention.head_count_kv"), 2u);
  EXPECT_EQ(f->require_u64("qwen3.attention.key_length"), c.head_dim);
  EXPECT_EQ(f->require_u64("qwen3.feed_forward_length"), c.n_ff);
  EXPECT_NEAR(*f->get_f64("qwen3.rope.freq_base"), 1e6, 1e-3);
  EXPECT_EQ(f->require_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f->find("tokenizer.ggml.tokens")->as_strings("t").size(), 512u);
  EXPECT_EQ(f->find("tokenizer.ggml.token_type")->count, 512u);

  // 1 embd + 2 x 11 per block + output_norm + output
  ASSERT_EQ(f->tensors().size(), 25u);
  EXPECT_EQ(st.n_tensors, 25u);
  const auto* embd = f->find_tensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->type, tc.type);
  EXPECT_EQ(embd->ne[0], c.n_embd);
  EXPECT_EQ(embd->ne[1], 512u);
  const auto* q = f->find_tensor("blk.1.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->type, tc.type);
  EXPECT_EQ(q->ne[1], uint64_t{c.n_head} * c.head_dim);
  const auto* k = f->find_tensor("blk.0.attn_k.weight");
  EXPECT_EQ(k->ne[1], 2u * c.head_dim);
  const auto* down = f->find_tensor("blk.0.ffn_down.weight");
  EXPECT_EQ(down->ne[0], c.n_ff);
  EXPECT_EQ(down->ne[1], c.n_embd);
  const auto* qn = f->find_tensor("blk.0.attn_q_norm.weight");
  ASSERT_NE(qn, nullptr);
  EXPECT_EQ(qn->type, TensorType::F32);
  EXPECT_EQ(qn->ne[0], c.head_dim);
  ASSERT_NE(f->find_tensor("output.weight"), nullptr);
  uint64_t params = 0;
  for (const auto& t : f->tensors()) params += t.n_elements;
  EXPECT_EQ(params, st.n_params);

  // Documented distributions survive quantization.
  double mean, sd;
  mean_std(dequant_tensor(*embd), &mean, &sd);
  const double want_embd = 1.0 / std::sqrt(static_cast<double>(c.n_embd));
  EXPECT_NEAR(sd, want_embd, want_embd * tc.std_tol);
  EXPECT_NEAR(mean, 0.0, want_embd * 0.05);
  mean_std(dequant_tensor(*down), &mean, &sd);
  const double want_down = 1.0 / std::sqrt(static_cast<double>(c.n_ff));
  EXPECT_NEAR(sd, want_down, want_down * tc.std_tol);
  mean_std(dequant_tensor(*f->find_tensor("output_norm.weight")), &mean, &sd);
  EXPECT_NEAR(mean, 1.0, 0.05);

  // The engine loads it.
  auto m = Model::load(path, {.n_threads = 1});
  EXPECT_EQ(m->config().n_embd, static_cast<int>(c.n_embd));
  EXPECT_EQ(m->config().n_vocab, 512);
  EXPECT_TRUE(m->config().has_qk_norm);
  EXPECT_FALSE(m->config().tied_output);
  fs::remove(path);
}

INSTANTIATE_TEST_SUITE_P(Types, SynthRoundTrip,
                         ::testing::Values(TypeCase{TensorType::F32, 0.05}, TypeCase{TensorType::F16, 0.05},
                                           TypeCase{TensorType::BF16, 0.05}, TypeCase{TensorType::Q8_0, 0.05},
                                           // 4-bit levels add ~10% variance on Gaussian data
                                           TypeCase{TensorType::Q4_0, 0.12}, TypeCase{TensorType::Q4_K, 0.1},
                                           TypeCase{TensorType::Q5_K, 0.06}, TypeCase{TensorType::Q6_K, 0.05}),
                         [](const auto& info) { return std::string(gguf::type_name(info.param.type)); });

TEST(Synth, ArchitecturesLoad) {
  for (const char* preset : {"tiny-llama", "tiny-qwen2", "tiny-qwen3"}) {
    model::SynthConfig c = model::synth_preset(preset);
    c.type = c.embd_type = TensorType::Q4_0;
    c.llama3_rope_factor = c.arch == "llama" ? 8.0f : 0.0f;
    const std::string path = tmp_path(std::string(preset) + ".gguf");
    model::synthesize(c, path);
    auto m = Model::load(path, {.n_threads = 1});
    EXPECT_EQ(m->config().arch, c.arch);
    EXPECT_TRUE(m->config().tied_output);
    EXPECT_EQ(m->config().has_qkv_bias, c.arch == "qwen2");
    EXPECT_EQ(m->config().has_rope_freqs, c.arch == "llama");
    if (c.arch == "llama") {
      // Llama-3.1 scaling: factor 1 for the highest frequencies, `factor` for the lowest.
      const auto* rf = m->file().find_tensor("rope_freqs.weight");
      ASSERT_NE(rf, nullptr);
      std::vector<float> v(rf->ne[0]);
      std::memcpy(v.data(), rf->data, v.size() * 4);
      EXPECT_EQ(v.front(), 1.0f);
      EXPECT_EQ(v.back(), 8.0f);
    }
    Sequence seq(m);
    const int32_t toks[] = {1, 2, 3};
    auto logits = seq.eval(toks, false);
    ASSERT_EQ(logits.size(), 512u);
    for (float x : logits) ASSERT_TRUE(std::isfinite(x));
    fs::remove(path);
  }
}

TEST(Synth, DeterministicPerSeed) {
  model::SynthConfig c = model::synth_preset("tiny-qwen2");
  const std::string a = tmp_path("seed_a.gguf"), b = tmp_path("seed_b.gguf"), d = tmp_path("seed_d.gguf");
  model::synthesize(c, a);
  model::synthesize(c, b);
  c.seed = 2;
  model::synthesize(c, d);
  EXPECT_EQ(read_all(a), read_all(b));
  EXPECT_NE(read_all(a), read_all(d));
  for (const auto& p : {a, b, d}) fs::remove(p);
}

TEST(Synth, ClearErrors) {
  EXPECT_THROW(model::synth_preset("gpt-5"), Error);
  model::SynthConfig c = model::synth_preset("tiny-qwen3");
  c.type = TensorType::Q4_K;  // rows of 64 cannot hold 256-element blocks
  try {
    model::synthesize(c, tmp_path("bad.gguf"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("256"), std::string::npos) << e.what();
  }
  c = model::synth_preset("tiny-qwen3");
  c.n_vocab = 100;
  EXPECT_THROW(model::synthesize(c, tmp_path("bad.gguf")), Error);
  c = model::synth_preset("tiny-qwen3");
  c.arch = "gpt2";
  EXPECT_THROW(model::synthesize(c, tmp_path("bad.gguf")), Error);
  c = model::synth_preset("tiny-qwen3");
  c.n_head_kv = 3;
  EXPECT_THROW(model::synthesize(c, tmp_path("bad.gguf")), Error);
  fs::remove(tmp_path("bad.gguf"));
}

TEST(Synth, PresetsHaveRealShapes) {
  const auto q06 = model::synth_preset("qwen3-0.6b");
  EXPECT_EQ(q06.n_embd, 1024u);
  EXPECT_EQ(q06.n_layer, 28u);
  EXPECT_EQ(q06.n_head * q06.head_dim, 2048u);
  EXPECT_TRUE(q06.tied);
  const auto q8 = model::synth_preset("qwen3-8b");
  EXPECT_EQ(q8.n_ff, 12288u);
  EXPECT_FALSE(q8.tied);
  const auto q32 = model::synth_preset("qwen3-32b");  // the paper's Generalist
  EXPECT_EQ(q32.n_layer, 64u);
  EXPECT_EQ(q32.n_embd, 5120u);
  EXPECT_EQ(q32.n_ff, 25600u);
  EXPECT_EQ(q32.n_head, 64u);
  EXPECT_EQ(q32.n_head_kv, 8u);
  EXPECT_FALSE(q32.tied);
  for (const auto& n : model::synth_preset_names()) EXPECT_NO_THROW(model::synth_preset(n));
}

TEST(Synth, VocabFromAnotherFile) {
  const std::string src = std::string(SPECSTEER_FIXTURES) + "/golden/tiny-qwen3-f32/tiny-qwen3-f32.gguf";
  if (!fs::exists(src)) GTEST_SKIP() << "fixture missing: " << src;
  model::SynthConfig c = model::synth_preset("tiny-qwen3");
  c.n_layer = 1;
  c.vocab_from = src;
  const std::string path = tmp_path("vocab_from.gguf");
  model::synthesize(c, path);
  auto f = gguf::File::open(path);
  auto s = gguf::File::open(src);
  const auto toks = f->find("tokenizer.ggml.tokens")->as_strings("t");
  const auto want = s->find("tokenizer.ggml.tokens")->as_strings("t");
  ASSERT_EQ(toks.size(), want.size());
  EXPECT_TRUE(std::equal(toks.begin(), toks.end(), want.begin()));
  EXPECT_EQ(f->find("tokenizer.ggml.merges")->count, s->find("tokenizer.ggml.merges")->count);
  EXPECT_EQ(f->require_u64("tokenizer.ggml.eos_token_id"), s->require_u64("tokenizer.ggml.eos_token_id"));
  EXPECT_EQ(f->require_string("tokenizer.chat_template"), s->require_string("tokenizer.chat_template"));
  EXPECT_EQ(f->find_tensor("token_embd.weight")->ne[1], want.size());
  fs::remove(path);
}

// ------------------------------------------------------------------ streaming writer

TEST(StreamWriter, EveryValueTypeRoundTrips) {
  const std::string path = tmp_path("values.gguf");
  {
    model::StreamWriter w;
    w.add_u8("u8", 200);
    w.add_i8("i8", -100);
    w.add_u16("u16", 60000);
    w.add_i16("i16", -30000);
    w.add_u32("u32", 4000000000u);
    w.add_i32("i32", -2000000000);
    w.add_u64("u64", 1ull << 60);
    w.add_i64("i64", -(1ll << 60));
    w.add_f32("f32", 1.5f);
    w.add_f64("f64", 1e-300);
    w.add_bool("bool", true);
    w.add_string("str", std::string("nul\0inside", 10));
    w.add_strings("strs", {"a", "", "ccc"});
    const int16_t i16s[] = {-1, 2, -3};
    w.add_array("i16s", gguf::ValueType::I16, i16s, 3);
    const double f64s[] = {0.25, -8};
    w.add_array("f64s", gguf::ValueType::F64, f64s, 2);
    w.add_tensor("a", TensorType::F32, {3});
    w.add_tensor("b", TensorType::Q8_0, {64, 2});
    w.open(path, 64);
    const float av[3] = {1, 2, 3};
    w.write_tensor_data({reinterpret_cast<const uint8_t*>(av), 12});
    std::vector<uint8_t> b(w.tensor_bytes(1), 0x11);
    w.write_tensor_data({b.data(), 100});  // in pieces
    w.write_tensor_data({b.data() + 100, b.size() - 100});
    EXPECT_THROW(w.write_tensor_data({b.data(), 1}), Error);  // nothing left to write
    w.close();
  }
  auto f = gguf::File::open(path);
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->find("u8")->as_u64("u8"), 200u);
  EXPECT_EQ(f->find("i8")->as_i64("i8"), -100);
  EXPECT_EQ(f->find("u16")->as_u64("u16"), 60000u);
  EXPECT_EQ(f->find("i16")->as_i64("i16"), -30000);
  EXPECT_EQ(f->find("u32")->as_u64("u32"), 4000000000u);
  EXPECT_EQ(f->find("i32")->as_i64("i32"), -2000000000);
  EXPECT_EQ(f->find("u64")->as_u64("u64"), 1ull << 60);
  EXPECT_EQ(f->find("i64")->as_i64("i64"), -(1ll << 60));
  EXPECT_EQ(f->find("f32")->as_f64("f32"), 1.5);
  EXPECT_EQ(f->find("f64")->as_f64("f64"), 1e-300);
  EXPECT_TRUE(f->find("bool")->as_bool("bool"));
  EXPECT_EQ(f->find("str")->as_string("str"), std::string_view("nul\0inside", 10));
  EXPECT_EQ(f->find("strs")->as_strings("strs"), (std::vector<std::string_view>{"a", "", "ccc"}));
  EXPECT_EQ(f->find("i16s")->as_i64s("i16s"), (std::vector<int64_t>{-1, 2, -3}));
  EXPECT_EQ(f->find("f64s")->as_f32s("f64s"), (std::vector<float>{0.25f, -8.0f}));
  ASSERT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(f->tensors()[1].offset % 64, 0u);
  float av[3];
  std::memcpy(av, f->tensors()[0].data, 12);
  EXPECT_EQ(av[2], 3.0f);
  EXPECT_EQ(f->tensors()[1].data[67], 0x11);

  // add_value copies every entry faithfully.
  const std::string copy = tmp_path("values_copy.gguf");
  {
    model::StreamWriter w;
    for (const auto& kv : f->metadata())
      if (kv.key != "general.alignment") w.add_value(kv.key, kv.value);
    w.open(copy);
    w.close();
  }
  auto g = gguf::File::open(copy);
  ASSERT_EQ(g->metadata().size(), f->metadata().size() - 1);
  EXPECT_EQ(g->find("i64")->as_i64("i64"), -(1ll << 60));
  EXPECT_EQ(g->find("str")->as_string("str"), std::string_view("nul\0inside", 10));
  EXPECT_EQ(g->find("i16s")->as_i64s("i16s"), (std::vector<int64_t>{-1, 2, -3}));
  EXPECT_EQ(g->find("strs")->as_strings("strs").size(), 3u);
  fs::remove(path);
  fs::remove(copy);
}

TEST(StreamWriter, MisuseIsAnError) {
  const std::string path = tmp_path("misuse.gguf");
  model::StreamWriter w;
  EXPECT_THROW(w.add_tensor("bad", TensorType::Q8_0, {33}), Error);
  w.add_tensor("t", TensorType::F32, {4});
  w.open(path);
  std::vector<uint8_t> big(20);
  EXPECT_THROW(w.write_tensor_data(big), Error);  // 20 > 16 declared
  EXPECT_THROW(w.close(), Error);                 // t never completed
  fs::remove(path);
}

// ------------------------------------------------------------------ Q8_0 vs the reference

// tiny-qwen3-q8_0 holds the same weights as tiny-qwen3-f32, quantized by the
// reference (gguf-py: d = amax/127, q = round-half-away-from-zero(x/d), d
// stored as fp16). Our dequantizer must land within half a step of the F32
// value (plus the fp16 rounding of d), and our quantizer must reproduce the
// file's bytes exactly.
TEST(QuantFixture, Q8_0MatchesReference) {
  const std::string dir = std::string(SPECSTEER_FIXTURES) + "/golden/";
  const std::string qpath = dir + "tiny-qwen3-q8_0/tiny-qwen3-q8_0.gguf", fpath = dir + "tiny-qwen3-f32/tiny-qwen3-f32.gguf";
  if (!fs::exists(qpath) || !fs::exists(fpath)) GTEST_SKIP() << "fixtures missing under " << dir;
  auto qf = gguf::File::open(qpath);
  auto ff = gguf::File::open(fpath);
  int n_q8 = 0;
  uint64_t n_blocks = 0;
  for (const auto& qt : qf->tensors()) {
    const auto* ft = ff->find_tensor(qt.name);
    ASSERT_NE(ft, nullptr) << qt.name;
    ASSERT_EQ(ft->type, TensorType::F32);
    ASSERT_EQ(ft->n_elements, qt.n_elements) << qt.name;
    std::vector<float> ref(ft->n_elements);
    std::memcpy(ref.data(), ft->data, ref.size() * 4);
    if (qt.type == TensorType::F32) {
      EXPECT_EQ(std::memcmp(qt.data, ft->data, qt.n_bytes), 0) << qt.name;
      continue;
    }
    ASSERT_EQ(qt.type, TensorType::Q8_0) << qt.name;
    ++n_q8;
    const std::vector<float> deq = dequant_tensor(qt);
    for (uint64_t b = 0; b < qt.n_elements / 32; ++b, ++n_blocks) {
      float amax = 0;
      for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(ref[b * 32 + i]));
      const double d = amax / 127.0;
      const double d16 = kernels::fp16_to_fp32(kernels::fp32_to_fp16(static_cast<float>(d)));
      const double bound = d / 2 + 127 * std::fabs(d - d16) + 1e-7;
      for (int i = 0; i < 32; ++i) {
        ASSERT_LE(std::fabs(static_cast<double>(deq[b * 32 + i]) - ref[b * 32 + i]), bound)
            << qt.name << " element " << b * 32 + i;
      }
    }
    std::vector<uint8_t> mine(qt.n_bytes);
    kernels::quantize_row(TensorType::Q8_0, ref.data(), mine.data(), ref.size());
    size_t first_diff = mine.size();
    for (size_t i = 0; i < mine.size(); ++i) {
      if (mine[i] != qt.data[i]) {
        first_diff = i;
        break;
      }
    }
    EXPECT_EQ(first_diff, mine.size()) << qt.name << ": requantized bytes differ first at byte " << first_diff;
  }
  EXPECT_EQ(n_q8, 15);  // token_embd + 7 matrices x 2 blocks
  EXPECT_GT(n_blocks, 150000u);
}

}  // namespace
}  // namespace specsteer
