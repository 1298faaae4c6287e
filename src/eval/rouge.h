#pragma once
// ROUGE-1 and ROUGE-L exactly as Google's rouge_score (the scorer behind
// LaMP/LongLaMP evaluation via `evaluate`): its default tokenizer, optional
// Porter stemming of tokens longer than 3 characters, and its P/R/F formulas.
#include <string>
#include <string_view>
#include <vector>

namespace specsteer::eval {

struct RougeScore {
  double precision = 0, recall = 0, fmeasure = 0;
};

struct RougeResult {
  RougeScore rouge1, rougeL;
};

// rouge_score's tokenizer: Python str.lower() (full Unicode), every character
// outside [a-z0-9] becomes a separator, split, stem if asked. Input is UTF-8;
// bytes that are not valid UTF-8 act as separators.
std::vector<std::string> rouge_tokenize(std::string_view text, bool stem);

// Argument order as rouge_score's scorer.score(target, prediction).
RougeResult rouge(std::string_view reference, std::string_view prediction, bool use_stemmer = false);

// Same scores from already tokenized text (for scoring one reference many times).
RougeResult rouge_tokens(const std::vector<std::string>& reference, const std::vector<std::string>& prediction);

}  // namespace specsteer::eval
