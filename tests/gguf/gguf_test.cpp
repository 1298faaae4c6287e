// GGUF reader/writer: round trips, every metadata type, and corrupt or
// hostile files that must fail with a clear message instead of crashing.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "common/error.h"
#include "gguf/gguf.h"

namespace specsteer::gguf {
namespace {

std::vector<uint8_t> sample_file() {
  Writer w;
  w.add_string("general.architecture", "llama");
  w.add_u32("a.u32", 7);
  w.add_i32("a.i32", -3);
  w.add_u64("a.u64", 1ull << 40);
  w.add_f32("a.f32", 0.5f);
  w.add_bool("a.bool", true);
  w.add_strings("a.strings", {"x", "", "héllo"});
  w.add_f32s("a.f32s", {1.f, -2.f});
  w.add_i32s("a.i32s", {4, -5, 6});
  std::vector<uint8_t> t(4 * 8 * 4);
  for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<uint8_t>(i);
  w.add_tensor("t.weight", TensorType::F32, {8, 4}, t);
  w.add_tensor("q.weight", TensorType::Q8_0, {32, 2}, std::vector<uint8_t>(68, 1));
  return w.to_bytes();
}

TEST(Gguf, RoundTripsAllValueTypesAndTensors) {
  auto bytes = sample_file();
  auto f = File::from_bytes(bytes, "sample");
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(*f->get_string("general.architecture"), "llama");
  EXPECT_EQ(*f->get_u64("a.u32"), 7u);
  EXPECT_EQ(f->find("a.i32")->as_i64("a.i32"), -3);
  EXPECT_THROW(f->get_u64("a.i32"), Error);  // negative as unsigned
  EXPECT_EQ(*f->get_u64("a.u64"), 1ull << 40);
  EXPECT_DOUBLE_EQ(*f->get_f64("a.f32"), 0.5);
  EXPECT_TRUE(*f->get_bool("a.bool"));
  auto strs = f->find("a.strings")->as_strings("a.strings");
  ASSERT_EQ(strs.size(), 3u);
  EXPECT_EQ(strs[2], "héllo");
  EXPECT_EQ(f->find("a.f32s")->as_f32s("a.f32s"), (std::vector<float>{1.f, -2.f}));
  EXPECT_EQ(f->find("a.i32s")->as_i64s("a.i32s"), (std::vector<int64_t>{4, -5, 6}));
  EXPECT_THROW(f->get_string("a.u32"), Error);
  EXPECT_FALSE(f->get_u64("missing").has_value());
  EXPECT_THROW(f->require_u64("missing"), Error);

  const TensorInfo* t = f->find_tensor("t.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->ne[0], 8u);
  EXPECT_EQ(t->ne[1], 4u);
  EXPECT_EQ(t->n_bytes, 128u);
  EXPECT_EQ(t->data[5], 5);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t->data) % 32, reinterpret_cast<uintptr_t>(f->find_tensor("q.weight")->data) % 32);
  EXPECT_EQ(f->find_tensor("q.weight")->n_bytes, 68u);
}

std::string error_of(const std::vector<uint8_t>& bytes) {
  try {
    File::from_bytes(bytes, "bad.gguf");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Gguf, EveryTruncationFailsCleanly) {
  auto bytes = sample_file();
  // The last tensor (68 bytes of q8_0) is followed by 28 bytes of alignment
  // padding: a cut inside the padding is still a complete file, every
  // earlier cut must fail.
  const size_t data_end = bytes.size() - 28;
  EXPECT_TRUE(error_of({bytes.begin(), bytes.begin() + data_end}).empty());
  for (size_t n = 0; n < data_end; n += (n < 512 ? 1 : 17)) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + n);
    std::string err = error_of(cut);
    EXPECT_FALSE(err.empty()) << "truncated to " << n << " bytes was accepted";
    EXPECT_NE(err.find("bad.gguf"), std::string::npos) << err;
  }
  EXPECT_FALSE(error_of({bytes.begin(), bytes.begin() + data_end - 1}).empty());
}

TEST(Gguf, NamesFieldAndOffset) {
  auto bytes = sample_file();
  auto bad = bytes;
  bad[0] = 'X';
  EXPECT_NE(error_of(bad).find("bad magic"), std::string::npos);
  bad = bytes;
  bad[4] = 9;
  EXPECT_NE(error_of(bad).find("unsupported GGUF version 9"), std::string::npos);
  bad = bytes;
  uint64_t huge = ~0ull;
  std::memcpy(&bad[16], &huge, 8);  // metadata count
  EXPECT_NE(error_of(bad).find("metadata count"), std::string::npos);
  bad = bytes;
  std::memcpy(&bad[8], &huge, 8);  // tensor count
  EXPECT_NE(error_of(bad).find("tensor count"), std::string::npos);
  // First key length -> absurd: must report truncation with an offset.
  bad = bytes;
  std::memcpy(&bad[24], &huge, 8);
  std::string err = error_of(bad);
  EXPECT_NE(err.find("offset 32"), std::string::npos) << err;
}

TEST(Gguf, RandomCorruptionNeverCrashes) {
  auto bytes = sample_file();
  std::mt19937 rng(1234);
  int rejected = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    auto bad = bytes;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) bad[rng() % bad.size()] = static_cast<uint8_t>(rng());
    try {
      auto f = File::from_bytes(bad, "fuzz");
      for (const auto& t : f->tensors()) ASSERT_LE(t.data + t.n_bytes, f->tensors().front().data + bad.size());
    } catch (const Error&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0);
}

TEST(Gguf, RejectsHostileTensorInfo) {
  Writer w;
  w.add_tensor("x", TensorType::F32, {4}, std::vector<uint8_t>(16));
  auto bytes = w.to_bytes();
  // Tensor info layout after the 24-byte header (no KVs): name(8+1), n_dims(4), ne(8), type(4), offset(8).
  const size_t dims_at = 24 + 9, ne_at = dims_at + 4, type_at = ne_at + 8, off_at = type_at + 4;
  auto bad = bytes;
  bad[dims_at] = 7;
  EXPECT_NE(error_of(bad).find("dimensions"), std::string::npos);
  bad = bytes;
  bad[type_at] = 99;
  EXPECT_NE(error_of(bad).find("unknown tensor type id 99"), std::string::npos);
  bad = bytes;
  bad[ne_at] = 0;
  EXPECT_NE(error_of(bad).find("dimension 0 is zero"), std::string::npos);
  bad = bytes;
  bad[off_at] = 64;
  EXPECT_NE(error_of(bad).find("past the end"), std::string::npos);
  bad = bytes;
  bad[type_at] = 8;  // q8_0 needs rows that are multiples of 32
  EXPECT_NE(error_of(bad).find("block size"), std::string::npos);
}

}  // namespace
}  // namespace specsteer::gguf
