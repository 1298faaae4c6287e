#include "eval/schedule_json.h"

#include <limits>

#include "common/error.h"

namespace specsteer::eval {

using nlohmann::json;

namespace {

json spans_json(const std::vector<steer::EvalSpan>& spans) {
  json a = json::array();
  for (const auto& s : spans) a.push_back({s.pos, s.rows});
  return a;
}

uint32_t u32(const json& j, const std::string& where) {
  // Parsed text gives unsigned numbers; JSON built in code may hold signed ones.
  const bool ok = j.is_number_unsigned() ? j.get<uint64_t>() <= std::numeric_limits<uint32_t>::max()
                                         : j.is_number_integer() && j.get<int64_t>() >= 0 &&
                                               j.get<int64_t>() <= std::numeric_limits<uint32_t>::max();
  if (!ok) throw Error(where + ": expected an unsigned 32-bit integer, got " + j.dump());
  return static_cast<uint32_t>(j.get<uint64_t>());
}

std::vector<steer::EvalSpan> spans_from(const json& j, const char* name, const std::string& where) {
  std::vector<steer::EvalSpan> out;
  auto it = j.find(name);
  if (it == j.end()) return out;
  const std::string w = where + "." + name;
  if (!it->is_array()) throw Error(w + ": expected a list of [pos, rows] pairs");
  for (size_t i = 0; i < it->size(); ++i) {
    const json& p = (*it)[i];
    const std::string wi = w + "[" + std::to_string(i) + "]";
    if (!p.is_array() || p.size() != 2) throw Error(wi + ": expected [pos, rows]");
    steer::EvalSpan s{u32(p[0], wi + " pos"), u32(p[1], wi + " rows")};
    if (s.rows == 0) throw Error(wi + ": a pass evaluates at least one row");
    out.push_back(s);
  }
  return out;
}

}  // namespace

json schedule_to_json(const steer::Schedule& s) {
  json rounds = json::array();
  for (const auto& r : s.rounds) {
    json o = json::object();
    if (r.drafted) o["k"] = r.drafted;
    if (r.drafted) o["acc"] = r.accepted;
    if (r.recovery) o["rec"] = true;
    if (r.bonus) o["bonus"] = true;
    if (!r.edge.empty()) o["edge"] = spans_json(r.edge);
    if (!r.edge_ahead.empty()) o["ahead"] = spans_json(r.edge_ahead);
    if (!r.llm.empty()) o["llm"] = spans_json(r.llm);
    if (!r.slm.empty()) o["slm"] = spans_json(r.slm);
    rounds.push_back(std::move(o));
  }
  json j = {{"method", s.method},
            {"prompt", {{"edge", s.edge_prompt}, {"llm", s.llm_prompt}, {"slm", s.slm_prompt}}},
            {"tokens", s.tokens},
            {"rounds", std::move(rounds)}};
  if (!s.fallback.empty()) j["fallback"] = spans_json(s.fallback);
  if (s.byte_level) j["byte_level"] = true;
  return j;
}

steer::Schedule schedule_from_json(const json& j, const std::string& where) {
  if (!j.is_object()) throw Error(where + ": a schedule must be a JSON object");
  steer::Schedule s;
  auto need = [&](const char* name) -> const json& {
    auto it = j.find(name);
    if (it == j.end()) throw Error(where + ": missing field '" + name + "'");
    return *it;
  };
  const json& m = need("method");
  if (!m.is_string()) throw Error(where + ".method: expected a string");
  s.method = m.get<std::string>();
  try {
    steer::parse_method(s.method);
  } catch (const Error& e) {
    throw Error(where + ".method: " + e.what());
  }
  const json& p = need("prompt");
  if (!p.is_object()) throw Error(where + ".prompt: expected an object");
  for (auto [name, field] : {std::pair{"edge", &s.edge_prompt}, {"llm", &s.llm_prompt}, {"slm", &s.slm_prompt}}) {
    auto it = p.find(name);
    *field = it == p.end() ? 0 : u32(*it, where + ".prompt." + name);
  }
  const json& t = need("tokens");
  if (!t.is_number_integer() || (!t.is_number_unsigned() && t.get<int64_t>() < 0))
    throw Error(where + ".tokens: expected an unsigned integer");
  s.tokens = t.get<uint64_t>();
  const json& rounds = need("rounds");
  if (!rounds.is_array()) throw Error(where + ".rounds: expected a list");
  for (size_t i = 0; i < rounds.size(); ++i) {
    const json& o = rounds[i];
    const std::string w = where + ".rounds[" + std::to_string(i) + "]";
    if (!o.is_object()) throw Error(w + ": expected an object");
    steer::Round r;
    if (auto it = o.find("k"); it != o.end()) r.drafted = u32(*it, w + ".k");
    if (auto it = o.find("acc"); it != o.end()) r.accepted = u32(*it, w + ".acc");
    if (r.accepted > r.drafted) throw Error(w + ": acc " + std::to_string(r.accepted) + " > k " + std::to_string(r.drafted));
    for (auto [name, flag] : {std::pair{"rec", &r.recovery}, {"bonus", &r.bonus}}) {
      auto it = o.find(name);
      if (it == o.end()) continue;
      if (!it->is_boolean()) throw Error(w + "." + name + ": expected true or false");
      *flag = it->get<bool>();
    }
    r.edge = spans_from(o, "edge", w);
    r.edge_ahead = spans_from(o, "ahead", w);
    r.llm = spans_from(o, "llm", w);
    r.slm = spans_from(o, "slm", w);
    s.rounds.push_back(std::move(r));
  }
  s.fallback = spans_from(j, "fallback", where);
  if (auto it = j.find("byte_level"); it != j.end()) {
    if (!it->is_boolean()) throw Error(where + ".byte_level: expected true or false");
    s.byte_level = it->get<bool>();
  }
  return s;
}

json breakdown_json(const steer::Counters& c) {
  return {{"edge_forward_s", c.t_edge_forward_s}, {"edge_sample_s", c.t_edge_sample_s},
          {"cloud_llm_s", c.t_cloud_llm_s},       {"cloud_slm_s", c.t_cloud_slm_s},
          {"cloud_steer_s", c.t_cloud_steer_s},   {"codec_s", c.t_codec_s},
          {"transport_s", c.t_transport_s},       {"other_s", c.t_other_s}};
}

}  // namespace specsteer::eval
