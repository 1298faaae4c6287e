#include "model/benchmark.h"

#include <algorithm>
#include <thread>

#include "common/error.h"
#include "common/timer.h"
#include "gguf/types.h"
#include "kernels/matmul.h"
#include "kernels/thread_pool.h"

namespace specsteer {
namespace {

std::vector<int32_t> random_tokens(int n, int n_vocab, uint64_t seed) {
  std::vector<int32_t> ids(n);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& id : ids) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    id = static_cast<int32_t>((s >> 33) % static_cast<uint64_t>(n_vocab));
  }
  return ids;
}

}  // namespace

BandwidthProbe::BandwidthProbe(int threads)
    : a_(kFloats), b_(kFloats, 1.0f), c_(kFloats, 2.0f), pool_(std::make_unique<kernels::ThreadPool>(threads)) {}
BandwidthProbe::~BandwidthProbe() = default;

double BandwidthProbe::triad_gbs() {
  Stopwatch sw;
  pool_->parallel_for(static_cast<int64_t>(kFloats), 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) a_[i] = b_[i] + 3.0f * c_[i];
  });
  const double s = sw.seconds();
  if (a_[kFloats / 2] != 7.0f) throw Error("bandwidth triad produced a wrong result");
  return 3.0 * kFloats * sizeof(float) / s / 1e9;
}

double BandwidthProbe::read_gbs() {
  constexpr int64_t kChunk = 1 << 16;
  std::vector<double> partial(kFloats / kChunk, 0.0);
  Stopwatch sw;
  pool_->parallel_for(static_cast<int64_t>(kFloats), kChunk, [&](int64_t i0, int64_t i1) {
    for (int64_t c0 = i0; c0 < i1; c0 += kChunk) {
      // Eight independent sums so the loop is bound by loads, not adds (a
      // library dot product of the chunk with itself measured 20-50% lower).
      float s[8] = {};
      const int64_t c1 = std::min(i1, c0 + kChunk);
      int64_t i = c0;
      for (; i + 8 <= c1; i += 8)
        for (int k = 0; k < 8; ++k) s[k] += b_[i + k];
      for (; i < c1; ++i) s[0] += b_[i];
      double t = 0;
      for (float v : s) t += v;
      partial[static_cast<size_t>(c0 / kChunk)] = t;
    }
  });
  const double secs = sw.seconds();
  double total = 0;
  for (double v : partial) total += v;
  if (total != static_cast<double>(kFloats)) throw Error("read bandwidth probe produced a wrong result");
  return static_cast<double>(kFloats) * sizeof(float) / secs / 1e9;
}

BenchResult run_benchmark(const std::shared_ptr<const Model>& model, const BenchOptions& o) {
  const ModelConfig& c = model->config();
  if (o.n_prompt < 1 || o.n_gen < 1 || o.repetitions < 1) throw Error("bench needs -p >= 1, -n >= 1 and -r >= 1");
  int max_k = 0;
  for (int k : o.verify_k) max_k = std::max(max_k, k);
  const int n_ctx = o.n_prompt + std::max(o.n_gen, max_k) + 1;
  if (n_ctx > c.n_ctx_train && c.n_ctx_train > 0 && o.n_prompt > c.n_ctx_train)
    throw Error("bench prompt length " + std::to_string(o.n_prompt) + " exceeds the model's context " +
                std::to_string(c.n_ctx_train));
  Sequence seq(model, {.n_ctx = n_ctx, .kv_type = o.kv_type, .lora = o.lora});
  const auto prompt = random_tokens(o.n_prompt, c.n_vocab, o.seed);
  const auto gen = random_tokens(std::max(o.n_gen, max_k), c.n_vocab, o.seed + 1);

  BenchResult r;
  // The bandwidth probes run right after each timed generation, so the
  // roofline's two best-ofs come from the same moments of a shared machine.
  BandwidthProbe probe(model->n_threads());
  auto sample_bandwidth = [&] {
    r.read_bandwidth_gb_per_s = std::max(r.read_bandwidth_gb_per_s, probe.read_gbs());
    r.bandwidth_gb_per_s = std::max(r.bandwidth_gb_per_s, probe.triad_gbs());
  };
  double pp = 1e30, tg = 1e30;
  for (int rep = 0; rep < o.repetitions; ++rep) {
    seq.truncate(0);
    Stopwatch sw;
    seq.eval(prompt, false);
    pp = std::min(pp, sw.seconds());
    sw.reset();
    for (int i = 0; i < o.n_gen; ++i) seq.eval({&gen[i], 1}, false);
    tg = std::min(tg, sw.seconds());
    sample_bandwidth();
  }
  for (int rep = o.repetitions; rep < 3; ++rep) sample_bandwidth();  // at least three samples
  r.pp_tok_per_s = o.n_prompt / pp;
  r.tg_tok_per_s = o.n_gen / tg;

  // Verify K drafts: one batched eval of K tokens with logits for all of
  // them, at the same context length, compared with one decode step there.
  // The K values take turns within each round, so a burst of load from other
  // processes hits them alike instead of skewing one ratio.
  std::vector<int> ks = {1};
  for (int k : o.verify_k)
    if (k != 1) ks.push_back(k);
  std::vector<double> best(ks.size(), 1e30);
  seq.truncate(0);
  seq.eval(prompt, false);
  for (int rep = 0; rep < std::max(3, o.repetitions); ++rep)
    for (size_t i = 0; i < ks.size(); ++i) {
      seq.truncate(static_cast<size_t>(o.n_prompt));
      Stopwatch sw;
      seq.eval({gen.data(), static_cast<size_t>(ks[i])}, true);
      best[i] = std::min(best[i], sw.seconds());
    }
  for (int k : o.verify_k) {
    const double t = best[static_cast<size_t>(std::find(ks.begin(), ks.end(), k) - ks.begin())];
    r.verify.push_back({k, t, t / best[0]});
  }

  // Where a decode step's time goes, by weight type: one more timed run.
  {
    seq.truncate(0);
    seq.eval(prompt, false);
    kernels::set_matmul_timing(true);
    Stopwatch sw;
    for (int i = 0; i < o.n_gen; ++i) seq.eval({&gen[i], 1}, false);
    const double total = sw.seconds();
    kernels::set_matmul_timing(false);
    const kernels::MatmulTimes t = kernels::matmul_times();
    double in_products = 0;
    for (size_t type = 0; type < 64; ++type) {
      if (t.calls[type] == 0) continue;
      r.decode_by_type.push_back({std::string(gguf::type_name(static_cast<gguf::TensorType>(type))),
                                  t.seconds[type] / total, t.calls[type] / static_cast<uint64_t>(o.n_gen)});
      in_products += t.seconds[type];
    }
    std::sort(r.decode_by_type.begin(), r.decode_by_type.end(),
              [](const auto& a, const auto& b) { return a.share > b.share; });
    r.decode_other_share = std::max(0.0, 1.0 - in_products / total);
  }

  r.weight_bytes_per_token = static_cast<double>(model->weight_bytes_per_token());
  const double roofline_tok_s = r.read_bandwidth_gb_per_s * 1e9 / r.weight_bytes_per_token;
  r.roofline_fraction = r.tg_tok_per_s / roofline_tok_s;
  return r;
}

}  // namespace specsteer
