#pragma once
// ROUGE over files of {"reference", "prediction"} JSON lines, the shape of
// shared/fixtures/rouge/cases.jsonl (extra fields are ignored).
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/rouge.h"

namespace specsteer::eval {

struct RougePair {
  std::string reference, prediction;
  size_t line = 0;  // 1-based line in the file
};

// Throws Error "FILE:LINE: ..." for unreadable files, bad JSON, or a line
// without string `reference`/`prediction`. Blank lines are skipped.
std::vector<RougePair> read_rouge_pairs(const std::string& path);

nlohmann::json rouge_json(const RougeResult& r);
// One output line: reference, prediction, rouge1{precision,recall,fmeasure}, rougeL{...}.
nlohmann::json rouge_pair_json(const std::string& reference, const std::string& prediction, bool use_stemmer);

}  // namespace specsteer::eval
