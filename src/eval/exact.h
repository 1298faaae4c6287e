#pragma once
// MiniLaMP's exact checks (tools/minilamp/score.py, same rules): records that
// carry `facts` (the user's private strings in the reference) and
// `constraints` (review: attribute verdicts and the liked/disliked counts;
// writing: the outings made and missed) are scored on
//   fact recall      share of the facts found verbatim (not inside a longer word)
//   constraint items share of atomic constraints met
//   constraint strict whether all of them are met.
// score.py's fact_strict (no other user's name) needs the generator's name
// pools and is left to score.py.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace specsteer::eval {

struct ExactChecks {
  std::vector<std::string> facts;
  // review
  std::vector<std::pair<std::string, std::string>> verdicts;  // (attribute, "great"|"poor")
  int liked = 0, disliked = 0;
  // writing
  bool is_writing = false;
  std::vector<std::string> made, missed;
};

struct ExactScores {
  double fact_recall = 0;  // in [0, 1]
  double cons_items = 0;   // in [0, 1]
  bool cons_strict = false;
};

// The checks of one record, or none when it carries neither `facts` nor
// `constraints`. Throws Error naming `where` and the field when they are
// present but malformed (both are needed; counts 0..4 as score.py's words).
std::optional<ExactChecks> exact_checks_from_record(const nlohmann::json& record, const std::string& where);

ExactScores score_exact(const ExactChecks& checks, std::string_view text);

// score.py's `present`: `needle` occurs in `text` with no ASCII letter
// immediately before or after it.
bool contains_word(std::string_view text, std::string_view needle);

}  // namespace specsteer::eval
