#pragma once
// Throughput measurements behind `specsteer bench`: prompt processing,
// generation, verification of K drafts relative to one decode step, and the
// memory-bandwidth roofline.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"

namespace specsteer::kernels {
class ThreadPool;
}

namespace specsteer {

struct BenchOptions {
  int n_prompt = 128;
  int n_gen = 32;
  int repetitions = 3;  // best-of, to damp noise from other processes
  std::vector<int> verify_k = {1, 2, 4, 5, 8, 16, 17};  // 5 and 17: K = 4 and 16 drafts + the committed token
  KvType kv_type = KvType::F16;
  std::vector<LoraRef> lora = {};  // adapters applied per pass (unmerged)
  uint64_t seed = 1;
};

struct BenchResult {
  double pp_tok_per_s = 0;
  double tg_tok_per_s = 0;
  double bandwidth_gb_per_s = 0;      // measured STREAM-like triad (3 arrays counted, as STREAM does)
  double read_bandwidth_gb_per_s = 0; // measured streaming read (sum of a large array): decode's pattern
  double weight_bytes_per_token = 0;  // bytes of weights one decode step reads
  double roofline_fraction = 0;       // achieved / (read bandwidth / weight bytes per token)
  struct Verify {
    int k;
    double seconds;
    double ratio_to_decode;  // time(verify k) / time(decode 1)
  };
  std::vector<Verify> verify;
  // Share of decode time in matrix products per weight type (the rest:
  // attention, norms, activations, the pool's synchronization).
  struct TypeShare {
    std::string type;
    double share = 0;   // of the decode steps' wall time
    uint64_t calls = 0; // products per decode step
  };
  std::vector<TypeShare> decode_by_type;
  double decode_other_share = 0;
};

BenchResult run_benchmark(const std::shared_ptr<const Model>& model, const BenchOptions& opts);

// Memory-bandwidth probes over arrays far larger than the caches (three of
// 128 MiB), allocated once so probes can be interleaved with other timings.
// Each call is one timed pass on `threads` threads.
class BandwidthProbe {
 public:
  explicit BandwidthProbe(int threads);
  ~BandwidthProbe();
  // STREAM-like triad a[i] = b[i] + s*c[i]; GB/s counting 3 arrays of traffic.
  double triad_gbs();
  // Streaming read (sum of one array): the access pattern of a decode step,
  // which only reads weights. GB/s.
  double read_gbs();

 private:
  static constexpr size_t kFloats = size_t{1} << 25;
  std::vector<float> a_, b_, c_;
  std::unique_ptr<kernels::ThreadPool> pool_;
};

}  // namespace specsteer
