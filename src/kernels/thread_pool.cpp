#include "kernels/thread_pool.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <utility>

namespace specsteer::kernels {

int physical_cores() {
  // Count distinct (physical id, core id) pairs: hyperthread siblings share a
  // core's memory bandwidth, so they rarely help a bandwidth-bound decode.
  std::ifstream f("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, phys = "0";
  while (std::getline(f, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    std::string val = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (key == "physical id") phys = val;
    if (key == "core id") cores.insert({phys, val});
  }
  int n = static_cast<int>(cores.size());
  int hw = static_cast<int>(std::thread::hardware_concurrency());
  if (n <= 0 || (hw > 0 && n > hw)) n = hw > 0 ? hw : 1;
  return n;
}

namespace {
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}
// ~50 µs of polling: long enough to bridge the gap between the matmuls of
// one layer, short enough not to burn a core that another process needs.
constexpr int kSpinIterations = 4000;
constexpr int kChunksPerThread = 4;
thread_local int t_thread_index = 0;  // set once by each worker; 0 elsewhere
// The pool whose chunk this thread is running, if any (nested loops run inline).
thread_local const ThreadPool* t_inside = nullptr;

struct InsideGuard {
  const ThreadPool* saved;
  explicit InsideGuard(const ThreadPool* p) : saved(t_inside) { t_inside = p; }
  ~InsideGuard() { t_inside = saved; }
};
}  // namespace

int ThreadPool::thread_index() { return t_thread_index; }

std::shared_ptr<ThreadPool> ThreadPool::shared(int n_threads) {
  if (n_threads <= 0) n_threads = physical_cores();
  static std::mutex registry_mu;
  static std::map<int, std::weak_ptr<ThreadPool>> registry;
  std::lock_guard<std::mutex> lock(registry_mu);
  std::weak_ptr<ThreadPool>& slot = registry[n_threads];
  std::shared_ptr<ThreadPool> pool = slot.lock();
  if (!pool) {
    pool = std::make_shared<ThreadPool>(n_threads);
    slot = pool;
  }
  return pool;
}

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  for (int i = 1; i < n_threads_; ++i)
    threads_.emplace_back([this, i] {
      t_thread_index = i;
      worker();
    });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::run_share() {
  // Dynamic partition: threads take chunks (about kChunksPerThread each) from a
  // shared counter, so a thread that the VM or another process slows down
  // simply takes fewer chunks instead of holding everyone at the join.
  const int64_t blocks = (job_n_ + job_grain_ - 1) / job_grain_;
  const int64_t chunks = std::min<int64_t>(blocks, static_cast<int64_t>(n_threads_) * kChunksPerThread);
  for (;;) {
    const int64_t c = next_chunk_.fetch_add(1, std::memory_order_relaxed);
    if (c >= chunks) return;
    const int64_t b0 = blocks * c / chunks, b1 = blocks * (c + 1) / chunks;
    const int64_t begin = b0 * job_grain_, end = std::min(job_n_, b1 * job_grain_);
    if (begin < end) (*job_)(begin, end);
  }
}

void ThreadPool::worker() {
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int spin = 0; gen == seen && spin < kSpinIterations; ++spin) {
      cpu_relax();
      gen = generation_.load(std::memory_order_acquire);
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      sleepers_.fetch_add(1);
      start_cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      sleepers_.fetch_sub(1);
      gen = generation_.load(std::memory_order_acquire);
    }
    seen = gen;
    if (stop_) return;
    {
      InsideGuard inside(this);
      run_share();
    }
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mu_);
      done_cv_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, RangeFn fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  if (n_threads_ == 1 || n <= grain || t_inside == this) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> turn(turn_mu_);
  InsideGuard inside(this);
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &fn;
    job_n_ = n;
    job_grain_ = grain;
    pending_.store(n_threads_ - 1, std::memory_order_relaxed);
    next_chunk_.store(0, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  if (sleepers_.load() > 0) start_cv_.notify_all();
  run_share();
  for (int spin = 0; pending_.load(std::memory_order_acquire) != 0 && spin < kSpinIterations; ++spin) cpu_relax();
  if (pending_.load(std::memory_order_acquire) != 0) {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
  }
  job_ = nullptr;
}

}  // namespace specsteer::kernels
