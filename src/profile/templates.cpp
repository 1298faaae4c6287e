// Task names, the embedded template table and prompt construction (paper
// tables 13/14). All template text comes from data/templates.json.
#include <algorithm>
#include <array>
#include <cctype>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "profile/profile.h"
#include "profile/templates_json.h"

namespace specsteer::profile {
namespace {

constexpr std::array<std::string_view, 6> kNames = {"abstract", "review", "writing",
                                                    "lamp4",    "lamp5",  "lamp7"};

// The {field} names a template refers to, in order of appearance.
std::vector<std::string> placeholders(const std::string& tpl) {
  std::vector<std::string> out;
  for (size_t i = 0; i < tpl.size(); ++i) {
    if (tpl[i] != '{') continue;
    size_t end = tpl.find('}', i + 1);
    if (end == std::string::npos) break;
    out.push_back(tpl.substr(i + 1, end - i - 1));
    i = end;
  }
  return out;
}

std::string get_string(const nlohmann::json& obj, std::string_view task, const char* key, bool optional = false) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    if (optional) return {};
    throw Error("data/templates.json: task \"" + std::string(task) + "\": missing key \"" + key + "\"");
  }
  if (!it->is_string())
    throw Error("data/templates.json: task \"" + std::string(task) + "\": key \"" + key + "\" must be a string");
  return it->get<std::string>();
}

std::vector<std::string> get_list(const nlohmann::json& obj, std::string_view task, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_array())
    throw Error("data/templates.json: task \"" + std::string(task) + "\": key \"" + key + "\" must be a list");
  std::vector<std::string> out;
  for (const auto& v : *it) {
    if (!v.is_string())
      throw Error("data/templates.json: task \"" + std::string(task) + "\": key \"" + key + "\" must hold strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

std::array<TaskTemplate, 6> load_table() {
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(detail::kTemplatesJson);
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("data/templates.json (embedded): ") + e.what());
  }
  std::array<TaskTemplate, 6> table;
  for (size_t i = 0; i < kNames.size(); ++i) {
    std::string_view name = kNames[i];
    auto it = root.find(std::string(name));
    if (it == root.end() || !it->is_object())
      throw Error("data/templates.json: missing task \"" + std::string(name) + "\"");
    TaskTemplate& t = table[i];
    t.user_key = get_string(*it, name, "user_key");
    t.entry_fields = get_list(*it, name, "entry_fields");
    t.search_fields = get_list(*it, name, "search_fields");
    t.input_template = get_string(*it, name, "input_template");
    t.entry_template = get_string(*it, name, "entry_template");
    t.header = get_string(*it, name, "header");
    t.entry_separator = get_string(*it, name, "entry_separator");
    t.footer = get_string(*it, name, "footer");
    t.empty_profile = get_string(*it, name, "empty_profile", /*optional=*/true);
    // An entry must carry every field the prompt or the index uses.
    for (const auto& f : placeholders(t.entry_template))
      if (std::find(t.required.begin(), t.required.end(), f) == t.required.end()) t.required.push_back(f);
    for (const auto& f : t.search_fields)
      if (std::find(t.required.begin(), t.required.end(), f) == t.required.end()) t.required.push_back(f);
    for (const auto& f : t.required)
      if (std::find(t.entry_fields.begin(), t.entry_fields.end(), f) == t.entry_fields.end())
        throw Error("data/templates.json: task \"" + std::string(name) + "\": field \"" + f +
                    "\" is used but not listed in entry_fields");
  }
  return table;
}

// Single pass: substituted values are never rescanned, so a value containing
// "{title}" stays literal.
std::string fill(const std::string& tpl, const std::map<std::string, std::string>& fields, Task task,
                 const char* what) {
  std::string out;
  out.reserve(tpl.size() + 256);
  for (size_t i = 0; i < tpl.size(); ++i) {
    size_t end;
    if (tpl[i] == '{' && (end = tpl.find('}', i + 1)) != std::string::npos) {
      std::string key = tpl.substr(i + 1, end - i - 1);
      auto it = fields.find(key);
      if (it == fields.end())
        throw Error(std::string(what) + " for task " + std::string(task_name(task)) + ": missing field \"" + key +
                    "\"");
      out += it->second;
      i = end;
    } else {
      out += tpl[i];
    }
  }
  return out;
}

}  // namespace

Task parse_task(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  for (size_t i = 0; i < kNames.size(); ++i)
    if (lower == kNames[i]) return static_cast<Task>(i);
  throw Error("unknown task \"" + std::string(name) + "\" (expected abstract, review, writing, lamp4, lamp5 or lamp7)");
}

std::string_view task_name(Task task) { return kNames.at(static_cast<size_t>(task)); }

std::string_view templates_json() { return detail::kTemplatesJson; }

const TaskTemplate& task_template(Task task) {
  static const std::array<TaskTemplate, 6> table = load_table();
  return table.at(static_cast<size_t>(task));
}

std::string input_from_fields(Task task, const std::map<std::string, std::string>& fields) {
  return fill(task_template(task).input_template, fields, task, "input_template");
}

Prompts build_prompts(Task task, std::string_view x, const std::vector<Entry>& retrieved) {
  const TaskTemplate& t = task_template(task);
  Prompts p;
  p.x = std::string(x);
  p.used = retrieved;
  if (retrieved.empty()) {
    p.personalized = t.empty_profile + p.x;
    return p;
  }
  p.personalized = t.header;
  for (size_t i = 0; i < retrieved.size(); ++i) {
    if (i) p.personalized += t.entry_separator;
    p.personalized += fill(t.entry_template, retrieved[i].fields, task, "entry_template");
  }
  p.personalized += t.footer;
  p.personalized += p.x;
  return p;
}

Prompts build_prompts(const Store& store, std::string_view user, Task task, std::string_view x, int k) {
  return build_prompts(task, x, store.search(user, task, x, k));
}

}  // namespace specsteer::profile
