#include "eval/rouge_io.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"

using namespace specsteer::eval;
namespace fs = std::filesystem;

namespace {
fs::path write_tmp(const std::string& text) {
  fs::path p = fs::temp_directory_path() / ("specsteer_pairs_" + std::to_string(::getpid()) + ".jsonl");
  std::ofstream(p, std::ios::binary) << text;
  return p;
}
std::string error_of(const fs::path& p) {
  try {
    read_rouge_pairs(p.string());
  } catch (const specsteer::Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(RougeIo, ReadsFixtureShapeAndSkipsBlankLines) {
  auto p = write_tmp("{\"reference\": \"a b\", \"prediction\": \"a\", \"rouge1\": {}}\n\n{\"reference\":\"\",\"prediction\":\"x\"}\r\n");
  auto pairs = read_rouge_pairs(p.string());
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[0].reference, "a b");
  EXPECT_EQ(pairs[1].line, 3u);
  nlohmann::json j = rouge_pair_json(pairs[0].reference, pairs[0].prediction, false);
  EXPECT_DOUBLE_EQ(j["rouge1"]["precision"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j["rouge1"]["recall"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(j["rougeL"]["fmeasure"].get<double>(), 2.0 / 3);
  fs::remove(p);
}

TEST(RougeIo, ErrorsNameFileAndLine) {
  auto p = write_tmp("{\"reference\": \"a\", \"prediction\": \"b\"}\n{\"reference\": \"a\", \"prediction\": \n");
  std::string e = error_of(p);
  EXPECT_NE(e.find(p.string() + ":2: not valid JSON"), std::string::npos) << e;
  p = write_tmp("{\"reference\": \"a\"}\n");
  EXPECT_NE(error_of(p).find(":1: missing field \"prediction\""), std::string::npos) << error_of(p);
  p = write_tmp("[1,2]\n");
  EXPECT_NE(error_of(p).find(":1: expected a JSON object"), std::string::npos);
  p = write_tmp("{\"reference\": 3, \"prediction\": \"b\"}\n");
  EXPECT_NE(error_of(p).find("\"reference\" must be a string"), std::string::npos);
  fs::remove(p);
  EXPECT_NE(error_of("/nonexistent/pairs.jsonl").find("cannot open"), std::string::npos);
}
