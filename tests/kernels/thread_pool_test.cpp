// The process-wide shared pool: models of one process take turns on one set
// of threads, loops nested inside a chunk run inline instead of deadlocking.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "kernels/thread_pool.h"

using specsteer::kernels::ThreadPool;

TEST(SharedPool, OnePoolPerThreadCount) {
  auto a = ThreadPool::shared(2), b = ThreadPool::shared(2), c = ThreadPool::shared(3);
  EXPECT_EQ(a.get(), b.get());
  EXPECT_NE(a.get(), c.get());
  EXPECT_EQ(a->size(), 2);
  EXPECT_EQ(c->size(), 3);
  EXPECT_GE(ThreadPool::shared(0)->size(), 1);  // physical cores
}

TEST(SharedPool, NestedLoopsRunInline) {
  auto pool = ThreadPool::shared(3);
  std::vector<std::atomic<int>> hits(64 * 32);
  pool->parallel_for(64, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      pool->parallel_for(32, 1, [&](int64_t b2, int64_t e2) {
        for (int64_t j = b2; j < e2; ++j) hits[static_cast<size_t>(i * 32 + j)].fetch_add(1);
      });
  });
  for (const auto& h : hits) ASSERT_EQ(h.load(), 1);
}

TEST(SharedPool, ConcurrentCallersTakeTurns) {
  // Like an edge model, a cloud LLM and a batcher thread all using one pool.
  auto pool = ThreadPool::shared(2);
  constexpr int kCallers = 4, kLoops = 300, kN = 257;
  std::vector<std::vector<int>> sums(kCallers, std::vector<int>(kN, 0));
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c)
    callers.emplace_back([&, c] {
      for (int l = 0; l < kLoops; ++l)
        pool->parallel_for(kN, 8, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) ++sums[static_cast<size_t>(c)][static_cast<size_t>(i)];
        });
    });
  for (auto& t : callers) t.join();
  for (const auto& s : sums)
    for (int v : s) ASSERT_EQ(v, kLoops);
}
