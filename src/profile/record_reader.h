#pragma once
// Streaming reader for record files (internal to the profile module): a JSON
// array or JSONL, one record's text in memory at a time, each with its line so
// errors can point at it.
#include <cstddef>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace specsteer::profile::detail {

struct RawRecord {
  std::string text;    // the record's JSON text (empty when error is set)
  std::string where;   // "line 12" or "line 12 (array element 3)"
  size_t line = 0;     // first line of the record, 1-based
  std::string error;   // set for a structural error at this place
  bool is_record = true;  // false: an error that is not about one record (e.g. missing ']')
  size_t element = 0;     // 1-based array element number; 0 for JSONL
};

// "line L" or "line L (array element N)" for a place inside `r`.
std::string where_at(const RawRecord& r, size_t line);

// Calls on_record for every record (or structural error) in file order. A file
// whose first non-space character is '[' is a JSON array, anything else JSONL
// (one record per non-blank line). Throws Error if the file cannot be read.
void read_records(const std::string& path, const std::function<void(const RawRecord&)>& on_record);

// Parses one record's text. JSON numbers become strings holding their source
// spelling ("5.0" stays "5.0"). On bad JSON returns false and sets error to a
// message and error_line to the absolute line (first_line + lines into text).
bool parse_record(const std::string& text, size_t first_line, nlohmann::json& out, std::string& error,
                  size_t& error_line);

}  // namespace specsteer::profile::detail
