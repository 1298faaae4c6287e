// Model-backed pieces of steer: Sequence as a LogitSource, model identity,
// and the cloud built from models.
#include <cstring>

#include "gguf/gguf.h"
#include "steer/cloud.h"
#include "steer/logit_source.h"
#include "tokenizer/tokenizer.h"

namespace specsteer::steer {

namespace {

class SequenceSource final : public LogitSource {
 public:
  SequenceSource(std::shared_ptr<const Model> m, SequenceOptions o, std::shared_ptr<EvalBatcher> b, PrefixUse p)
      : seq_(std::move(m), o), batcher_(std::move(b)), prefix_(std::move(p)) {}
  ~SequenceSource() override {
    if (!prefix_.cache) return;
    try {
      prefix_.cache->keep(seq_, prefix_.scope);
    } catch (...) {  // out of memory for the copy: the cache just misses it
    }
  }
  int n_vocab() const override { return seq_.n_vocab(); }
  std::span<const float> eval(std::span<const int32_t> tokens) override {
    return batcher_ ? batcher_->eval(seq_, tokens, true) : seq_.eval(tokens, true);
  }
  std::span<const float> eval_last(std::span<const int32_t> tokens) override {
    if (prefix_.cache && seq_.size() == 0 && tokens.size() > 1) {
      // The last token is evaluated in any case: its row is the answer.
      reused_ = prefix_.cache->restore(seq_, tokens, tokens.size() - 1, prefix_.scope);
      tokens = tokens.subspan(reused_);
    }
    return batcher_ ? batcher_->eval(seq_, tokens, false) : seq_.eval(tokens, false);
  }
  size_t reused_tokens() const override { return reused_; }
  void truncate(size_t n) override { seq_.truncate(n); }
  const std::vector<int32_t>& tokens() const override { return seq_.tokens(); }
  uint64_t positions_evaluated() const override { return seq_.positions_evaluated(); }
  uint64_t attention_work() const override { return seq_.attention_work(); }

 private:
  Sequence seq_;
  std::shared_ptr<EvalBatcher> batcher_;
  PrefixUse prefix_;
  size_t reused_ = 0;
};

struct Fnv {
  uint64_t h = 0xcbf29ce484222325ull;
  void bytes(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  }
  void str(std::string_view s) {
    const uint64_t n = s.size();
    bytes(&n, sizeof n);
    bytes(s.data(), s.size());
  }
  void u64(uint64_t v) { bytes(&v, sizeof v); }
};

}  // namespace

std::unique_ptr<LogitSource> make_sequence_source(std::shared_ptr<const Model> model, SequenceOptions opts,
                                                  std::shared_ptr<EvalBatcher> batcher, PrefixUse prefix) {
  return std::make_unique<SequenceSource>(std::move(model), opts, std::move(batcher), std::move(prefix));
}

ModelIdentity identity_of(const Model& m) {
  const auto& cfg = m.config();
  ModelIdentity id;
  id.name = cfg.name.empty() ? m.path() : cfg.name;
  id.arch = cfg.arch;
  id.n_vocab = static_cast<uint32_t>(cfg.n_vocab);
  // Layout, vocabulary and the first/last bytes of every tensor: cheap even
  // for large files, and enough to tell apart quantizations and finetunes.
  Fnv f;
  f.str(cfg.arch);
  f.u64(static_cast<uint64_t>(cfg.n_vocab));
  const gguf::File& file = m.file();
  for (const auto& t : file.tensors()) {
    f.str(t.name);
    f.u64(static_cast<uint64_t>(t.type));
    for (uint64_t d : t.ne) f.u64(d);
    if (t.data && t.n_bytes) {
      const size_t n = std::min<uint64_t>(t.n_bytes, 64);
      f.bytes(t.data, n);
      f.bytes(t.data + t.n_bytes - n, n);
    }
  }
  if (const auto* toks = file.find("tokenizer.ggml.tokens"))
    for (auto s : toks->strings) f.str(s);
  id.fingerprint = f.h;
  return id;
}

CloudModels cloud_models(const Model& llm, const Model& slm, int n_ctx, std::shared_ptr<const Tokenizer> llm_tok,
                         std::shared_ptr<const Tokenizer> slm_tok, std::shared_ptr<const BytePair> bytes) {
  CloudModels m;
  m.llm = identity_of(llm);
  m.slm = identity_of(slm);
  m.llm_tok = llm_tok ? std::move(llm_tok) : std::shared_ptr<const Tokenizer>(Tokenizer::from_gguf(llm.file()));
  m.slm_tok = slm_tok ? std::move(slm_tok) : std::shared_ptr<const Tokenizer>(Tokenizer::from_gguf(slm.file()));
  if (bytes || !vocab_compatible(*m.llm_tok, *m.slm_tok, nullptr)) {
    m.bytes = bytes ? std::move(bytes) : std::make_shared<const BytePair>(m.llm_tok, m.slm_tok);
    m.eog = m.bytes->slm_eog;  // ids on the wire are the small model's
  } else {
    m.eog = shared_eog_ids(*m.llm_tok, *m.slm_tok);
  }
  m.n_ctx = static_cast<uint32_t>(n_ctx > 0 ? n_ctx
                                            : std::min(llm.config().n_ctx_train, slm.config().n_ctx_train));
  return m;
}

std::unique_ptr<CloudService> CloudService::from_models(std::shared_ptr<const Model> llm,
                                                        std::shared_ptr<const Model> slm, SequenceOptions opts,
                                                        std::shared_ptr<const Tokenizer> llm_tok,
                                                        std::shared_ptr<const Tokenizer> slm_tok,
                                                        std::shared_ptr<const BytePair> bytes) {
  return std::make_unique<CloudService>([llm, opts] { return make_sequence_source(llm, opts); },
                                        [slm, opts] { return make_sequence_source(slm, opts); },
                                        cloud_models(*llm, *slm, opts.n_ctx, std::move(llm_tok), std::move(slm_tok),
                                                     std::move(bytes)));
}

}  // namespace specsteer::steer
