#include "eval/rouge.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "eval/porter.h"

using namespace specsteer::eval;
using nlohmann::json;

namespace {

std::string data_path(const std::string& name) {
  return std::string(SPECSTEER_SOURCE_DIR) + "/tests/eval/data/" + name;
}

void expect_score(const json& want, const RougeScore& got, double tol, const std::string& where) {
  EXPECT_NEAR(want.at("precision").get<double>(), got.precision, tol) << where;
  EXPECT_NEAR(want.at("recall").get<double>(), got.recall, tol) << where;
  EXPECT_NEAR(want.at("fmeasure").get<double>(), got.fmeasure, tol) << where;
}

int check_pairs_file(const std::string& path, double tol) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    json j = json::parse(line);
    bool stem = j.value("stemmer", false);
    RougeResult r = rouge(j.at("reference").get<std::string>(), j.at("prediction").get<std::string>(), stem);
    std::string where = path + ":" + std::to_string(n + 1) + " " + line.substr(0, 120);
    expect_score(j.at("rouge1"), r.rouge1, tol, where);
    expect_score(j.at("rougeL"), r.rougeL, tol, where);
    ++n;
  }
  return n;
}

std::string utf8(char32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

}  // namespace

TEST(Rouge, SharedFixtureCases) {
  std::string path = std::string(SPECSTEER_FIXTURES) + "/rouge/cases.jsonl";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no shared fixtures at " << path;
  EXPECT_EQ(check_pairs_file(path, 1e-6), 10);
}

// Pairs scored by the Python oracle (gen_rouge_vectors.py: NLTK PorterStemmer,
// rouge_score's rules), with and without stemming, incl. Unicode casing cases.
TEST(Rouge, OracleVectorsWithAndWithoutStemmer) {
  EXPECT_EQ(check_pairs_file(data_path("rouge_pairs.jsonl"), 1e-12), 188);
}

TEST(Rouge, PorterMatchesNltkWordList) {
  std::ifstream in(data_path("porter_words.txt"));
  ASSERT_TRUE(in);
  std::string line;
  int n = 0, bad = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << line;
    std::string word = line.substr(0, tab), want = line.substr(tab + 1);
    std::string got = porter_stem(word);
    if (got != want && ++bad < 20) ADD_FAILURE() << word << ": want " << want << " got " << got;
    ++n;
  }
  EXPECT_GT(n, 6000);
  EXPECT_EQ(bad, 0);
}

TEST(Rouge, PorterHandChecked) {
  EXPECT_EQ(porter_stem("caresses"), "caress");
  EXPECT_EQ(porter_stem("ponies"), "poni");
  EXPECT_EQ(porter_stem("dies"), "die");       // NLTK extension: 4-letter -ies
  EXPECT_EQ(porter_stem("happy"), "happi");
  EXPECT_EQ(porter_stem("enjoy"), "enjoy");    // NLTK extension: y after vowel stays
  EXPECT_EQ(porter_stem("relational"), "relat");
  EXPECT_EQ(porter_stem("hopping"), "hop");
  EXPECT_EQ(porter_stem("skies"), "sky");      // irregular-forms table
  EXPECT_EQ(porter_stem("running"), "run");
}

// Python's str.lower() yields [a-z0-9] for A-Z and exactly the code points in
// the oracle's table; everything else non-ASCII is dropped by the tokenizer.
TEST(Rouge, EveryCodePointLowercasesLikePython) {
  std::ifstream in(data_path("lower_ascii_codepoints.txt"));
  ASSERT_TRUE(in);
  std::map<char32_t, std::string> special;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto tab = line.find('\t');
    special[static_cast<char32_t>(std::stoul(line.substr(0, tab), nullptr, 16))] = line.substr(tab + 1);
  }
  ASSERT_EQ(special.size(), 2u);
  int mismatches = 0;
  for (char32_t cp = 0x80; cp < 0x110000; ++cp) {
    if (cp >= 0xD800 && cp < 0xE000) continue;
    std::string text = "x";
    text += utf8(cp);
    text += 'y';
    auto toks = rouge_tokenize(text, false);
    std::string joined;
    for (auto& t : toks) joined += (joined.empty() ? "" : " ") + t;
    auto it = special.find(cp);
    std::string want = "x y";
    if (it != special.end()) {
      want = "x";
      want += it->second;
      want += cp == 0x130 ? " y" : "y";  // U+0130 also yields a combining dot, a separator
    }
    if (joined != want && ++mismatches < 10) ADD_FAILURE() << std::hex << uint32_t(cp) << ": " << joined;
  }
  EXPECT_EQ(mismatches, 0);
  for (char c = 'A'; c <= 'Z'; ++c) EXPECT_EQ(rouge_tokenize(std::string(1, c), false).at(0)[0], c - 'A' + 'a');
}

TEST(Rouge, TokenizerHandCases) {
  using V = std::vector<std::string>;
  EXPECT_EQ(rouge_tokenize("\xC4\xB0stanbul", false), (V{"i", "stanbul"}));
  EXPECT_EQ(rouge_tokenize("\xE2\x84\xAA" "elvin", false), (V{"kelvin"}));
  EXPECT_EQ(rouge_tokenize("Don't STOP-me now!", false), (V{"don", "t", "stop", "me", "now"}));
  // Invalid UTF-8 bytes separate tokens, never crash.
  EXPECT_EQ(rouge_tokenize("ab\xFF" "cd\xC4", false), (V{"ab", "cd"}));
  EXPECT_EQ(rouge_tokenize("ab\xE2\x84", false), (V{"ab"}));
  // Stemming only touches tokens longer than 3 characters.
  EXPECT_EQ(rouge_tokenize("Cats flies dies running", true), (V{"cat", "fli", "die", "run"}));
  EXPECT_EQ(rouge_tokenize("ies sky", true), (V{"ies", "sky"}));
}

TEST(Rouge, HandComputedScores) {
  // ref: a b c a, pred: a a d -> overlap min(2,2)+0 = 2; P = 2/3, R = 2/4.
  RougeResult r = rouge("a b c a", "a a d");
  EXPECT_DOUBLE_EQ(r.rouge1.precision, 2.0 / 3);
  EXPECT_DOUBLE_EQ(r.rouge1.recall, 0.5);
  EXPECT_DOUBLE_EQ(r.rouge1.fmeasure, 2 * (2.0 / 3) * 0.5 / (2.0 / 3 + 0.5));
  // LCS(a b c a, a a d) = 2 ("a a").
  EXPECT_DOUBLE_EQ(r.rougeL.precision, 2.0 / 3);
  EXPECT_DOUBLE_EQ(r.rougeL.recall, 0.5);
  RougeResult z = rouge("x y", "p q");
  EXPECT_EQ(z.rouge1.fmeasure, 0.0);
  EXPECT_EQ(z.rougeL.fmeasure, 0.0);
  RougeResult e = rouge("", "");
  EXPECT_EQ(e.rouge1.precision, 0.0);
  EXPECT_EQ(e.rougeL.recall, 0.0);
}
