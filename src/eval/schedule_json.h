#pragma once
// JSON forms of a generation's schedule (steer/schedule.h) and of its
// decode-time breakdown, as written into results.jsonl and `generate --json`,
// and read back by `specsteer replay`.
#include <nlohmann/json.hpp>
#include <string>

#include "steer/schedule.h"
#include "steer/settings.h"

namespace specsteer::eval {

// {"method", "prompt": {"edge", "llm", "slm"}, "tokens", "rounds": [{"k", "acc",
// "rec", "bonus", "edge": [[pos, rows], ...], "llm": [...], "slm": [...]}],
// "fallback": [[pos, rows], ...]}; empty lists and false flags are omitted.
nlohmann::json schedule_to_json(const steer::Schedule& s);
// Throws Error naming `where` and the field that is missing or malformed.
steer::Schedule schedule_from_json(const nlohmann::json& j, const std::string& where);

// The decode phase split by where the time went (seconds), Counters' t_* terms.
nlohmann::json breakdown_json(const steer::Counters& c);

}  // namespace specsteer::eval
