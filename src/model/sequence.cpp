// The forward pass of llama / qwen2 / qwen3 decoders over one KV cache.
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "common/error.h"
#include "kernels/quant.h"
#include "kernels/simd.h"
#include "model/model.h"
#include "model/model_impl.h"

namespace specsteer {
namespace {

void rms_norm(const float* x, const float* w, float* out, int n, float eps) {
  kernels::simd::rms_norm(x, w, out, static_cast<size_t>(n), eps);
}

// Rotates one head in place by the angles whose cos/sin are in cs
// ([rope_dim/2][2], the same for every head at one position). Norm: adjacent
// pairs (2i, 2i+1); Neox: pairs (i, i + d/2). Dimensions past rope_dim stay.
void rope(float* v, int rope_dim, RopeType type, const float* cs) {
  const int half = rope_dim / 2;
  for (int i = 0; i < half; ++i) {
    const float c = cs[2 * i], s = cs[2 * i + 1];
    const int a = type == RopeType::Norm ? 2 * i : i;
    const int b = type == RopeType::Norm ? 2 * i + 1 : i + half;
    const float x0 = v[a], x1 = v[b];
    v[a] = x0 * c - x1 * s;
    v[b] = x0 * s + x1 * c;
  }
}

// An anonymous mapping whose pages are committed when first written: a cache
// reserved for a long context costs memory only for the positions used
// (head-major layout fills each head's region from its start), and nothing
// is zero-filled up front. Positions past the cached length are never read.
template <typename T>
class LazyBuffer {
 public:
  LazyBuffer() = default;
  explicit LazyBuffer(size_t n) : n_(n) {
    if (n == 0) return;
    void* p = mmap(nullptr, n * sizeof(T), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
      throw Error("cannot reserve " + std::to_string(n * sizeof(T) >> 20) + " MiB of address space for the KV cache: " +
                  std::strerror(errno) + " (set a smaller context with -c)");
    data_ = static_cast<T*>(p);
  }
  LazyBuffer(LazyBuffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  LazyBuffer& operator=(LazyBuffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  ~LazyBuffer() { release(); }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  size_t size() const { return n_; }

 private:
  void release() {
    if (data_) munmap(data_, n_ * sizeof(T));
    data_ = nullptr;
  }
  T* data_ = nullptr;
  size_t n_ = 0;
};

}  // namespace

struct Sequence::State {
  std::shared_ptr<const Model> model;
  const Model::Impl* m = nullptr;
  int n_ctx = 0;
  KvType kv_type = KvType::F16;
  std::vector<LoraRef> lora;  // private adapters (empty: the base model)
  std::vector<int32_t> tokens;
  // KV cache, [layer][kv_head][position][head_dim], F32 or F16 bits: one
  // head's positions are contiguous, so attention streams them (rows
  // kv_dim apart put every position of a head in the same cache sets).
  LazyBuffer<float> k32, v32;
  LazyBuffer<uint16_t> k16, v16;
  std::vector<float> logits;  // rows of the last eval, [logit_rows][n_vocab]
  size_t logit_rows = 0;
  uint64_t positions = 0;
  uint64_t attention = 0;
  std::string kv_identity;

  size_t kv_index(int layer, int kv_head, int pos) const {
    const ModelConfig& c = m->cfg;
    return ((static_cast<size_t>(layer) * c.n_head_kv + kv_head) * n_ctx + pos) * c.head_dim;
  }
  // kk, vv: the position's K and V rows, [kv_dim] each.
  void store_kv(int layer, int pos, const float* kk, const float* vv) {
    const int hd = m->cfg.head_dim;
    for (int h = 0; h < m->cfg.n_head_kv; ++h) {
      const size_t at = kv_index(layer, h, pos);
      const float* kh = kk + h * hd;
      const float* vh = vv + h * hd;
      if (kv_type == KvType::F32) {
        std::memcpy(&k32[at], kh, hd * sizeof(float));
        std::memcpy(&v32[at], vh, hd * sizeof(float));
      } else {
        for (int i = 0; i < hd; ++i) {
          k16[at + i] = kernels::fp32_to_fp16(kh[i]);
          v16[at + i] = kernels::fp32_to_fp16(vh[i]);
        }
      }
    }
  }
  void check(std::span<const int32_t> ids) const;

  // Runs the tokens of one or more Sequences (of the same model) through the
  // decoder in one pass; batch rows are the items' tokens in item order.
  static void forward(const Model::Impl& m, std::span<const BatchItem> items);
  static void add_lora(const Model::Impl& m, ForwardScratch& w, std::span<const BatchItem> items,
                       const kernels::Matrix& W, const float* x, float* y);
  // Attention of the n batch rows described in w.row_seq / w.row_pos.
  static void attend(const Model::Impl& m, ForwardScratch& w, int n, int layer);
};

void Sequence::State::attend(const Model::Impl& m, ForwardScratch& w, int n, int layer) {
  const ModelConfig& c = m.cfg;
  const int hd = c.head_dim, group = c.n_head / c.n_head_kv, qd = c.q_dim();
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // One scores slice per pool thread, sized here (by the sequences' context
  // sizes, so it stops growing after the first pass) rather than lazily in
  // whichever thread runs a job.
  size_t slice = 0;
  for (int i = 0; i < n; ++i) slice = std::max(slice, static_cast<size_t>(w.row_seq[i]->s_->n_ctx));
  if (w.scores.size() < slice * m.pool->size()) w.scores.resize(slice * m.pool->size());
  auto heads = [&](int64_t b, int64_t e) {
    float* scores = &w.scores[slice * static_cast<size_t>(kernels::ThreadPool::thread_index())];
    for (int64_t job = b; job < e; ++job) {
      const int i = static_cast<int>(job / c.n_head), h = static_cast<int>(job % c.n_head);
      const State& s = *w.row_seq[i]->s_;
      const int kvh = h / group, len = w.row_pos[i] + 1;  // causal: positions 0..pos
      const float* qv = &w.q[static_cast<size_t>(i) * qd + h * hd];
      float* out = &w.att[static_cast<size_t>(i) * qd + h * hd];
      const size_t base = s.kv_index(layer, kvh, 0), stride = static_cast<size_t>(hd);
      if (s.kv_type == KvType::F32)
        kernels::simd::attend_head(qv, &s.k32[base], &s.v32[base], stride, len, hd, scale, scores, out);
      else
        kernels::simd::attend_head(qv, &s.k16[base], &s.v16[base], stride, len, hd, scale, scores, out);
    }
  };
  uint64_t work = 0;  // scores and value sums: 2 x positions x head width per head
  for (int i = 0; i < n; ++i) work += 2ull * static_cast<uint64_t>(w.row_pos[i] + 1) * static_cast<uint64_t>(hd * c.n_head);
  if (work < kernels::kMinParallelWork)
    heads(0, static_cast<int64_t>(n) * c.n_head);
  else
    m.pool->parallel_for(static_cast<int64_t>(n) * c.n_head, 1, heads);
}

// Adds each item's LoRA terms s_eff * B (A x) for base matrix W to y: x is
// [n][W.cols], y is [n][W.rows], rows grouped by item in batch order.
void Sequence::State::add_lora(const Model::Impl& m, ForwardScratch& w, std::span<const BatchItem> items,
                               const kernels::Matrix& W, const float* x, float* y) {
  size_t row = 0;
  for (const BatchItem& it : items) {
    const size_t n = it.tokens.size();
    for (const LoraRef& l : it.seq->s_->lora) {
      const LoraAdapter::Pair* p = l.adapter->find(&W);
      if (!p) continue;
      const float s_eff = l.adapter->effective_scale(*p, l.scale);
      if (w.lora_mid.size() < n * p->rank) w.lora_mid.resize(n * p->rank);
      if (w.lora_out.size() < n * W.rows) w.lora_out.resize(n * W.rows);
      kernels::matmul(p->a, x + row * W.cols, static_cast<int64_t>(n), w.lora_mid.data(), *m.pool);
      kernels::matmul(p->b, w.lora_mid.data(), static_cast<int64_t>(n), w.lora_out.data(), *m.pool);
      float* out = y + row * W.rows;
      for (size_t i = 0; i < n * static_cast<size_t>(W.rows); ++i) out[i] += s_eff * w.lora_out[i];
    }
    row += n;
  }
}

void Sequence::State::forward(const Model::Impl& m, std::span<const BatchItem> items) {
  const ModelConfig& c = m.cfg;
  const int e = c.n_embd, qd = c.q_dim(), kvd = c.kv_dim(), ff = c.n_ff, hd = c.head_dim;
  ForwardScratch& w = const_cast<ForwardScratch&>(m.scratch);  // guarded by pool_mu
  // Row tables live in the scratch, so a decode step allocates nothing.
  w.ids.clear();
  w.row_seq.clear();
  w.row_pos.clear();
  for (const BatchItem& it : items)
    for (size_t i = 0; i < it.tokens.size(); ++i) {
      w.ids.push_back(it.tokens[i]);
      w.row_seq.push_back(it.seq);
      w.row_pos.push_back(static_cast<int>(it.seq->s_->tokens.size() + i));
    }
  const int n = static_cast<int>(w.ids.size());
  auto grow = [](std::vector<float>& b, size_t len) {
    if (b.size() < len) b.resize(len);
  };
  grow(w.x, static_cast<size_t>(n) * e);
  grow(w.xn, static_cast<size_t>(n) * e);
  grow(w.q, static_cast<size_t>(n) * qd);
  grow(w.k, static_cast<size_t>(n) * kvd);
  grow(w.v, static_cast<size_t>(n) * kvd);
  grow(w.att, static_cast<size_t>(n) * qd);
  grow(w.gate, static_cast<size_t>(n) * ff);
  grow(w.up, static_cast<size_t>(n) * ff);
  kernels::ThreadPool& pool = *m.pool;
  float *x = w.x.data(), *xn = w.xn.data();
  bool any_lora = false;
  for (const BatchItem& it : items) any_lora |= !it.seq->s_->lora.empty();

  for (int i = 0; i < n; ++i) kernels::get_row(m.token_embd, w.ids[i], &x[static_cast<size_t>(i) * e]);
  // Rope angles depend only on the position: once per row, not per head and layer.
  const int half = c.rope_dim / 2;
  grow(w.rope_cs, static_cast<size_t>(n) * half * 2);
  for (int i = 0; i < n; ++i) {
    const float pos = static_cast<float>(w.row_pos[i]) * m.rope_pos_scale;
    for (int j = 0; j < half; ++j) {
      const float theta = pos * m.rope_inv_freq[j];
      w.rope_cs[(static_cast<size_t>(i) * half + j) * 2] = std::cos(theta);
      w.rope_cs[(static_cast<size_t>(i) * half + j) * 2 + 1] = std::sin(theta);
    }
  }

  // Row-wise steps run over the pool too (a row per chunk): with a batch of
  // drafts or a prompt they would otherwise leave the other threads idle.
  // (A few short rows, e.g. a draft block of a small model, stay on this thread.)
  const bool rows_inline = static_cast<uint64_t>(n) * static_cast<uint64_t>(e) < kernels::kMinParallelWork / 4;
  auto each_row = [&](auto&& fn) {
    if (rows_inline) {
      for (int i = 0; i < n; ++i) fn(i);
      return;
    }
    pool.parallel_for(n, 1, [&](int64_t r0, int64_t r1) {
      for (int64_t i = r0; i < r1; ++i) fn(static_cast<int>(i));
    });
  };
  auto add_rows = [&](int i) {
    for (int j = 0; j < e; ++j) x[i * e + j] += xn[i * e + j];
  };
  for (int il = 0; il < c.n_layer; ++il) {
    const LayerWeights& L = m.layers[il];
    each_row([&](int i) { rms_norm(&x[i * e], L.attn_norm, &xn[i * e], e, c.rms_eps); });
    const kernels::MatmulOut qkv[] = {{&L.wq, w.q.data()}, {&L.wk, w.k.data()}, {&L.wv, w.v.data()}};
    kernels::matmul_shared_input(qkv, xn, n, pool);
    if (any_lora) {
      add_lora(m, w, items, L.wq, xn, w.q.data());
      add_lora(m, w, items, L.wk, xn, w.k.data());
      add_lora(m, w, items, L.wv, xn, w.v.data());
    }
    each_row([&](int i) {
      float* qi = &w.q[static_cast<size_t>(i) * qd];
      float* ki = &w.k[static_cast<size_t>(i) * kvd];
      float* vi = &w.v[static_cast<size_t>(i) * kvd];
      if (L.bq) {
        for (int j = 0; j < qd; ++j) qi[j] += L.bq[j];
        for (int j = 0; j < kvd; ++j) ki[j] += L.bk[j];
        for (int j = 0; j < kvd; ++j) vi[j] += L.bv[j];
      }
      const float* cs = &w.rope_cs[static_cast<size_t>(i) * half * 2];
      for (int h = 0; h < c.n_head; ++h) {
        if (L.q_norm) rms_norm(qi + h * hd, L.q_norm, qi + h * hd, hd, c.rms_eps);
        rope(qi + h * hd, c.rope_dim, c.rope_type, cs);
      }
      for (int h = 0; h < c.n_head_kv; ++h) {
        if (L.k_norm) rms_norm(ki + h * hd, L.k_norm, ki + h * hd, hd, c.rms_eps);
        rope(ki + h * hd, c.rope_dim, c.rope_type, cs);
      }
      w.row_seq[i]->s_->store_kv(il, w.row_pos[i], ki, vi);
    });
    attend(m, w, n, il);
    kernels::matmul(L.wo, w.att.data(), n, xn, pool);
    if (any_lora) add_lora(m, w, items, L.wo, w.att.data(), xn);
    each_row([&](int i) {
      add_rows(i);
      rms_norm(&x[i * e], L.ffn_norm, &xn[i * e], e, c.rms_eps);
    });
    const kernels::MatmulOut gate_up[] = {{&L.gate, w.gate.data()}, {&L.up, w.up.data()}};
    kernels::matmul_shared_input(gate_up, xn, n, pool);
    if (any_lora) {
      add_lora(m, w, items, L.gate, xn, w.gate.data());
      add_lora(m, w, items, L.up, xn, w.up.data());
    }
    pool.parallel_for(static_cast<int64_t>(n) * ff, 4096, [&](int64_t b0, int64_t b1) {  // one decode row: inline
      kernels::simd::silu_mul(&w.gate[b0], &w.up[b0], static_cast<size_t>(b1 - b0));
    });
    kernels::matmul(L.down, w.gate.data(), n, xn, pool);
    if (any_lora) add_lora(m, w, items, L.down, w.gate.data(), xn);
    each_row(add_rows);
  }

  // Output head over the rows whose logits are wanted, all items at once.
  int out_rows = 0, row = 0;
  for (const BatchItem& it : items) {
    const int len = static_cast<int>(it.tokens.size()), first = it.all_logits ? 0 : len - 1;
    for (int i = first; i < len; ++i)
      rms_norm(&x[(row + i) * e], m.output_norm, &xn[(out_rows++) * e], e, c.rms_eps);
    row += len;
  }
  const size_t V = static_cast<size_t>(c.n_vocab);
  float* head = nullptr;
  if (items.size() == 1) {  // straight into the Sequence's buffer
    State& s = *items[0].seq->s_;
    grow(s.logits, out_rows * V);
    head = s.logits.data();
  } else {
    grow(w.head, out_rows * V);
    head = w.head.data();
  }
  kernels::matmul(m.output, xn, out_rows, head, pool);

  out_rows = 0;
  for (const BatchItem& it : items) {
    State& s = *it.seq->s_;
    const size_t len = it.tokens.size(), wanted = it.all_logits ? len : 1;
    if (items.size() > 1) {
      grow(s.logits, wanted * V);
      std::memcpy(s.logits.data(), head + out_rows * V, wanted * V * sizeof(float));
    }
    out_rows += static_cast<int>(wanted);
    s.logit_rows = wanted;
    const uint64_t pos0 = s.tokens.size();
    s.positions += len;
    for (size_t i = 0; i < len; ++i) s.attention += pos0 + i + 1;
    s.tokens.insert(s.tokens.end(), it.tokens.begin(), it.tokens.end());
  }
}

void Sequence::State::check(std::span<const int32_t> ids) const {
  if (ids.empty()) throw Error("eval needs at least one token");
  if (tokens.size() + ids.size() > static_cast<size_t>(n_ctx))
    throw Error("context overflow: " + std::to_string(tokens.size()) + " cached + " + std::to_string(ids.size()) +
                " new tokens exceed the context size " + std::to_string(n_ctx));
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= m->cfg.n_vocab)
      throw Error("token id " + std::to_string(ids[i]) + " at batch index " + std::to_string(i) +
                  " is outside the vocabulary [0, " + std::to_string(m->cfg.n_vocab) + ")");
}

Sequence::Sequence(std::shared_ptr<const Model> model, SequenceOptions opts) : s_(std::make_unique<State>()) {
  if (!model) throw Error("Sequence needs a model");
  s_->model = std::move(model);
  s_->m = &s_->model->impl();
  const ModelConfig& c = s_->m->cfg;
  if (opts.n_ctx < 0) throw Error("context size must not be negative");
  s_->n_ctx = opts.n_ctx > 0 ? opts.n_ctx : c.n_ctx_train;
  s_->kv_type = opts.kv_type;
  for (const LoraRef& l : opts.lora) {
    if (!l.adapter) throw Error("a LoRA entry has no adapter");
    if (l.adapter->base() != s_->model.get())
      throw Error("LoRA adapter " + l.adapter->path() + " was loaded for " +
                  (l.adapter->base() ? l.adapter->base()->path() : std::string("another model")) + ", not " +
                  s_->model->path());
    if (!std::isfinite(l.scale)) throw Error("LoRA adapter " + l.adapter->path() + ": the scale must be finite");
    if (l.scale != 0) s_->lora.push_back(l);  // scale 0: not used at all (llama.cpp)
  }
  {
    // Addresses identify a loaded model and adapter for as long as a
    // Sequence (which holds them) lives; a cache keyed by them keeps its own
    // references (prefix_cache.h).
    char buf[96];
    std::snprintf(buf, sizeof buf, "%p/%d", static_cast<const void*>(s_->model.get()), static_cast<int>(s_->kv_type));
    s_->kv_identity = buf;
    for (const LoraRef& l : s_->lora) {
      std::snprintf(buf, sizeof buf, "+%p*%a", static_cast<const void*>(l.adapter.get()), static_cast<double>(l.scale));
      s_->kv_identity += buf;
    }
  }
  s_->tokens.reserve(static_cast<size_t>(s_->n_ctx));  // decode steps then never reallocate it
  const size_t cells = static_cast<size_t>(c.n_layer) * s_->n_ctx * c.kv_dim();
  if (s_->kv_type == KvType::F32) {
    s_->k32 = LazyBuffer<float>(cells);
    s_->v32 = LazyBuffer<float>(cells);
  } else {
    s_->k16 = LazyBuffer<uint16_t>(cells);
    s_->v16 = LazyBuffer<uint16_t>(cells);
  }
}

Sequence::~Sequence() = default;
Sequence::Sequence(Sequence&&) noexcept = default;
Sequence& Sequence::operator=(Sequence&&) noexcept = default;

std::span<const float> Sequence::eval(std::span<const int32_t> ids, bool all_logits) {
  const BatchItem item{this, ids, all_logits};
  eval_batch({&item, 1});
  return logits();
}

void Sequence::eval_batch(std::span<const BatchItem> items) {
  if (items.empty()) return;
  const Model::Impl* m = nullptr;
  for (size_t i = 0; i < items.size(); ++i) {
    const BatchItem& it = items[i];
    // Named by index only in a real batch; built only when there is an error.
    auto fail = [&](const std::string& what) {
      throw Error(items.size() > 1 ? "batch item " + std::to_string(i) + ": " + what : what);
    };
    if (!it.seq) fail("no Sequence");
    if (!m) m = it.seq->s_->m;
    if (it.seq->s_->m != m) fail("Sequences of different models cannot share a forward pass");
    for (size_t j = 0; j < i; ++j)
      if (items[j].seq == it.seq) fail("the same Sequence appears twice in one batch");
    try {
      it.seq->s_->check(it.tokens);
    } catch (const Error& e) {
      fail(e.what());
    }
  }
  std::lock_guard<std::mutex> lock(const_cast<Model::Impl*>(m)->pool_mu);
  State::forward(*m, items);
}

void Sequence::check(std::span<const int32_t> ids) const { s_->check(ids); }

std::span<const float> Sequence::logits() const {
  return {s_->logits.data(), s_->logit_rows * static_cast<size_t>(s_->m->cfg.n_vocab)};
}

size_t Sequence::size() const { return s_->tokens.size(); }
size_t Sequence::capacity() const { return static_cast<size_t>(s_->n_ctx); }
size_t Sequence::kv_bytes_per_position() const {
  const ModelConfig& c = s_->m->cfg;
  return 2u * static_cast<size_t>(c.n_layer) * static_cast<size_t>(c.kv_dim()) *
         (s_->kv_type == KvType::F32 ? sizeof(float) : sizeof(uint16_t));
}
void Sequence::truncate(size_t n) {
  // Cached K/V past n are simply overwritten by later evals.
  if (n < s_->tokens.size()) s_->tokens.resize(n);
}
const std::vector<int32_t>& Sequence::tokens() const { return s_->tokens; }
const Model& Sequence::model() const { return *s_->model; }
int Sequence::n_vocab() const { return s_->m->cfg.n_vocab; }
uint64_t Sequence::positions_evaluated() const { return s_->positions; }
uint64_t Sequence::attention_work() const { return s_->attention; }
const std::string& Sequence::kv_identity() const { return s_->kv_identity; }

Sequence::KvCopy Sequence::copy_kv(size_t n) const {
  if (n > s_->tokens.size())
    throw Error("copy_kv: " + std::to_string(n) + " positions asked, the cache holds " + std::to_string(s_->tokens.size()));
  const ModelConfig& c = s_->m->cfg;
  const bool f32 = s_->kv_type == KvType::F32;
  const size_t es = f32 ? sizeof(float) : sizeof(uint16_t), heads = static_cast<size_t>(c.n_layer) * c.n_head_kv;
  const size_t run = n * static_cast<size_t>(c.head_dim) * es;  // one (layer, head)'s positions
  KvCopy out;
  out.tokens.assign(s_->tokens.begin(), s_->tokens.begin() + static_cast<std::ptrdiff_t>(n));
  out.computed_by = s_->kv_identity;
  out.keep_alive.push_back(s_->model);
  for (const LoraRef& l : s_->lora) out.keep_alive.push_back(l.adapter);
  out.bytes.resize(2 * heads * run);
  uint8_t* dst = out.bytes.data();
  for (int kv = 0; kv < 2; ++kv)
    for (size_t lh = 0; lh < heads; ++lh, dst += run) {
      const size_t at = lh * static_cast<size_t>(s_->n_ctx) * c.head_dim;
      const void* src = f32 ? static_cast<const void*>(&(kv ? s_->v32 : s_->k32)[at])
                            : static_cast<const void*>(&(kv ? s_->v16 : s_->k16)[at]);
      if (run) std::memcpy(dst, src, run);
    }
  return out;
}

void Sequence::load_kv(const KvCopy& from, size_t n) {
  if (from.computed_by != s_->kv_identity)
    throw Error("load_kv: the KV was computed by another model, KV type or adapter set");
  if (n > from.n()) throw Error("load_kv: " + std::to_string(n) + " positions asked, the copy holds " + std::to_string(from.n()));
  if (n > static_cast<size_t>(s_->n_ctx))
    throw Error("load_kv: " + std::to_string(n) + " positions exceed the context size " + std::to_string(s_->n_ctx));
  const ModelConfig& c = s_->m->cfg;
  const bool f32 = s_->kv_type == KvType::F32;
  const size_t es = f32 ? sizeof(float) : sizeof(uint16_t), heads = static_cast<size_t>(c.n_layer) * c.n_head_kv;
  const size_t src_run = from.n() * static_cast<size_t>(c.head_dim) * es, run = n * static_cast<size_t>(c.head_dim) * es;
  if (from.bytes.size() != 2 * heads * src_run) throw Error("load_kv: the copy's size does not match its positions");
  const uint8_t* src = from.bytes.data();
  for (int kv = 0; kv < 2; ++kv)
    for (size_t lh = 0; lh < heads; ++lh, src += src_run) {
      const size_t at = lh * static_cast<size_t>(s_->n_ctx) * c.head_dim;
      void* dst = f32 ? static_cast<void*>(&(kv ? s_->v32 : s_->k32)[at]) : static_cast<void*>(&(kv ? s_->v16 : s_->k16)[at]);
      if (run) std::memcpy(dst, src, run);
    }
  s_->tokens.assign(from.tokens.begin(), from.tokens.begin() + static_cast<std::ptrdiff_t>(n));
  s_->logit_rows = 0;  // no logits until the next eval
}

}  // namespace specsteer
