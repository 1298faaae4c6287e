#pragma once
// A fixed set of worker threads that run one parallel loop at a time. The
// calling thread works too, so n_threads = 2 means one extra thread. Workers
// are created once and spin briefly between loops before sleeping, so the
// hundreds of small loops of one decode step cost no thread wake-ups and no
// allocation.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace specsteer::kernels {

int physical_cores();

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Calls fn(begin, end) on disjoint chunks covering [0, n), chunk boundaries
  // multiples of `grain`; threads take chunks as they finish the last one.
  // Blocks until all chunks are done. Not reentrant.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void worker();
  void run_share();  // takes chunks until none are left

  int n_threads_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<int64_t> next_chunk_{0};
  std::atomic<int> sleepers_{0};
  bool stop_ = false;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0, job_grain_ = 1;
};

}  // namespace specsteer::kernels
