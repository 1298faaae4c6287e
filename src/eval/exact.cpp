#include "eval/exact.h"

#include "common/error.h"

namespace specsteer::eval {
namespace {

using nlohmann::json;

constexpr const char* kNumbers[] = {"zero", "one", "two", "three", "four"};  // generate.py NUMBERS

std::string number_word(int n, const std::string& where, const char* field) {
  if (n < 0 || n >= static_cast<int>(std::size(kNumbers)))
    throw Error(where + ": constraints." + field + " = " + std::to_string(n) + " has no number word (0..4)");
  return kNumbers[n];
}

// generate.py join_list: "a", "a and b", "a, b and c".
std::string join_list(const std::vector<std::string>& items) {
  if (items.size() == 1) return items[0];
  std::string out;
  for (size_t i = 0; i + 1 < items.size(); ++i) {
    if (i) out += ", ";
    out += items[i];
  }
  return out + " and " + items.back();
}

bool is_ascii_letter(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

std::vector<std::string> strings(const json& j, const std::string& where, const std::string& field) {
  if (!j.is_array()) throw Error(where + ": " + field + " must be an array of strings");
  std::vector<std::string> out;
  for (const auto& e : j) {
    if (!e.is_string()) throw Error(where + ": " + field + " must be an array of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

// An integer, or its digits as text: eval's record reader keeps every JSON
// number as its source spelling.
int count(const json& c, const char* key, const std::string& where) {
  auto it = c.find(key);
  if (it != c.end() && it->is_number_integer()) return it->get<int>();
  if (it != c.end() && it->is_string()) {
    const std::string t = it->get<std::string>();
    if (!t.empty() && t.size() < 9 && t.find_first_not_of("0123456789") == std::string::npos) return std::stoi(t);
  }
  throw Error(where + ": constraints." + key + " missing or not an integer");
}

}  // namespace

bool contains_word(std::string_view text, std::string_view needle) {
  if (needle.empty()) return true;
  for (size_t at = text.find(needle); at != std::string_view::npos; at = text.find(needle, at + 1)) {
    const bool before_ok = at == 0 || !is_ascii_letter(text[at - 1]);
    const size_t end = at + needle.size();
    const bool after_ok = end == text.size() || !is_ascii_letter(text[end]);
    if (before_ok && after_ok) return true;
  }
  return false;
}

std::optional<ExactChecks> exact_checks_from_record(const json& record, const std::string& where) {
  auto f = record.find("facts");
  auto c = record.find("constraints");
  if (f == record.end() && c == record.end()) return std::nullopt;
  if (f == record.end() || c == record.end())
    throw Error(where + ": a record with exact checks needs both 'facts' and 'constraints'");
  ExactChecks x;
  x.facts = strings(*f, where, "facts");
  if (x.facts.empty()) throw Error(where + ": facts is empty");
  if (!c->is_object()) throw Error(where + ": constraints must be an object");
  if (auto v = c->find("verdicts"); v != c->end()) {
    if (!v->is_array() || v->empty()) throw Error(where + ": constraints.verdicts must be a non-empty array");
    for (const auto& p : *v) {
      if (!p.is_array() || p.size() != 2 || !p[0].is_string() || !p[1].is_string())
        throw Error(where + ": constraints.verdicts entries must be [attribute, verdict] strings");
      x.verdicts.emplace_back(p[0].get<std::string>(), p[1].get<std::string>());
    }
    x.liked = count(*c, "liked", where);
    x.disliked = count(*c, "disliked", where);
    number_word(x.liked, where, "liked");
    number_word(x.disliked, where, "disliked");
  } else if (c->contains("made") && c->contains("missed")) {
    x.is_writing = true;
    x.made = strings((*c)["made"], where, "constraints.made");
    x.missed = strings((*c)["missed"], where, "constraints.missed");
    number_word(static_cast<int>(x.made.size()), where, "made");
    number_word(static_cast<int>(x.missed.size()), where, "missed");
  } else {
    throw Error(where + ": constraints needs 'verdicts' (review) or 'made' and 'missed' (writing)");
  }
  return x;
}

ExactScores score_exact(const ExactChecks& x, std::string_view text) {
  ExactScores s;
  size_t hits = 0;
  for (const auto& f : x.facts) hits += contains_word(text, f) ? 1 : 0;
  s.fact_recall = x.facts.empty() ? 0.0 : double(hits) / double(x.facts.size());
  std::vector<bool> checks;
  auto has = [&](const std::string& s) { return text.find(s) != std::string_view::npos; };
  if (!x.is_writing) {
    for (const auto& [attr, verdict] : x.verdicts) {
      const std::string other = verdict == "great" ? "poor" : "great";
      checks.push_back(has("The " + attr + " was " + verdict + ".") && !has("The " + attr + " was " + other + "."));
    }
    checks.push_back(has("I liked " + std::string(kNumbers[x.liked]) + " and disliked " +
                         std::string(kNumbers[x.disliked]) + "."));
  } else {
    for (const auto& [items, lead] : {std::pair{&x.made, "We made it to"}, std::pair{&x.missed, "We missed"}}) {
      const std::string want = std::string(lead) + " " + kNumbers[items->size()] +
                               (items->empty() ? "." : ": " + join_list(*items) + ".");
      checks.push_back(has(want));
    }
  }
  size_t met = 0;
  for (bool b : checks) met += b ? 1 : 0;
  s.cons_items = checks.empty() ? 0.0 : double(met) / double(checks.size());
  s.cons_strict = met == checks.size();
  return s;
}

}  // namespace specsteer::eval
