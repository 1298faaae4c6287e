#include "eval/rouge.h"

#include <algorithm>
#include <unordered_map>

#include "eval/porter.h"

namespace specsteer::eval {
namespace {

// rouge_score.scoring.fmeasure, same operation order for bit-equal results.
double fmeasure(double p, double r) { return p + r > 0 ? 2 * p * r / (p + r) : 0.0; }

}  // namespace

std::vector<std::string> rouge_tokenize(std::string_view text, bool stem) {
  // Python's str.lower() maps only three kinds of code points to something
  // containing [a-z0-9] (checked over all of Unicode 14): A-Z, U+0130 (to
  // "i" + U+0307) and U+212A KELVIN SIGN (to "k"). Every other non-ASCII
  // character lowercases to non-ASCII and is dropped, so those are all the
  // case mapping that can change a token. In valid UTF-8 all bytes of a
  // non-ASCII character are >= 0x80, so matching these byte sequences is exact.
  std::vector<std::string> tokens;
  std::string cur;
  auto flush = [&] {
    if (cur.empty()) return;
    if (stem && cur.size() > 3) cur = porter_stem(cur);
    if (!cur.empty()) tokens.push_back(std::move(cur));
    cur.clear();
  };
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size();
  for (size_t i = 0; i < n;) {
    unsigned char c = p[i];
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      cur.push_back(static_cast<char>(c));
      ++i;
    } else if (c >= 'A' && c <= 'Z') {
      cur.push_back(static_cast<char>(c - 'A' + 'a'));
      ++i;
    } else if (c == 0xC4 && i + 1 < n && p[i + 1] == 0xB0) {  // U+0130 -> "i\u0307"
      cur.push_back('i');
      flush();  // the combining dot is not alphanumeric
      i += 2;
    } else if (c == 0xE2 && i + 2 < n && p[i + 1] == 0x84 && p[i + 2] == 0xAA) {  // U+212A -> "k"
      cur.push_back('k');
      i += 3;
    } else {
      flush();
      ++i;
    }
  }
  flush();
  return tokens;
}

RougeResult rouge_tokens(const std::vector<std::string>& ref, const std::vector<std::string>& pred) {
  RougeResult out;
  // ROUGE-1: clipped unigram overlap.
  std::unordered_map<std::string_view, long> ref_counts;
  for (const auto& t : ref) ++ref_counts[t];
  std::unordered_map<std::string_view, long> pred_counts;
  for (const auto& t : pred) ++pred_counts[t];
  long overlap = 0;
  for (const auto& [tok, cnt] : ref_counts) {
    auto it = pred_counts.find(tok);
    if (it != pred_counts.end()) overlap += std::min(cnt, it->second);
  }
  double ov = static_cast<double>(overlap);
  out.rouge1.precision = ov / static_cast<double>(std::max<size_t>(pred.size(), 1));
  out.rouge1.recall = ov / static_cast<double>(std::max<size_t>(ref.size(), 1));
  out.rouge1.fmeasure = fmeasure(out.rouge1.precision, out.rouge1.recall);

  // ROUGE-L: longest common subsequence, two DP rows.
  if (!ref.empty() && !pred.empty()) {
    std::vector<int> prev(pred.size() + 1, 0), row(pred.size() + 1, 0);
    for (size_t i = 1; i <= ref.size(); ++i) {
      for (size_t j = 1; j <= pred.size(); ++j)
        row[j] = ref[i - 1] == pred[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], row[j - 1]);
      std::swap(prev, row);
    }
    double lcs = prev[pred.size()];
    out.rougeL.precision = lcs / static_cast<double>(pred.size());
    out.rougeL.recall = lcs / static_cast<double>(ref.size());
    out.rougeL.fmeasure = fmeasure(out.rougeL.precision, out.rougeL.recall);
  }
  return out;
}

RougeResult rouge(std::string_view reference, std::string_view prediction, bool use_stemmer) {
  return rouge_tokens(rouge_tokenize(reference, use_stemmer), rouge_tokenize(prediction, use_stemmer));
}

}  // namespace specsteer::eval
