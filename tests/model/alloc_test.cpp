// The decode loop allocates nothing once warm: this binary counts every
// global operator new, and a steady-state decode step or K-token
// verification must not add to the count.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <new>

#include "model/model.h"
#include "model/synth.h"

namespace {
std::atomic<long> g_allocations{0};
}

// Replaced allocation functions (a matching new/delete pair: the count is all
// they add; GCC cannot see that free() here pairs with malloc() above).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }  // NOLINT(misc-new-delete-overloads)
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace specsteer {
namespace {

// Allocations made while fn runs.
template <class Fn>
long allocations_during(Fn&& fn) {
  const long before = g_allocations.load();
  fn();
  return g_allocations.load() - before;
}

class DecodeAllocations : public ::testing::TestWithParam<gguf::TensorType> {};

TEST_P(DecodeAllocations, NoneOnceWarm) {
  // Rows and columns multiples of 16 and 32, so Q8_0/Q4_0 take the packed path
  // where the CPU has one; two threads, so the pool's hand-offs are covered.
  model::SynthConfig c = model::synth_preset("tiny-qwen3");
  c.n_embd = 256;  // K-quant rows are multiples of 256
  c.n_ff = 512;
  c.head_dim = 64;
  c.type = c.embd_type = GetParam();
  const std::string path =
      ::testing::TempDir() + "specsteer_alloc_" + std::string(gguf::type_name(GetParam())) + ".gguf";
  model::synthesize(c, path);
  auto m = Model::load(path, {.n_threads = 2});
  for (KvType kv : {KvType::F32, KvType::F16}) {
    Sequence seq(m, {.n_ctx = 128, .kv_type = kv});
    const std::vector<int32_t> prompt = {1, 2, 3, 4, 5, 6, 7, 8};
    const std::vector<int32_t> draft = {9, 10, 11, 12};
    seq.eval(prompt, false);
    // Warm-up: scratch and per-thread buffers grow to the largest batch they
    // see. Which pool thread runs which chunk varies, so rounds of one decode
    // step and one verification repeat until one allocates nothing.
    long warm = 1;
    for (int round = 0; round < 50 && warm != 0; ++round)
      warm = allocations_during([&] {
        seq.truncate(prompt.size());
        for (int32_t t : {20, 21}) seq.eval({&t, 1}, false);
        seq.eval(draft, true);
      });
    ASSERT_EQ(warm, 0) << "every warm-up round allocated";
    seq.truncate(prompt.size() + 2);

    const long decode = allocations_during([&] {
      for (int32_t t = 30; t < 38; ++t) seq.eval({&t, 1}, false);
    });
    EXPECT_EQ(decode, 0) << "allocations in 8 decode steps, " << gguf::type_name(GetParam());
    const long verify = allocations_during([&] {
      for (int rep = 0; rep < 3; ++rep) {
        seq.truncate(prompt.size() + 2);
        seq.eval(draft, true);
      }
    });
    EXPECT_EQ(verify, 0) << "allocations in 3 verifications of 4 tokens, " << gguf::type_name(GetParam());
  }
  std::filesystem::remove(path);
}

INSTANTIATE_TEST_SUITE_P(Types, DecodeAllocations,
                         ::testing::Values(gguf::TensorType::F32, gguf::TensorType::Q8_0, gguf::TensorType::Q4_0,
                                           gguf::TensorType::Q4_K),
                         [](const auto& info) { return std::string(gguf::type_name(info.param)); });

}  // namespace
}  // namespace specsteer
