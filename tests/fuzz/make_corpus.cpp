// Writes the GGUF fuzzer's seed corpus into a directory: small synthesized
// models of each architecture and tensor type, a file with every metadata
// value type, and a few edge shapes (no tensors, 4-D tensor, alignment 64,
// GGUF v2). All small (< 64 KiB) so the fuzzer mutates them quickly.
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "kernels/quant.h"
#include "model/synth.h"

using namespace specsteer;
using gguf::TensorType;

namespace {

void write_tensor(model::StreamWriter& w, size_t idx, TensorType t, uint64_t n, float scale) {
  std::vector<float> x(n);
  for (uint64_t i = 0; i < n; ++i) x[i] = scale * static_cast<float>((i * 37) % 19) - scale * 9;
  std::vector<uint8_t> out(w.tensor_bytes(idx));
  kernels::quantize_row(t, x.data(), out.data(), n);
  w.write_tensor_data(out);
}

void all_types(const std::string& path, uint32_t alignment) {
  model::StreamWriter w;
  w.add_string("general.architecture", "llama");
  w.add_u8("t.u8", 7);
  w.add_i8("t.i8", -7);
  w.add_u16("t.u16", 700);
  w.add_i16("t.i16", -700);
  w.add_u32("t.u32", 70000);
  w.add_i32("t.i32", -70000);
  w.add_u64("t.u64", 7000000000ull);
  w.add_i64("t.i64", -7000000000ll);
  w.add_f32("t.f32", 0.5f);
  w.add_f64("t.f64", -0.25);
  w.add_bool("t.bool", true);
  w.add_string("t.str", "h\xC3\xA9llo");
  w.add_strings("t.strs", {"a", "bc", ""});
  const uint8_t u8s[] = {1, 2, 3};
  w.add_array("t.u8s", gguf::ValueType::U8, u8s, 3);
  const int64_t i64s[] = {-1, 1ll << 40};
  w.add_array("t.i64s", gguf::ValueType::I64, i64s, 2);
  const float f32s[] = {1.0f, -2.0f};
  w.add_array("t.f32s", gguf::ValueType::F32, f32s, 2);
  const uint8_t bools[] = {0, 1};
  w.add_array("t.bools", gguf::ValueType::BOOL, bools, 2);
  const struct {
    const char* name;
    TensorType type;
    std::vector<uint64_t> ne;
  } tensors[] = {
      {"f32", TensorType::F32, {5}},        {"f16", TensorType::F16, {4, 3}},
      {"bf16", TensorType::BF16, {2, 2, 2}}, {"q8_0", TensorType::Q8_0, {32, 2}},
      {"q4_0", TensorType::Q4_0, {64}},      {"q4_k", TensorType::Q4_K, {256}},
      {"q5_k", TensorType::Q5_K, {256}},     {"q6_k", TensorType::Q6_K, {256, 1, 1, 2}},
  };
  for (const auto& t : tensors) w.add_tensor(t.name, t.type, t.ne);
  w.open(path, alignment);
  size_t i = 0;
  for (const auto& t : tensors) {
    uint64_t n = 1;
    for (uint64_t d : t.ne) n *= d;
    write_tensor(w, i++, t.type, n, 0.1f);
  }
  w.close();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  try {
    int n = 0;
    for (const char* preset : {"tiny-qwen3", "tiny-qwen2", "tiny-llama"}) {
      for (TensorType t : {TensorType::Q8_0, TensorType::Q4_0, TensorType::F16}) {
        model::SynthConfig c = model::synth_preset(preset);
        c.n_embd = 32;
        c.n_layer = 1;
        c.n_head = 2;
        c.n_head_kv = 1;
        c.head_dim = 16;
        c.n_ff = 64;
        c.n_vocab = 300;
        c.type = c.embd_type = c.output_type = t;
        c.tied = t != TensorType::F16;
        c.llama3_rope_factor = c.arch == "llama" && t == TensorType::Q8_0 ? 8.0f : 0.0f;
        model::synthesize(c, dir + "/synth-" + preset + "-" + std::string(gguf::type_name(t)) + ".gguf");
        ++n;
      }
    }
    {  // one K-quant mix like a Q4_K_M file
      model::SynthConfig c = model::synth_preset("tiny-qwen3");
      c.n_embd = 256;
      c.n_layer = 1;
      c.n_head = 2;
      c.n_head_kv = 1;
      c.head_dim = 128;
      c.n_ff = 256;
      c.n_vocab = 300;
      c.type = TensorType::Q4_K;
      c.embd_type = TensorType::Q6_K;
      c.output_type = TensorType::Q5_K;
      c.tied = false;
      model::synthesize(c, dir + "/synth-kquants.gguf");
      ++n;
    }
    all_types(dir + "/all-types.gguf", 32);
    all_types(dir + "/all-types-align64.gguf", 64);
    n += 2;
    {
      model::StreamWriter w;
      w.open(dir + "/empty.gguf");
      w.close();
      ++n;
    }
    {  // the same bytes as a GGUF v2 file (identical layout to v3)
      gguf::Writer w;
      w.add_string("general.architecture", "qwen2");
      w.add_i32s("t.i32s", {1, -2, 3});
      w.add_f32s("t.f32s", {0.5f});
      w.add_tensor("x", TensorType::F32, {2, 2}, std::vector<uint8_t>(16, 0));
      auto bytes = w.to_bytes();
      bytes[4] = 2;
      std::ofstream(dir + "/v2.gguf", std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                               static_cast<std::streamsize>(bytes.size()));
      ++n;
    }
    std::printf("wrote %d seed files to %s\n", n, dir.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
