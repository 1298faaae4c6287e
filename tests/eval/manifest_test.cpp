#include "eval/manifest.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "common/error.h"

using namespace specsteer::eval;
namespace fs = std::filesystem;

TEST(Manifest, Sha256KnownVectors) {
  EXPECT_EQ(sha256_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  fs::path f = fs::temp_directory_path() / ("specsteer_sha_" + std::to_string(::getpid()));
  {
    std::ofstream out(f, std::ios::binary);
    std::string big(3 << 20, 'a');  // spans several read chunks
    out << big;
  }
  std::string big(3 << 20, 'a');
  EXPECT_EQ(sha256_file(f.string()), sha256_hex(big.data(), big.size()));
  fs::remove(f);
  EXPECT_THROW(sha256_file(f.string()), specsteer::Error);
}

TEST(Manifest, Sha256OfFixtureModelMatchesItsManifest) {
  std::string p = std::string(SPECSTEER_FIXTURES) + "/golden/tiny-qwen3-q8_0/tiny-qwen3-q8_0.gguf";
  if (!fs::exists(p)) GTEST_SKIP() << "no fixture " << p;
  EXPECT_EQ(sha256_file(p), "abdbabaaa273b38a481c0e2785ec8623f461d6bedffd6afff8a1980f9d46ac22");
}

TEST(Manifest, GitRevision) {
  fs::path d = fs::temp_directory_path() / ("specsteer_nogit_" + std::to_string(::getpid()));
  fs::create_directories(d);
  EXPECT_EQ(git_revision(d.string()), "unknown");
  fs::remove_all(d);
  std::string rev = git_revision(SPECSTEER_SOURCE_DIR);
  EXPECT_TRUE(rev == "unknown" || std::regex_match(rev, std::regex("[0-9a-f]{40}"))) << rev;
  EXPECT_TRUE(std::regex_match(utc_now_iso8601(), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")));
}
