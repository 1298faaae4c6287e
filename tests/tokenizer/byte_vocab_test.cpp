// ByteVocab: a vocabulary as byte strings (cross-tokenizer SpecSteer).
#include "tokenizer/byte_vocab.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/error.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

using namespace specsteer;
namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = SPECSTEER_FIXTURES;

std::string spelled(const ByteVocab& v, const std::vector<int32_t>& ids) {
  std::string out;
  for (int32_t id : ids) {
    EXPECT_TRUE(v.spells(id)) << id;
    out += v.bytes(id);
  }
  return out;
}

}  // namespace

TEST(ByteVocab, PrefixRangesAndExactTokens) {
  //                      0    1     2    3    4      5   6 (outside)
  ByteVocab v(std::vector<std::string>{"a", "ab", "b", "abc", "ab", "ba", ""});
  EXPECT_FALSE(v.spells(6));
  EXPECT_EQ(v.sorted().size(), 6u);
  auto [lo, hi] = v.with_prefix("ab");
  EXPECT_EQ(hi - lo, 3u);  // "ab" (1), "ab" (4), "abc"
  EXPECT_EQ(v.exact_count("ab"), 2u);
  EXPECT_EQ(v.sorted()[lo], 1);  // ties by id
  EXPECT_EQ(v.sorted()[lo + 1], 4);
  EXPECT_EQ(v.sorted()[lo + 2], 3);
  std::tie(lo, hi) = v.with_prefix("");
  EXPECT_EQ(hi - lo, 6u);
  std::tie(lo, hi) = v.with_prefix("c");
  EXPECT_EQ(lo, hi);
  EXPECT_EQ(v.exact_count("abc"), 1u);
  EXPECT_EQ(v.exact_count("abcd"), 0u);
  // Longest match without a tokenizer.
  EXPECT_EQ(v.spell("abcab"), (std::vector<int32_t>{3, 1}));
  EXPECT_EQ(v.spell("bab"), (std::vector<int32_t>{5, 2}));
  try {
    v.spell("abx");
    FAIL() << "x has no token";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("0x78 at offset 2"), std::string::npos) << e.what();
  }
}

TEST(ByteVocab, SpellsAnyBytesWithRealVocabularies) {
  for (const char* rel : {"golden/tiny-qwen3-f32/tiny-qwen3-f32.gguf", "golden/tiny-llama3-f32/tiny-llama3-f32.gguf",
                          "tokenizer/ggml-vocab-llama-spm.gguf"}) {
    if (!fs::exists(kFixtures / rel)) GTEST_SKIP() << "fixture missing: " << rel;
    auto f = gguf::File::open((kFixtures / rel).string());
    auto tok = Tokenizer::from_gguf(*f);
    ByteVocab v(*tok);
    EXPECT_FALSE(v.spells(tok->eos())) << rel;
    // Text, text ending inside a character, and invalid bytes in the middle.
    for (std::string s : {std::string(" Hello, wörld!\n  x = 42;"), std::string("caf\xC3"),
                          std::string("a\xFF b \xE2\x82"), std::string(" "), std::string("<|im_end|>")}) {
      const auto ids = v.spell(s);
      EXPECT_EQ(spelled(v, ids), s) << rel << ": " << s;
    }
    // The tokenizer's own encoding where it spells the bytes back.
    if (tok->model_type() == "gpt2") {
      EXPECT_EQ(v.spell(" Hello world"), tok->encode(" Hello world", false, false)) << rel;
    }
  }
}
