#include "steer/logit_source.h"

#include <string>

#include "common/error.h"

namespace specsteer::steer {

std::span<const float> FunctionSource::eval(std::span<const int32_t> tokens) {
  const size_t V = static_cast<size_t>(n_vocab_);
  rows_.assign(tokens.size() * V, 0.f);
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= n_vocab_)
      throw Error("synthetic source: token id " + std::to_string(tokens[i]) + " out of range");
    tokens_.push_back(tokens[i]);
    attention_ += tokens_.size();
    fn_(tokens_, std::span<float>(rows_).subspan(i * V, V));
  }
  positions_ += tokens.size();
  return rows_;
}

void FunctionSource::truncate(size_t n) {
  if (n > tokens_.size()) throw Error("synthetic source: truncate beyond the held tokens");
  tokens_.resize(n);
}

}  // namespace specsteer::steer
