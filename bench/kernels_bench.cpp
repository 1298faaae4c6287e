// Micro-benchmarks of the matmul kernels per weight type and batch size.
// Run: build/bench/kernels_bench --benchmark_min_time=0.2
// Bytes/s counts weight bytes streamed (each weight row is read once per call).
#include <benchmark/benchmark.h>

#include <random>

#include "kernels/matmul.h"
#include "kernels/packed.h"
#include "kernels/quant.h"

namespace specsteer::kernels {
namespace {

using gguf::TensorType;

// rows = 4096 x 2048 columns fits the last-level cache (about 8 MB in Q8_0);
// the *_dram variants use 65536 rows (136 MB) so weights stream from memory,
// as they do in a real decode step.
void BM_Matmul(benchmark::State& state, TensorType type, bool pack = false, int64_t rows = 4096) {
  const int64_t cols = 2048, n = state.range(0), threads = state.range(1);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.f, 1.f);
  const size_t rb = gguf::row_bytes(type, cols);
  std::vector<uint8_t> w(rows * rb);
  std::vector<float> row(cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (auto& v : row) v = nd(rng);
    quantize_row(type, row.data(), &w[r * rb], cols);
  }
  std::vector<float> x(n * cols), y(n * rows);
  for (auto& v : x) v = nd(rng);
  Matrix m{type, w.data(), rows, cols, rb};
  std::vector<uint8_t> packed;
  if (pack) {
    if (!packed_available(type)) {
      state.SkipWithError("no packed kernel for this type on this CPU");
      return;
    }
    packed.resize(packed_bytes(m));
    pack_weights(m, packed.data());
    m.packed = packed.data();
  }
  ThreadPool pool(static_cast<int>(threads));
  for (auto _ : state) {
    matmul(m, x.data(), n, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * rows * static_cast<int64_t>(rb));
  state.counters["positions/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * n), benchmark::Counter::kIsRate);
}

void Args(benchmark::internal::Benchmark* b) {
  for (int threads : {1, 2})
    for (int n : {1, 4, 16}) b->Args({n, threads});
  b->ArgNames({"n", "threads"})->UseRealTime();
}

BENCHMARK_CAPTURE(BM_Matmul, f32, TensorType::F32)->Apply(Args);
BENCHMARK_CAPTURE(BM_Matmul, f16, TensorType::F16)->Apply(Args);
BENCHMARK_CAPTURE(BM_Matmul, bf16, TensorType::BF16)->Apply(Args);
BENCHMARK_CAPTURE(BM_Matmul, q8_0, TensorType::Q8_0)->Apply(Args);
BENCHMARK_CAPTURE(BM_Matmul, q8_0_packed_vnni, TensorType::Q8_0, true)->Apply(Args);
BENCHMARK_CAPTURE(BM_Matmul, q8_0_dram, TensorType::Q8_0, false, 65536)->Apply(Args);
BENCHMARK_CAPTURE(BM_Matmul, q8_0_packed_vnni_dram, TensorType::Q8_0, true, 65536)->Apply(Args);
BENCHMARK_CAPTURE(BM_Matmul, q4_0, TensorType::Q4_0)->Apply(Args);
BENCHMARK_CAPTURE(BM_Matmul, q4_0_packed_vnni, TensorType::Q4_0, true)->Apply(Args);
BENCHMARK_CAPTURE(BM_Matmul, q4_0_packed_vnni_dram, TensorType::Q4_0, true, 65536)->Apply(Args);
BENCHMARK_CAPTURE(BM_Matmul, q4_k, TensorType::Q4_K)->Apply(Args);
BENCHMARK_CAPTURE(BM_Matmul, q5_k, TensorType::Q5_K)->Apply(Args);
BENCHMARK_CAPTURE(BM_Matmul, q6_k, TensorType::Q6_K)->Apply(Args);

}  // namespace
}  // namespace specsteer::kernels
