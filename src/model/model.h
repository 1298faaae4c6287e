#pragma once
// A loaded decoder (weights shared by all users) and Sequence, one KV cache
// over it. The cloud serves many sessions from one Model: create one
// Sequence per session; Sequences are independent and thread-safe to use
// from different threads (evaluation of one Sequence is not reentrant).
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "model/lora.h"

namespace specsteer::gguf {
class File;
}

namespace specsteer {

enum class RopeType { Norm, Neox };  // adjacent pairs (llama) / half split (qwen)
enum class KvType { F32, F16 };

struct ModelConfig {
  std::string arch;  // "llama", "qwen2", "qwen3"
  std::string name;  // general.name, may be empty
  int n_vocab = 0;
  int n_embd = 0;
  int n_layer = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;  // key/value head width
  int n_ff = 0;
  int n_ctx_train = 0;
  float rms_eps = 1e-5f;
  float rope_base = 10000.f;
  int rope_dim = 0;
  RopeType rope_type = RopeType::Norm;
  bool has_qkv_bias = false;
  bool has_qk_norm = false;
  bool tied_output = false;
  bool has_rope_freqs = false;  // llama-3.1 style per-dimension rope factors

  // Parameters that a forward pass multiplies per token (paper table 11's N):
  // all matrices, embedding lookup excluded, output head included.
  uint64_t n_params_matmul() const;
  uint64_t n_params_total() const;
  int q_dim() const { return n_head * head_dim; }
  int kv_dim() const { return n_head_kv * head_dim; }
};

struct LoadOptions {
  int n_threads = 0;  // 0 = number of physical cores
  // LoRA adapters (file, user scale) merged into a private copy of the
  // weights they adapt, W' = W + s_eff * B A, re-quantized to W's type (exact
  // for f32 weights). As fast as the base, but this Model then serves only
  // the adapted model.
  std::vector<std::pair<std::string, float>> merge_lora = {};
  // false: keep every matrix in its GGUF layout (no VNNI repacking), e.g. to
  // compare the packed kernels with the reference path.
  bool repack = true;
};

class Model {
 public:
  // Loads (mmaps) a GGUF model. Throws specsteer::Error naming the file and
  // the missing/malformed tensor or key.
  static std::shared_ptr<Model> load(const std::string& path, const LoadOptions& opts = {});
  ~Model();

  const ModelConfig& config() const;
  const gguf::File& file() const;
  const std::string& path() const;
  // Total bytes of weights read by one decode step (all matrices once).
  uint64_t weight_bytes_per_token() const;
  uint64_t file_bytes() const;    // the mapped GGUF file
  uint64_t packed_bytes() const;  // repacked copies of weights made at load (kernels/packed.h)
  // Seconds spent loading (mapping, validating, repacking).
  double load_seconds() const;
  int n_threads() const;

  struct Impl;
  Impl& impl() const { return *impl_; }

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  static void merge_adapter(Model& model, const std::string& path, float scale);
  std::unique_ptr<Impl> impl_;
};

struct SequenceOptions {
  // 0 = the model's training context. The cache reserves address space for
  // n_ctx positions but commits memory only as positions are written.
  int n_ctx = 0;
  KvType kv_type = KvType::F16;  // F32 for exact comparisons (golden tests)
  // LoRA adapters this Sequence computes with (loaded for its model); the
  // model's weights stay the base for every other Sequence.
  std::vector<LoraRef> lora = {};
};

class Sequence;

// One Sequence's share of a multi-sequence forward pass.
struct BatchItem {
  Sequence* seq = nullptr;
  std::span<const int32_t> tokens;
  bool all_logits = true;
};

class Sequence {
 public:
  explicit Sequence(std::shared_ptr<const Model> model, SequenceOptions opts = {});
  ~Sequence();
  Sequence(Sequence&&) noexcept;
  Sequence& operator=(Sequence&&) noexcept;

  // Appends `tokens` to the cache in one batched forward pass. Returns logits,
  // row-major [n_rows][n_vocab]: one row per token when `all_logits`, else only
  // the last token's row. The span stays valid until the next eval/truncate.
  // Throws specsteer::Error when the context would overflow or an id is out of range.
  std::span<const float> eval(std::span<const int32_t> tokens, bool all_logits = true);

  // Evaluates distinct Sequences of one Model in a single forward pass: each
  // weight row is read once for the rows of all items, which is what makes
  // serving many sessions cheaper than one pass each. Each item ends as if
  // item.seq->eval(item.tokens, item.all_logits) had run (read its rows with
  // logits()). Checks every item before computing anything, so a bad item
  // changes no Sequence; throws specsteer::Error naming the item.
  static void eval_batch(std::span<const BatchItem> items);
  // Throws the error eval would throw for `tokens`, without evaluating.
  void check(std::span<const int32_t> tokens) const;
  // The logits rows of the last eval / eval_batch of this Sequence.
  std::span<const float> logits() const;

  size_t size() const;                           // tokens held in the cache
  size_t capacity() const;                       // n_ctx
  size_t kv_bytes_per_position() const;          // K and V of every layer for one position
  void truncate(size_t n);                       // keep the first n tokens (rollback)
  const std::vector<int32_t>& tokens() const;    // the cached token ids
  const Model& model() const;
  int n_vocab() const;
  uint64_t positions_evaluated() const;          // total forward positions run (for FLOPs)
  uint64_t attention_work() const;               // sum over evaluated positions of context length attended

  // The K and V of a prefix of the cache, for the prefix cache
  // (model/prefix_cache.h): `bytes` holds K then V, each
  // [layer][kv_head][position][head_dim] in the Sequence's KV type.
  struct KvCopy {
    std::vector<int32_t> tokens;
    std::string computed_by;  // kv_identity() of the Sequence it came from
    // The model and adapters it names by address, held so that no other can
    // take their addresses while the copy exists.
    std::vector<std::shared_ptr<const void>> keep_alive;
    std::vector<uint8_t> bytes;
    size_t n() const { return tokens.size(); }
  };
  // A copy of the first n positions (n <= size()).
  KvCopy copy_kv(size_t n) const;
  // Makes this Sequence hold the first n positions of `from` (n <= from.n()),
  // as if it had evaluated from.tokens[0, n): whatever it held is dropped.
  // Throws specsteer::Error when `from` was computed by another model, KV
  // type or adapter set, or n exceeds the context.
  void load_kv(const KvCopy& from, size_t n);
  // What a position's K and V depend on besides the tokens: the model, the KV
  // type and the LoRA adapters with their scales. Equal identities give
  // interchangeable KV.
  const std::string& kv_identity() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace specsteer
