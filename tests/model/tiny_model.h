#pragma once
// Builds small random-weight GGUF models in memory for engine tests, with
// knobs to break them (drop a tensor, change a shape or the architecture).
#include <cstring>
#include <random>
#include <set>
#include <string>

#include "gguf/gguf.h"

namespace specsteer::testing {

struct TinySpec {
  std::string arch = "llama";
  int n_embd = 16, n_layer = 2, n_head = 2, n_head_kv = 1, n_ff = 32, n_vocab = 64, n_ctx = 64;
  std::set<std::string> drop;          // tensor names to leave out
  std::string reshape;                 // tensor whose shape to corrupt
  uint32_t seed = 7;
};

inline std::vector<uint8_t> floats(std::vector<float> v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

inline gguf::Writer tiny_model(const TinySpec& s) {
  gguf::Writer w;
  const std::string a = s.arch;
  w.add_string("general.architecture", a);
  w.add_u32(a + ".embedding_length", s.n_embd);
  w.add_u32(a + ".block_count", s.n_layer);
  w.add_u32(a + ".feed_forward_length", s.n_ff);
  w.add_u32(a + ".attention.head_count", s.n_head);
  w.add_u32(a + ".attention.head_count_kv", s.n_head_kv);
  w.add_u32(a + ".context_length", s.n_ctx);
  w.add_f32(a + ".attention.layer_norm_rms_epsilon", 1e-5f);
  std::mt19937 rng(s.seed);
  std::normal_distribution<float> nd(0.f, 0.3f);
  auto add = [&](const std::string& name, std::vector<uint64_t> ne, float base = 0.f) {
    if (s.drop.count(name)) return;
    uint64_t n = 1;
    for (auto d : ne) n *= d;
    std::vector<float> v(n);
    for (auto& x : v) x = base + nd(rng);
    if (name == s.reshape) ne[0] /= 2, v.resize(v.size() / 2);
    w.add_tensor(name, gguf::TensorType::F32, ne, floats(v));
  };
  const uint64_t e = s.n_embd, hd = s.n_embd / s.n_head, q = hd * s.n_head, kv = hd * s.n_head_kv;
  add("token_embd.weight", {e, static_cast<uint64_t>(s.n_vocab)});
  add("output_norm.weight", {e}, 1.f);
  for (int l = 0; l < s.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    add(p + "attn_norm.weight", {e}, 1.f);
    add(p + "ffn_norm.weight", {e}, 1.f);
    add(p + "attn_q.weight", {e, q});
    add(p + "attn_k.weight", {e, kv});
    add(p + "attn_v.weight", {e, kv});
    add(p + "attn_output.weight", {q, e});
    add(p + "ffn_gate.weight", {e, static_cast<uint64_t>(s.n_ff)});
    add(p + "ffn_up.weight", {e, static_cast<uint64_t>(s.n_ff)});
    add(p + "ffn_down.weight", {static_cast<uint64_t>(s.n_ff), e});
    if (s.arch == "qwen2") {
      add(p + "attn_q.bias", {q});
      add(p + "attn_k.bias", {kv});
      add(p + "attn_v.bias", {kv});
    }
    if (s.arch == "qwen3") {
      add(p + "attn_q_norm.weight", {hd}, 1.f);
      add(p + "attn_k_norm.weight", {hd}, 1.f);
    }
  }
  return w;
}

}  // namespace specsteer::testing
