#include "model/benchmark.h"

#include <algorithm>
#include <thread>

#include "common/error.h"
#include "common/timer.h"
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

double measure_bandwidth_gbs(int threads) {
  const size_t n = size_t{1} << 25;  // 3 x 128 MiB of floats: far past any cache
  std::vector<float> a(n), b(n, 1.0f), c(n, 2.0f);
  kernels::ThreadPool pool(threads);
  double best = 1e30;
  for (int rep = 0; rep < 5; ++rep) {
    Stopwatch sw;
    pool.parallel_for(static_cast<int64_t>(n), 4096, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) a[i] = b[i] + 3.0f * c[i];
    });
    best = std::min(best, sw.seconds());
  }
  if (a[n / 2] != 7.0f) throw Error("bandwidth triad produced a wrong result");
  return 3.0 * n * sizeof(float) / best / 1e9;
}

double measure_read_bandwidth_gbs(int threads) {
  const size_t n = size_t{1} << 26;  // 256 MiB
  std::vector<float> a(n, 1.0f);
  kernels::ThreadPool pool(threads);
  std::vector<double> partial(static_cast<size_t>(threads) * 8);
  double best = 1e30;
  for (int rep = 0; rep < 5; ++rep) {
    std::fill(partial.begin(), partial.end(), 0.0);
    Stopwatch sw;
    pool.parallel_for(static_cast<int64_t>(n), 1 << 16, [&](int64_t i0, int64_t i1) {
      // Eight independent sums so the loop is bound by loads, not adds.
      float s[8] = {};
      int64_t i = i0;
      for (; i + 8 <= i1; i += 8)
        for (int k = 0; k < 8; ++k) s[k] += a[i + k];
      for (; i < i1; ++i) s[0] += a[i];
      double t = 0;
      for (float v : s) t += v;
      partial[static_cast<size_t>(i0 >> 16) % partial.size()] += t;
    });
    best = std::min(best, sw.seconds());
  }
  double total = 0;
  for (double v : partial) total += v;
  if (total <= 0) throw Error("read bandwidth probe produced a wrong result");
  return static_cast<double>(n) * sizeof(float) / best / 1e9;
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
  Sequence seq(model, {.n_ctx = n_ctx, .kv_type = o.kv_type});
  const auto prompt = random_tokens(o.n_prompt, c.n_vocab, o.seed);
  const auto gen = random_tokens(std::max(o.n_gen, max_k), c.n_vocab, o.seed + 1);

  BenchResult r;
  double pp = 1e30, tg = 1e30;
  for (int rep = 0; rep < o.repetitions; ++rep) {
    seq.truncate(0);
    Stopwatch sw;
    seq.eval(prompt, false);
    pp = std::min(pp, sw.seconds());
    sw.reset();
    for (int i = 0; i < o.n_gen; ++i) seq.eval({&gen[i], 1}, false);
    tg = std::min(tg, sw.seconds());
  }
  r.pp_tok_per_s = o.n_prompt / pp;
  r.tg_tok_per_s = o.n_gen / tg;

  // Verify K drafts: one batched eval of K tokens with logits for all of
  // them, at the same context length, compared with one decode step there.
  auto time_eval = [&](int k) {
    double best = 1e30;
    for (int rep = 0; rep < std::max(3, o.repetitions); ++rep) {
      seq.truncate(static_cast<size_t>(o.n_prompt));
      Stopwatch sw;
      seq.eval({gen.data(), static_cast<size_t>(k)}, true);
      best = std::min(best, sw.seconds());
    }
    return best;
  };
  seq.truncate(0);
  seq.eval(prompt, false);
  const double one = time_eval(1);
  for (int k : o.verify_k) {
    const double t = k == 1 ? one : time_eval(k);
    r.verify.push_back({k, t, t / one});
  }

  r.bandwidth_gb_per_s = measure_bandwidth_gbs(model->n_threads());
  r.read_bandwidth_gb_per_s = measure_read_bandwidth_gbs(model->n_threads());
  r.weight_bytes_per_token = static_cast<double>(model->weight_bytes_per_token());
  const double roofline_tok_s = r.read_bandwidth_gb_per_s * 1e9 / r.weight_bytes_per_token;
  r.roofline_fraction = r.tg_tok_per_s / roofline_tok_s;
  return r;
}

}  // namespace specsteer
