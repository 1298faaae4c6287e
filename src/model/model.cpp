#include "model/model.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/timer.h"
#include "kernels/packed.h"
#include "kernels/quant.h"
#include "model/model_impl.h"

namespace specsteer {
namespace {

using gguf::TensorType;

std::string key(const ModelConfig& c, const char* suffix) { return c.arch + "." + suffix; }

int get_int(const gguf::File& f, const std::string& k, std::optional<int> fallback = std::nullopt) {
  auto v = f.get_u64(k);
  if (!v) {
    if (fallback) return *fallback;
    throw Error(f.path() + ": missing required metadata key '" + k + "'");
  }
  if (*v > (1u << 30)) throw Error(f.path() + ": metadata key '" + k + "' = " + std::to_string(*v) + " is out of range");
  return static_cast<int>(*v);
}

// A real-valued hyper-parameter that must be finite and > 0: a NaN, zero or
// negative epsilon or rope base loads but computes NaN/garbage silently.
double positive_f64(const gguf::File& f, const std::string& k, double fallback) {
  const double v = f.get_f64(k).value_or(fallback);
  if (!std::isfinite(v) || v <= 0)
    throw Error(f.path() + ": metadata key '" + k + "' = " + std::to_string(v) + " must be a finite number > 0");
  return v;
}

const gguf::TensorInfo& need_tensor(const gguf::File& f, const std::string& name) {
  const gguf::TensorInfo* t = f.find_tensor(name);
  if (!t) throw Error(f.path() + ": missing tensor '" + name + "'");
  return *t;
}

void check_shape(const gguf::File& f, const gguf::TensorInfo& t, uint64_t ne0, uint64_t ne1) {
  const bool ok = ne1 == 0 ? (t.n_dims == 1 && t.ne[0] == ne0)
                           : (t.n_dims == 2 && t.ne[0] == ne0 && t.ne[1] == ne1);
  if (!ok) {
    std::string want("[");
    want += std::to_string(ne0);
    if (ne1) want += ", " + std::to_string(ne1);
    want += "]";
    throw Error(f.path() + ": tensor '" + t.name + "' has shape " + t.shape_string() + ", expected " + want);
  }
}

const float* vector_f32(const gguf::File& f, const std::string& name, uint64_t n, bool required = true) {
  const gguf::TensorInfo* t = f.find_tensor(name);
  if (!t) {
    if (required) throw Error(f.path() + ": missing tensor '" + name + "'");
    return nullptr;
  }
  check_shape(f, *t, n, 0);
  if (t->type != TensorType::F32)
    throw Error(f.path() + ": tensor '" + name + "' has type " + std::string(gguf::type_name(t->type)) +
                ", expected f32 for norms and biases");
  return reinterpret_cast<const float*>(t->data);
}

kernels::Matrix matrix(const gguf::File& f, const std::string& name, uint64_t cols, uint64_t rows) {
  const auto& t = need_tensor(f, name);
  check_shape(f, t, cols, rows);
  if (!gguf::traits(t.type).supported)
    throw Error(f.path() + ": tensor '" + name + "' has type " + std::string(gguf::type_name(t.type)) +
                ", which this engine does not compute with (supported: f32 f16 bf16 q8_0 q4_0 q4_k q5_k q6_k, and q4_1 q5_0 "
                "q5_1 q2_k q3_k through the slower dequantizing path)");
  kernels::Matrix m;
  m.type = t.type;
  m.data = t.data;
  m.rows = static_cast<int64_t>(rows);
  m.cols = static_cast<int64_t>(cols);
  m.row_bytes = gguf::row_bytes(t.type, cols);
  return m;
}

}  // namespace

uint64_t ModelConfig::n_params_matmul() const {
  const uint64_t e = n_embd, per_layer = e * q_dim() + 2 * e * kv_dim() + static_cast<uint64_t>(q_dim()) * e +
                                         3 * e * static_cast<uint64_t>(n_ff);
  return per_layer * n_layer + static_cast<uint64_t>(n_vocab) * e;
}

uint64_t ModelConfig::n_params_total() const {
  // Matmul parameters count the vocabulary matrix once (the output head); an
  // untied model stores a second one for the embedding lookup.
  uint64_t n = n_params_matmul() + (tied_output ? 0 : static_cast<uint64_t>(n_vocab) * n_embd);
  n += static_cast<uint64_t>(n_layer) * 2 * n_embd + n_embd;  // norms
  if (has_qkv_bias) n += static_cast<uint64_t>(n_layer) * (q_dim() + 2 * kv_dim());
  if (has_qk_norm) n += static_cast<uint64_t>(n_layer) * 2 * head_dim;
  return n;
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

void Model::merge_adapter(Model& model, const std::string& path, float scale) {
  if (!std::isfinite(scale)) throw Error("--lora " + path + ": the scale must be finite");
  if (scale == 0) return;
  auto adapter = LoraAdapter::load(path, model);
  Impl& m = *model.impl_;
  for (auto& [name, target] : m.matrices_by_name) {
    const LoraAdapter::Pair* p = adapter->find(target);
    if (!p) continue;
    kernels::Matrix& w = const_cast<kernels::Matrix&>(*target);
    const int64_t rows = w.rows, cols = w.cols, r = p->rank;
    const float s = adapter->effective_scale(*p, scale);
    std::vector<float> a(static_cast<size_t>(r * cols)), b_row(static_cast<size_t>(r));
    for (int64_t k = 0; k < r; ++k) kernels::get_row(p->a, k, &a[static_cast<size_t>(k * cols)]);
    if (!kernels::quant_supported(w.type) && w.type != gguf::TensorType::F32)
      throw Error(path + ": cannot merge into '" + name + "' of type " + std::string(gguf::type_name(w.type)) +
                  " (apply the adapter unmerged)");
    // W' in the base's own type (re-quantized, as llama.cpp's export-lora
    // does), so the merged model runs the same kernels at the same speed.
    const bool f32 = w.type == gguf::TensorType::F32;
    const size_t row_bytes = f32 ? static_cast<size_t>(cols) * sizeof(float) : w.row_bytes;
    std::unique_ptr<uint8_t[]> out(new uint8_t[row_bytes * static_cast<size_t>(rows)]);
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t i = 0; i < rows; ++i) {
      kernels::get_row(w, i, row.data());  // the base (or an earlier merge)
      kernels::get_row(p->b, i, b_row.data());
      for (int64_t k = 0; k < r; ++k) {
        const float c = s * b_row[static_cast<size_t>(k)];
        const float* ak = &a[static_cast<size_t>(k * cols)];
        for (int64_t j = 0; j < cols; ++j) row[static_cast<size_t>(j)] += c * ak[j];
      }
      uint8_t* dst = out.get() + static_cast<size_t>(i) * row_bytes;
      if (f32)
        std::memcpy(dst, row.data(), row_bytes);
      else
        kernels::quantize_row(w.type, row.data(), dst, static_cast<size_t>(cols));
    }
    w.data = out.get();
    w.row_bytes = row_bytes;
    w.packed = nullptr;
    if (kernels::packed_bytes(w) > 0) {
      std::unique_ptr<uint8_t[]> packed(new uint8_t[kernels::packed_bytes(w)]);
      kernels::pack_weights(w, packed.get());
      w.packed = packed.get();
      m.merged.push_back(std::move(packed));
    }
    m.merged.push_back(std::move(out));
  }
}
Model::~Model() = default;
const ModelConfig& Model::config() const { return impl_->cfg; }
const gguf::File& Model::file() const { return *impl_->file; }
const std::string& Model::path() const { return impl_->file->path(); }
int Model::n_threads() const { return impl_->pool->size(); }
uint64_t Model::file_bytes() const { return impl_->file->size(); }
uint64_t Model::packed_bytes() const { return impl_->packed_total; }
double Model::load_seconds() const { return impl_->load_s; }

uint64_t Model::weight_bytes_per_token() const {
  const Impl& m = *impl_;
  auto bytes = [](const kernels::Matrix& w) { return static_cast<uint64_t>(w.rows) * w.row_bytes; };
  uint64_t total = bytes(m.output);
  for (const auto& l : m.layers)
    total += bytes(l.wq) + bytes(l.wk) + bytes(l.wv) + bytes(l.wo) + bytes(l.gate) + bytes(l.up) + bytes(l.down);
  return total;
}

std::shared_ptr<Model> Model::load(const std::string& path, const LoadOptions& opts) {
  Stopwatch load_clock;
  auto impl = std::make_unique<Impl>();
  impl->file = gguf::File::open(path);
  const gguf::File& f = *impl->file;
  ModelConfig& c = impl->cfg;

  auto arch = f.get_string("general.architecture");
  if (!arch) throw Error(path + ": missing required metadata key 'general.architecture'");
  c.arch = *arch;
  if (c.arch != "llama" && c.arch != "qwen2" && c.arch != "qwen3")
    throw Error(path + ": unknown architecture '" + c.arch + "' (supported: llama, qwen2, qwen3)");
  c.name = f.get_string("general.name").value_or("");
  c.n_embd = get_int(f, key(c, "embedding_length"));
  c.n_layer = get_int(f, key(c, "block_count"));
  c.n_ff = get_int(f, key(c, "feed_forward_length"));
  c.n_head = get_int(f, key(c, "attention.head_count"));
  c.n_head_kv = get_int(f, key(c, "attention.head_count_kv"), c.n_head);
  c.n_ctx_train = get_int(f, key(c, "context_length"), 2048);
  // Each count names its key when it is zero; then the heads must group.
  for (const auto& [v, suffix] : {std::pair{c.n_embd, "embedding_length"}, std::pair{c.n_layer, "block_count"},
                                  std::pair{c.n_ff, "feed_forward_length"}, std::pair{c.n_head, "attention.head_count"},
                                  std::pair{c.n_head_kv, "attention.head_count_kv"},
                                  std::pair{c.n_ctx_train, "context_length"}})
    if (v <= 0) throw Error(path + ": metadata key '" + key(c, suffix) + "' = " + std::to_string(v) + " must be > 0");
  if (c.n_head % c.n_head_kv != 0)
    throw Error(path + ": metadata key '" + key(c, "attention.head_count") + "' = " + std::to_string(c.n_head) +
                " is not a multiple of '" + key(c, "attention.head_count_kv") + "' = " + std::to_string(c.n_head_kv));
  if (c.n_embd % c.n_head != 0 && !f.find(key(c, "attention.key_length")))
    throw Error(path + ": metadata key '" + key(c, "embedding_length") + "' = " + std::to_string(c.n_embd) +
                " is not divisible by '" + key(c, "attention.head_count") + "' = " + std::to_string(c.n_head) +
                " and no '" + key(c, "attention.key_length") + "' is given");
  c.head_dim = get_int(f, key(c, "attention.key_length"), c.n_embd / c.n_head);
  int vdim = get_int(f, key(c, "attention.value_length"), c.head_dim);
  if (vdim != c.head_dim)
    throw Error(path + ": metadata key '" + key(c, "attention.value_length") + "' = " + std::to_string(vdim) +
                " differs from the key length " + std::to_string(c.head_dim) + " (not supported)");
  if (c.head_dim <= 0 || c.head_dim % 2 != 0)
    throw Error(path + ": metadata key '" + key(c, "attention.key_length") + "' (head dimension) = " +
                std::to_string(c.head_dim) + " must be a positive even number");
  // Stored as f32 in practice; checked in double, then narrowed: a value
  // that is finite in double but not in float is refused too.
  const std::string eps_key = key(c, "attention.layer_norm_rms_epsilon"), base_key = key(c, "rope.freq_base");
  c.rms_eps = static_cast<float>(positive_f64(f, eps_key, 1e-5));
  c.rope_base = static_cast<float>(positive_f64(f, base_key, 10000.0));
  if (!std::isfinite(c.rope_base) || !(c.rms_eps > 0))
    throw Error(path + ": metadata keys '" + eps_key + "'/'" + base_key + "' are out of float range");
  c.rope_dim = get_int(f, key(c, "rope.dimension_count"), c.head_dim);
  if (c.rope_dim <= 0 || c.rope_dim > c.head_dim || c.rope_dim % 2 != 0)
    throw Error(path + ": metadata key '" + key(c, "rope.dimension_count") + "' = " + std::to_string(c.rope_dim) +
                " is invalid for head dimension " + std::to_string(c.head_dim) + " (must be even and in 2.." +
                std::to_string(c.head_dim) + ")");
  c.rope_type = c.arch == "llama" ? RopeType::Norm : RopeType::Neox;
  c.has_qkv_bias = c.arch == "qwen2";
  c.has_qk_norm = c.arch == "qwen3";

  const auto& emb = need_tensor(f, "token_embd.weight");
  if (emb.n_dims != 2 || emb.ne[0] != static_cast<uint64_t>(c.n_embd))
    throw Error(path + ": tensor 'token_embd.weight' has shape " + emb.shape_string() + ", expected [" +
                std::to_string(c.n_embd) + ", n_vocab]");
  c.n_vocab = static_cast<int>(emb.ne[1]);
  impl->token_embd = matrix(f, "token_embd.weight", c.n_embd, c.n_vocab);
  c.tied_output = f.find_tensor("output.weight") == nullptr;
  impl->output = c.tied_output ? impl->token_embd : matrix(f, "output.weight", c.n_embd, c.n_vocab);
  impl->output_norm = vector_f32(f, "output_norm.weight", c.n_embd);

  const uint64_t e = c.n_embd, q = c.q_dim(), kv = c.kv_dim(), ff = c.n_ff;
  for (int il = 0; il < c.n_layer; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    LayerWeights l;
    l.attn_norm = vector_f32(f, p + "attn_norm.weight", e);
    l.ffn_norm = vector_f32(f, p + "ffn_norm.weight", e);
    l.wq = matrix(f, p + "attn_q.weight", e, q);
    l.wk = matrix(f, p + "attn_k.weight", e, kv);
    l.wv = matrix(f, p + "attn_v.weight", e, kv);
    l.wo = matrix(f, p + "attn_output.weight", q, e);
    l.gate = matrix(f, p + "ffn_gate.weight", e, ff);
    l.up = matrix(f, p + "ffn_up.weight", e, ff);
    l.down = matrix(f, p + "ffn_down.weight", ff, e);
    if (c.has_qkv_bias) {
      l.bq = vector_f32(f, p + "attn_q.bias", q);
      l.bk = vector_f32(f, p + "attn_k.bias", kv);
      l.bv = vector_f32(f, p + "attn_v.bias", kv);
    }
    if (c.has_qk_norm) {
      l.q_norm = vector_f32(f, p + "attn_q_norm.weight", c.head_dim);
      l.k_norm = vector_f32(f, p + "attn_k_norm.weight", c.head_dim);
    }
    impl->layers.push_back(l);
  }

  // Rope frequencies: theta_i = base^(-2i/d), divided by Llama-3.1 style
  // per-dimension factors when the model ships `rope_freqs.weight`.
  const int half = c.rope_dim / 2;
  impl->rope_inv_freq.resize(half);
  const float* factors = vector_f32(f, "rope_freqs.weight", half, false);
  c.has_rope_freqs = factors != nullptr;
  for (int i = 0; factors && i < half; ++i)
    if (!std::isfinite(factors[i]) || factors[i] <= 0)
      throw Error(path + ": tensor 'rope_freqs.weight' [" + std::to_string(i) + "] = " + std::to_string(factors[i]) +
                  " must be a finite rope scaling factor > 0");
  for (int i = 0; i < half; ++i) {
    float fr = std::pow(c.rope_base, -2.0f * static_cast<float>(i) / static_cast<float>(c.rope_dim));
    impl->rope_inv_freq[i] = factors ? fr / factors[i] : fr;
  }
  if (auto st = f.get_string(key(c, "rope.scaling.type")); st && *st != "none") {
    if (*st != "linear")
      throw Error(path + ": rope scaling type '" + *st + "' is not supported (supported: none, linear, rope_freqs)");
    const double factor = positive_f64(f, key(c, "rope.scaling.factor"), 1.0);
    impl->rope_pos_scale = static_cast<float>(1.0 / factor);
  }

  for (size_t il = 0; il < impl->layers.size(); ++il) {
    LayerWeights& l = impl->layers[il];
    const std::string p = "blk." + std::to_string(il) + ".";
    for (auto [name, m] : {std::pair{"attn_q", &l.wq}, {"attn_k", &l.wk}, {"attn_v", &l.wv}, {"attn_output", &l.wo},
                           {"ffn_gate", &l.gate}, {"ffn_up", &l.up}, {"ffn_down", &l.down}})
      impl->matrices_by_name[p + name + ".weight"] = m;
  }

  impl->pool = kernels::ThreadPool::shared(opts.n_threads);
  if (kernels::packed_available() && opts.repack) {
    std::vector<kernels::Matrix*> todo;
    for (auto& l : impl->layers)
      for (kernels::Matrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down})
        if (kernels::packed_bytes(*m) > 0) todo.push_back(m);
    // A copy of token_embd's view when tied: lookups keep the original layout.
    if (kernels::packed_bytes(impl->output) > 0) todo.push_back(&impl->output);
    for (kernels::Matrix* m : todo) {
      impl->packed.emplace_back(new uint8_t[kernels::packed_bytes(*m)]);
      impl->packed_total += kernels::packed_bytes(*m);
    }
    // The kernels read only the packed copy: once a matrix is packed, its
    // mapped original's pages are dropped from memory (whole pages inside the
    // tensor; the file stays mapped, so an embedding lookup of a tied table
    // faults its row back). Done per matrix, so the peak stays near one copy.
    const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    impl->pool->parallel_for(static_cast<int64_t>(todo.size()), 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        kernels::Matrix& m = *todo[static_cast<size_t>(i)];
        kernels::pack_weights(m, impl->packed[static_cast<size_t>(i)].get());
        const uintptr_t from = reinterpret_cast<uintptr_t>(m.data);
        const uintptr_t begin = (from + page - 1) & ~(page - 1);
        const uintptr_t end = (from + static_cast<uintptr_t>(m.rows) * m.row_bytes) & ~(page - 1);
        if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
      }
    });
    for (size_t i = 0; i < todo.size(); ++i) todo[i]->packed = impl->packed[i].get();
  }

  std::shared_ptr<Model> model(new Model(std::move(impl)));
  for (const auto& [adapter_path, scale] : opts.merge_lora) merge_adapter(*model, adapter_path, scale);
  model->impl_->load_s = load_clock.seconds();
  return model;
}

}  // namespace specsteer
