#pragma once
// A fixed set of worker threads that run one parallel loop at a time. The
// calling thread works too, so n_threads = 2 means one extra thread. Workers
// are created once and spin briefly between loops before sleeping, so the
// hundreds of small loops of one decode step cost no thread wake-ups and no
// allocation. Every model of a process shares one pool (ThreadPool::shared):
// two pools would spin against each other on the same cores.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace specsteer::kernels {

int physical_cores();

// Loops with less work than this (multiply-adds, roughly) run on the calling
// thread alone: waking and joining the other threads costs a few
// microseconds, more than they would save (tiny models, short contexts).
inline constexpr uint64_t kMinParallelWork = uint64_t{1} << 16;

// A non-owning reference to a callable fn(begin, end). Passing a lambda costs
// no allocation, where std::function copies captures beyond two pointers to
// the heap (about ten allocations per decode step). Valid while the callable
// lives, which for parallel_for is the call itself.
class RangeFn {
 public:
  template <class F>
    requires(std::is_invocable_v<F&, int64_t, int64_t> && !std::is_same_v<std::remove_cvref_t<F>, RangeFn>)
  RangeFn(F&& f)  // NOLINT(google-explicit-constructor): lambdas convert implicitly
      : obj_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* obj, int64_t b, int64_t e) { (*static_cast<std::remove_reference_t<F>*>(obj))(b, e); }) {}
  void operator()(int64_t b, int64_t e) const { call_(obj_, b, e); }

 private:
  void* obj_;
  void (*call_)(void*, int64_t, int64_t);
};

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // The process-wide pool of `n_threads` (<= 0: physical cores), created on
  // first use and kept while anyone holds it. Models loaded with the same
  // thread count share it, so `-t` is the process's total, not per model.
  static std::shared_ptr<ThreadPool> shared(int n_threads);

  int size() const { return n_threads_; }
  // Inside a parallel_for chunk: 1..size()-1 on this pool's workers, 0 on the
  // calling thread. Lets a loop give each thread its own slice of a buffer
  // sized before the loop, instead of lazily grown thread_local buffers.
  static int thread_index();
  // Calls fn(begin, end) on disjoint chunks covering [0, n), chunk boundaries
  // multiples of `grain`; threads take chunks as they finish the last one.
  // Blocks until all chunks are done. Loops from different threads take turns
  // (each gets every thread of the pool); a loop started from inside a chunk
  // of this pool runs inline on the calling thread, so nesting cannot deadlock.
  void parallel_for(int64_t n, int64_t grain, RangeFn fn);

 private:
  void worker();
  void run_share();  // takes chunks until none are left

  int n_threads_;
  std::vector<std::thread> threads_;
  std::mutex turn_mu_;  // one parallel loop at a time, whoever calls
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<int64_t> next_chunk_{0};
  std::atomic<int> sleepers_{0};
  bool stop_ = false;
  const RangeFn* job_ = nullptr;
  int64_t job_n_ = 0, job_grain_ = 1;
};

}  // namespace specsteer::kernels
