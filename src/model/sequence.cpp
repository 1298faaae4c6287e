// The forward pass of llama / qwen2 / qwen3 decoders over one KV cache.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "common/error.h"
#include "kernels/quant.h"
#include "kernels/simd.h"
#include "model/model.h"
#include "model/model_impl.h"

namespace specsteer {
namespace {

void rms_norm(const float* x, const float* w, float* out, int n, float eps) {
  double ss = 0;
  for (int i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float scale = 1.0f / std::sqrt(static_cast<float>(ss / n) + eps);
  for (int i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

// Rotates one head in place. Norm: adjacent pairs (2i, 2i+1); Neox: pairs
// (i, i + d/2). Dimensions past rope_dim stay as they are.
void rope(float* v, int rope_dim, RopeType type, const float* inv_freq, float pos) {
  const int half = rope_dim / 2;
  for (int i = 0; i < half; ++i) {
    const float theta = pos * inv_freq[i];
    const float c = std::cos(theta), s = std::sin(theta);
    const int a = type == RopeType::Norm ? 2 * i : i;
    const int b = type == RopeType::Norm ? 2 * i + 1 : i + half;
    const float x0 = v[a], x1 = v[b];
    v[a] = x0 * c - x1 * s;
    v[b] = x0 * s + x1 * c;
  }
}

inline float silu(float x) { return x / (1.0f + std::exp(-x)); }

}  // namespace

struct Sequence::State {
  std::shared_ptr<const Model> model;
  const Model::Impl* m = nullptr;
  int n_ctx = 0;
  KvType kv_type = KvType::F32;
  std::vector<int32_t> tokens;
  // KV cache, [layer][position][kv_dim], F32 or F16 bits.
  std::vector<float> k32, v32;
  std::vector<uint16_t> k16, v16;
  // Scratch, grown to the largest batch seen.
  std::vector<float> x, xn, q, k, v, att, gate, up, logits;
  uint64_t positions = 0;
  uint64_t attention = 0;

  size_t kv_index(int layer, int pos) const {
    return (static_cast<size_t>(layer) * n_ctx + pos) * m->cfg.kv_dim();
  }
  void store_kv(int layer, int pos, const float* kk, const float* vv) {
    const int d = m->cfg.kv_dim();
    const size_t at = kv_index(layer, pos);
    if (kv_type == KvType::F32) {
      std::memcpy(&k32[at], kk, d * sizeof(float));
      std::memcpy(&v32[at], vv, d * sizeof(float));
    } else {
      for (int i = 0; i < d; ++i) {
        k16[at + i] = kernels::fp32_to_fp16(kk[i]);
        v16[at + i] = kernels::fp32_to_fp16(vv[i]);
      }
    }
  }
  float k_at(size_t i) const { return kv_type == KvType::F32 ? k32[i] : kernels::fp16_to_fp32(k16[i]); }
  float v_at(size_t i) const { return kv_type == KvType::F32 ? v32[i] : kernels::fp16_to_fp32(v16[i]); }

  void forward(const int32_t* ids, int n, bool all_logits);
  void attend(int layer, int pos0, int n);
};

void Sequence::State::attend(int layer, int pos0, int n) {
  const ModelConfig& c = m->cfg;
  const int hd = c.head_dim, group = c.n_head / c.n_head_kv, qd = c.q_dim();
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const float* f16 = kernels::simd::fp16_table();
  m->pool->parallel_for(static_cast<int64_t>(n) * c.n_head, 1, [&](int64_t b, int64_t e) {
    thread_local std::vector<float> scores;
    thread_local std::vector<float> acc;
    if (static_cast<int>(scores.size()) < n_ctx) scores.resize(n_ctx);
    if (static_cast<int>(acc.size()) < hd) acc.resize(hd);
    for (int64_t job = b; job < e; ++job) {
      const int i = static_cast<int>(job / c.n_head), h = static_cast<int>(job % c.n_head);
      const int kvh = h / group, len = pos0 + i + 1;  // causal: positions 0..pos0+i
      const float* qv = &q[static_cast<size_t>(i) * qd + h * hd];
      float mx = -INFINITY;
      for (int t = 0; t < len; ++t) {
        const size_t base = kv_index(layer, t) + kvh * hd;
        float s = 0;
        if (kv_type == KvType::F32) {
          s = kernels::simd::dot_f32(qv, &k32[base], static_cast<size_t>(hd));
        } else {
          for (int d = 0; d < hd; ++d) s += qv[d] * f16[k16[base + d]];
        }
        s *= scale;
        scores[t] = s;
        mx = std::max(mx, s);
      }
      double sum = 0;
      for (int t = 0; t < len; ++t) {
        scores[t] = std::exp(scores[t] - mx);
        sum += scores[t];
      }
      const float inv = static_cast<float>(1.0 / sum);
      std::fill(acc.begin(), acc.begin() + hd, 0.0f);
      for (int t = 0; t < len; ++t) {
        const size_t base = kv_index(layer, t) + kvh * hd;
        const float p = scores[t] * inv;
        if (kv_type == KvType::F32) {
          const float* vv = &v32[base];
          for (int d = 0; d < hd; ++d) acc[d] += p * vv[d];
        } else {
          for (int d = 0; d < hd; ++d) acc[d] += p * f16[v16[base + d]];
        }
      }
      std::copy(acc.begin(), acc.begin() + hd, &att[static_cast<size_t>(i) * qd + h * hd]);
    }
  });
}

void Sequence::State::forward(const int32_t* ids, int n, bool all_logits) {
  const ModelConfig& c = m->cfg;
  const int e = c.n_embd, qd = c.q_dim(), kvd = c.kv_dim(), ff = c.n_ff, hd = c.head_dim;
  const int pos0 = static_cast<int>(tokens.size());
  auto grow = [](std::vector<float>& b, size_t n) {
    if (b.size() < n) b.resize(n);
  };
  grow(x, static_cast<size_t>(n) * e);
  grow(xn, static_cast<size_t>(n) * e);
  grow(q, static_cast<size_t>(n) * qd);
  grow(k, static_cast<size_t>(n) * kvd);
  grow(v, static_cast<size_t>(n) * kvd);
  grow(att, static_cast<size_t>(n) * qd);
  grow(gate, static_cast<size_t>(n) * ff);
  grow(up, static_cast<size_t>(n) * ff);
  kernels::ThreadPool& pool = *m->pool;

  for (int i = 0; i < n; ++i) kernels::get_row(m->token_embd, ids[i], &x[static_cast<size_t>(i) * e]);

  for (int il = 0; il < c.n_layer; ++il) {
    const LayerWeights& L = m->layers[il];
    for (int i = 0; i < n; ++i) rms_norm(&x[i * e], L.attn_norm, &xn[i * e], e, c.rms_eps);
    kernels::matmul(L.wq, xn.data(), n, q.data(), pool);
    kernels::matmul(L.wk, xn.data(), n, k.data(), pool);
    kernels::matmul(L.wv, xn.data(), n, v.data(), pool);
    for (int i = 0; i < n; ++i) {
      float* qi = &q[static_cast<size_t>(i) * qd];
      float* ki = &k[static_cast<size_t>(i) * kvd];
      float* vi = &v[static_cast<size_t>(i) * kvd];
      if (L.bq) {
        for (int j = 0; j < qd; ++j) qi[j] += L.bq[j];
        for (int j = 0; j < kvd; ++j) ki[j] += L.bk[j];
        for (int j = 0; j < kvd; ++j) vi[j] += L.bv[j];
      }
      const float pos = static_cast<float>(pos0 + i) * m->rope_pos_scale;
      for (int h = 0; h < c.n_head; ++h) {
        if (L.q_norm) rms_norm(qi + h * hd, L.q_norm, qi + h * hd, hd, c.rms_eps);
        rope(qi + h * hd, c.rope_dim, c.rope_type, m->rope_inv_freq.data(), pos);
      }
      for (int h = 0; h < c.n_head_kv; ++h) {
        if (L.k_norm) rms_norm(ki + h * hd, L.k_norm, ki + h * hd, hd, c.rms_eps);
        rope(ki + h * hd, c.rope_dim, c.rope_type, m->rope_inv_freq.data(), pos);
      }
      store_kv(il, pos0 + i, ki, vi);
    }
    attend(il, pos0, n);
    kernels::matmul(L.wo, att.data(), n, xn.data(), pool);
    for (size_t j = 0; j < static_cast<size_t>(n) * e; ++j) x[j] += xn[j];

    for (int i = 0; i < n; ++i) rms_norm(&x[i * e], L.ffn_norm, &xn[i * e], e, c.rms_eps);
    kernels::matmul(L.gate, xn.data(), n, gate.data(), pool);
    kernels::matmul(L.up, xn.data(), n, up.data(), pool);
    for (size_t j = 0; j < static_cast<size_t>(n) * ff; ++j) gate[j] = silu(gate[j]) * up[j];
    kernels::matmul(L.down, gate.data(), n, xn.data(), pool);
    for (size_t j = 0; j < static_cast<size_t>(n) * e; ++j) x[j] += xn[j];
  }

  const int first = all_logits ? 0 : n - 1, rows = n - first;
  for (int i = first; i < n; ++i) rms_norm(&x[i * e], m->output_norm, &xn[(i - first) * e], e, c.rms_eps);
  grow(logits, static_cast<size_t>(rows) * c.n_vocab);
  kernels::matmul(m->output, xn.data(), rows, logits.data(), pool);

  positions += n;
  for (int i = 0; i < n; ++i) attention += static_cast<uint64_t>(pos0 + i + 1);
}

Sequence::Sequence(std::shared_ptr<const Model> model, SequenceOptions opts) : s_(std::make_unique<State>()) {
  if (!model) throw Error("Sequence needs a model");
  s_->model = std::move(model);
  s_->m = &s_->model->impl();
  const ModelConfig& c = s_->m->cfg;
  if (opts.n_ctx < 0) throw Error("context size must not be negative");
  s_->n_ctx = opts.n_ctx > 0 ? opts.n_ctx : c.n_ctx_train;
  s_->kv_type = opts.kv_type;
  const size_t cells = static_cast<size_t>(c.n_layer) * s_->n_ctx * c.kv_dim();
  if (s_->kv_type == KvType::F32) {
    s_->k32.resize(cells);
    s_->v32.resize(cells);
  } else {
    s_->k16.resize(cells);
    s_->v16.resize(cells);
  }
}

Sequence::~Sequence() = default;
Sequence::Sequence(Sequence&&) noexcept = default;
Sequence& Sequence::operator=(Sequence&&) noexcept = default;

std::span<const float> Sequence::eval(std::span<const int32_t> ids, bool all_logits) {
  State& s = *s_;
  const ModelConfig& c = s.m->cfg;
  if (ids.empty()) throw Error("eval needs at least one token");
  if (s.tokens.size() + ids.size() > static_cast<size_t>(s.n_ctx))
    throw Error("context overflow: " + std::to_string(s.tokens.size()) + " cached + " + std::to_string(ids.size()) +
                " new tokens exceed the context size " + std::to_string(s.n_ctx));
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= c.n_vocab)
      throw Error("token id " + std::to_string(ids[i]) + " at batch index " + std::to_string(i) +
                  " is outside the vocabulary [0, " + std::to_string(c.n_vocab) + ")");
  {
    std::lock_guard<std::mutex> lock(const_cast<Model::Impl*>(s.m)->pool_mu);
    s.forward(ids.data(), static_cast<int>(ids.size()), all_logits);
  }
  s.tokens.insert(s.tokens.end(), ids.begin(), ids.end());
  const size_t rows = all_logits ? ids.size() : 1;
  return {s.logits.data(), rows * static_cast<size_t>(c.n_vocab)};
}

size_t Sequence::size() const { return s_->tokens.size(); }
size_t Sequence::capacity() const { return static_cast<size_t>(s_->n_ctx); }
void Sequence::truncate(size_t n) {
  // Cached K/V past n are simply overwritten by later evals.
  if (n < s_->tokens.size()) s_->tokens.resize(n);
}
const std::vector<int32_t>& Sequence::tokens() const { return s_->tokens; }
const Model& Sequence::model() const { return *s_->model; }
int Sequence::n_vocab() const { return s_->m->cfg.n_vocab; }
uint64_t Sequence::positions_evaluated() const { return s_->positions; }
uint64_t Sequence::attention_work() const { return s_->attention; }

}  // namespace specsteer
