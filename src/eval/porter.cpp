// Porter (1980) stemmer with NLTK's extensions, step for step as NLTK's
// PorterStemmer(mode=NLTK_EXTENSIONS) so rouge_score --use_stemmer scores match.
#include "eval/porter.h"

#include <functional>
#include <vector>

namespace specsteer::eval {
namespace {

using Cond = std::function<bool(const std::string& stem)>;

struct Rule {
  std::string_view suffix;  // "*d": ends in a double consonant
  std::string replacement;
  Cond cond;                // empty = always
};

bool ends_with(std::string_view w, std::string_view s) {
  return w.size() >= s.size() && w.substr(w.size() - s.size()) == s;
}

bool is_vowel_letter(char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

bool is_consonant(const std::string& w, size_t i) {
  // 'y' is a consonant at the start or after a vowel, else a vowel (NLTK
  // recurses; walking back over a run of y's flips the answer each step).
  size_t flips = 0;
  while (w[i] == 'y' && i > 0) {
    --i;
    ++flips;
  }
  bool base = !is_vowel_letter(w[i]);
  return flips % 2 == 0 ? base : !base;
}

int measure(const std::string& s) {
  int m = 0;
  bool prev_vowel = false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool c = is_consonant(s, i);
    if (c && prev_vowel) ++m;
    prev_vowel = !c;
  }
  return m;
}

bool contains_vowel(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i)
    if (!is_consonant(s, i)) return true;
  return false;
}

bool ends_double_consonant(const std::string& w) {
  return w.size() >= 2 && w[w.size() - 1] == w[w.size() - 2] && is_consonant(w, w.size() - 1);
}

bool ends_cvc(const std::string& w) {
  size_t n = w.size();
  if (n >= 3 && is_consonant(w, n - 3) && !is_consonant(w, n - 2) && is_consonant(w, n - 1) &&
      w[n - 1] != 'w' && w[n - 1] != 'x' && w[n - 1] != 'y')
    return true;
  // NLTK extension: a two-letter vowel-consonant word also counts.
  return n == 2 && !is_consonant(w, 0) && is_consonant(w, 1);
}

std::string chop(const std::string& w, size_t n) { return w.substr(0, w.size() - n); }

std::string apply_rules(const std::string& word, const std::vector<Rule>& rules) {
  for (const auto& r : rules) {
    if (r.suffix == "*d") {
      if (ends_double_consonant(word)) {
        std::string stem = chop(word, 2);
        if (!r.cond || r.cond(stem)) return stem + r.replacement;
        return word;  // first matching rule decides, even when its condition fails
      }
      continue;
    }
    if (ends_with(word, r.suffix)) {
      std::string stem = chop(word, r.suffix.size());
      if (!r.cond || r.cond(stem)) return stem + r.replacement;
      return word;
    }
  }
  return word;
}

bool positive_measure(const std::string& s) { return measure(s) > 0; }
bool measure_gt1(const std::string& s) { return measure(s) > 1; }

std::string step1a(const std::string& w) {
  if (ends_with(w, "ies") && w.size() == 4) return chop(w, 3) + "ie";
  return apply_rules(w, {{"sses", "ss", {}}, {"ies", "i", {}}, {"ss", "ss", {}}, {"s", "", {}}});
}

std::string step1b(const std::string& w) {
  if (ends_with(w, "ied")) return chop(w, 3) + (w.size() == 4 ? "ie" : "i");
  if (ends_with(w, "eed")) {
    std::string stem = chop(w, 3);
    return measure(stem) > 0 ? stem + "ee" : w;
  }
  std::string inter;
  bool ok = false;
  for (std::string_view suf : {std::string_view("ed"), std::string_view("ing")}) {
    if (ends_with(w, suf)) {
      inter = chop(w, suf.size());
      if (contains_vowel(inter)) {
        ok = true;
        break;
      }
    }
  }
  if (!ok) return w;
  char last = inter.empty() ? '\0' : inter.back();
  return apply_rules(inter, {
                                {"at", "ate", {}},
                                {"bl", "ble", {}},
                                {"iz", "ize", {}},
                                {"*d", std::string(1, last),
                                 [last](const std::string&) { return last != 'l' && last != 's' && last != 'z'; }},
                                {"", "e", [](const std::string& s) { return measure(s) == 1 && ends_cvc(s); }},
                            });
}

std::string step1c(const std::string& w) {
  // NLTK: y -> i only after a consonant that is not the whole stem.
  return apply_rules(
      w, {{"y", "i", [](const std::string& s) { return s.size() > 1 && is_consonant(s, s.size() - 1); }}});
}

std::string step2(const std::string& w) {
  if (ends_with(w, "alli") && positive_measure(chop(w, 4))) return step2(chop(w, 4) + "al");
  std::vector<Rule> rules = {
      {"ational", "ate", positive_measure}, {"tional", "tion", positive_measure},
      {"enci", "ence", positive_measure},   {"anci", "ance", positive_measure},
      {"izer", "ize", positive_measure},    {"bli", "ble", positive_measure},
      {"alli", "al", positive_measure},     {"entli", "ent", positive_measure},
      {"eli", "e", positive_measure},       {"ousli", "ous", positive_measure},
      {"ization", "ize", positive_measure}, {"ation", "ate", positive_measure},
      {"ator", "ate", positive_measure},    {"alism", "al", positive_measure},
      {"iveness", "ive", positive_measure}, {"fulness", "ful", positive_measure},
      {"ousness", "ous", positive_measure}, {"aliti", "al", positive_measure},
      {"iviti", "ive", positive_measure},   {"biliti", "ble", positive_measure},
      {"fulli", "ful", positive_measure},
      // The 'l' of "logi" stays with the stem for the measure test.
      {"logi", "log", [&w](const std::string&) { return positive_measure(chop(w, 3)); }},
  };
  return apply_rules(w, rules);
}

std::string step3(const std::string& w) {
  return apply_rules(w, {{"icate", "ic", positive_measure},
                         {"ative", "", positive_measure},
                         {"alize", "al", positive_measure},
                         {"iciti", "ic", positive_measure},
                         {"ical", "ic", positive_measure},
                         {"ful", "", positive_measure},
                         {"ness", "", positive_measure}});
}

std::string step4(const std::string& w) {
  return apply_rules(
      w, {{"al", "", measure_gt1},   {"ance", "", measure_gt1}, {"ence", "", measure_gt1},
          {"er", "", measure_gt1},   {"ic", "", measure_gt1},   {"able", "", measure_gt1},
          {"ible", "", measure_gt1}, {"ant", "", measure_gt1},  {"ement", "", measure_gt1},
          {"ment", "", measure_gt1}, {"ent", "", measure_gt1},
          {"ion", "", [](const std::string& s) { return measure(s) > 1 && (s.back() == 's' || s.back() == 't'); }},
          {"ou", "", measure_gt1},   {"ism", "", measure_gt1},  {"ate", "", measure_gt1},
          {"iti", "", measure_gt1},  {"ous", "", measure_gt1},  {"ive", "", measure_gt1},
          {"ize", "", measure_gt1}});
}

std::string step5a(const std::string& w) {
  if (ends_with(w, "e")) {
    std::string stem = chop(w, 1);
    int m = measure(stem);
    if (m > 1) return stem;
    if (m == 1 && !ends_cvc(stem)) return stem;
  }
  return w;
}

std::string step5b(const std::string& w) {
  return apply_rules(w, {{"ll", "l", [&w](const std::string&) { return measure(chop(w, 1)) > 1; }}});
}

const std::string* irregular(std::string_view w) {
  static const std::vector<std::pair<std::string_view, std::string>> pool = {
      {"sky", "sky"},         {"skies", "sky"},      {"dying", "die"},         {"lying", "lie"},
      {"tying", "tie"},       {"news", "news"},      {"innings", "inning"},    {"inning", "inning"},
      {"outings", "outing"},  {"outing", "outing"},  {"cannings", "canning"},  {"canning", "canning"},
      {"howe", "howe"},       {"proceed", "proceed"}, {"exceed", "exceed"},    {"succeed", "succeed"},
  };
  for (const auto& [k, v] : pool)
    if (k == w) return &v;
  return nullptr;
}

}  // namespace

std::string porter_stem(std::string_view word) {
  if (const std::string* s = irregular(word)) return *s;
  std::string w(word);
  if (w.size() <= 2) return w;
  w = step1a(w);
  w = step1b(w);
  w = step1c(w);
  w = step2(w);
  w = step3(w);
  w = step4(w);
  w = step5a(w);
  w = step5b(w);
  return w;
}

}  // namespace specsteer::eval
