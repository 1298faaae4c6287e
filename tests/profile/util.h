#pragma once
// Helpers shared by the profile tests: a fresh temp directory per test and the
// path of the shipped LongLaMP-layout sample.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace specsteer::profile::test {

inline std::filesystem::path fresh_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "specsteer_profile_test" /
                              (std::string(info->test_suite_name()) + "." + info->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline std::string sample(const std::string& task) {
  return std::string(SPECSTEER_SOURCE_DIR) + "/data/longlamp-sample/" + task + ".jsonl";
}

inline std::string write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
  return path.string();
}

// A test with its own directory, a database path in it and a way to write input files there.
class DirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fresh_dir();
    db_ = (dir_ / "p.db").string();
  }
  std::string file(const std::string& name, const std::string& text) { return write_file(dir_ / name, text); }
  std::filesystem::path dir_;
  std::string db_;
};

}  // namespace specsteer::profile::test
