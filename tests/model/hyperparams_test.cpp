// GGUF hyper-parameters with broken numbers are refused at load with an
// error naming the metadata key (a NaN epsilon or zero rope base would
// otherwise load and compute garbage silently).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <string>

#include "common/error.h"
#include "model/model.h"
#include "model/synth.h"

namespace specsteer {
namespace {

std::string tmp_path(const std::string& name) { return ::testing::TempDir() + "specsteer_hparams_" + name + ".gguf"; }

model::SynthConfig tiny() {
  model::SynthConfig c = model::synth_preset("tiny-qwen3");
  c.type = c.embd_type = c.output_type = gguf::TensorType::F32;
  return c;
}

// Writes a model with `edit` applied to its config and returns the load
// error ("" when it loads).
std::string load_error(const std::string& name, const std::function<void(model::SynthConfig&)>& edit) {
  model::SynthConfig c = tiny();
  edit(c);
  const std::string path = tmp_path(name);
  model::synthesize(c, path);
  try {
    Model::load(path, {.n_threads = 1});
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

}  // namespace

TEST(Hyperparams, AGoodModelLoads) { EXPECT_EQ(load_error("good", [](model::SynthConfig&) {}), ""); }

TEST(Hyperparams, BadRmsEpsilonIsRefusedNamingTheKey) {
  for (const float eps : {kNaN, -1e-6f, 0.0f, kInf}) {
    SCOPED_TRACE(eps);
    const std::string e = load_error("eps", [eps](model::SynthConfig& c) { c.rms_eps = eps; });
    EXPECT_NE(e.find("'qwen3.attention.layer_norm_rms_epsilon'"), std::string::npos) << e;
    EXPECT_NE(e.find("finite number > 0"), std::string::npos) << e;
  }
}

TEST(Hyperparams, BadRopeBaseIsRefusedNamingTheKey) {
  for (const float base : {kNaN, 0.0f, -10000.0f, kInf}) {
    SCOPED_TRACE(base);
    const std::string e = load_error("base", [base](model::SynthConfig& c) { c.rope_base = base; });
    EXPECT_NE(e.find("'qwen3.rope.freq_base'"), std::string::npos) << e;
  }
}

TEST(Hyperparams, HeadCountsMustBePositiveAndGroup) {
  // The synthesizer refuses such shapes itself, so the u32 value of the key
  // is patched in a good file (GGUF: key string, u32 type, then the value).
  const auto patched_error = [](const std::string& k, uint32_t value) {
    const std::string path = tmp_path("patched");
    model::synthesize(tiny(), path);
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), {});
    const size_t at = bytes.find(k + std::string("\x04\0\0\0", 4));  // followed by type 4 = u32
    if (at == std::string::npos) return std::string("key not found");
    f.seekp(static_cast<std::streamoff>(at + k.size() + 4));
    f.write(reinterpret_cast<const char*>(&value), 4);
    f.close();
    try {
      Model::load(path, {.n_threads = 1});
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  std::string e = patched_error("qwen3.attention.head_count_kv", 3);  // 4 heads
  EXPECT_NE(e.find("'qwen3.attention.head_count' = 4 is not a multiple of 'qwen3.attention.head_count_kv' = 3"),
            std::string::npos)
      << e;
  e = patched_error("qwen3.attention.head_count_kv", 0);
  EXPECT_NE(e.find("'qwen3.attention.head_count_kv' = 0 must be > 0"), std::string::npos) << e;
  e = patched_error("qwen3.context_length", 0);
  EXPECT_NE(e.find("'qwen3.context_length' = 0 must be > 0"), std::string::npos) << e;
}

}  // namespace specsteer
