#include "profile/record_reader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include "common/error.h"

namespace specsteer::profile::detail {
namespace {

using json = nlohmann::json;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Builds a DOM like nlohmann's own parser, except that numbers are stored as
// their source text: profile fields are text, and "5.0" must not become "5".
class TextNumberDom : public nlohmann::json_sax<json> {
 public:
  static constexpr size_t kMaxDepth = 64;

  json root;
  std::string error;
  size_t error_pos = 0;

  bool null() override { return add(nullptr) != nullptr; }
  bool boolean(bool v) override { return add(v) != nullptr; }
  bool number_integer(number_integer_t v) override { return add(std::to_string(v)) != nullptr; }
  bool number_unsigned(number_unsigned_t v) override { return add(std::to_string(v)) != nullptr; }
  bool number_float(number_float_t, const string_t& text) override { return add(text) != nullptr; }
  bool string(string_t& v) override { return add(std::move(v)) != nullptr; }
  bool binary(binary_t&) override { return add(nullptr) != nullptr; }  // not produced by JSON text
  bool start_object(std::size_t) override { return open(json::object()); }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool end_object() override {
    stack_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override { return open(json::array()); }
  bool end_array() override {
    stack_.pop_back();
    return true;
  }
  bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception& ex) override {
    error_pos = pos;
    error = ex.what();
    return false;
  }

 private:
  // Pointers on the stack stay valid: only the innermost open container grows.
  json* add(json v) {
    if (stack_.empty()) {
      root = std::move(v);
      return &root;
    }
    json& top = *stack_.back();
    if (top.is_object()) {
      json& slot = top[key_];
      slot = std::move(v);
      return &slot;
    }
    top.push_back(std::move(v));
    return &top.back();
  }
  bool open(json v) {
    if (stack_.size() >= kMaxDepth) {
      error = "nesting deeper than " + std::to_string(kMaxDepth) + " levels";
      return false;
    }
    json* p = add(std::move(v));
    stack_.push_back(p);
    return true;
  }

  std::vector<json*> stack_;
  std::string key_;
};

// "[json.exception.parse_error.101] parse error at line 1, column 5: syntax
// error ..." -> "syntax error ..." (we print our own absolute line).
// The "; last read: '...'" tail quotes record text; it is dropped so error
// output never echoes private profile content.
std::string strip_nlohmann_prefix(std::string what) {
  if (size_t lr = what.find("; last read:"); lr != std::string::npos) what.erase(lr);
  size_t col = what.find("column ");
  if (col != std::string::npos) {
    size_t colon = what.find(": ", col);
    if (colon != std::string::npos) return what.substr(colon + 2);
  }
  size_t bracket = what.find("] ");
  if (what.rfind("[json.exception", 0) == 0 && bracket != std::string::npos) return what.substr(bracket + 2);
  return what;
}

std::string line_where(size_t line) { return "line " + std::to_string(line); }

void read_jsonl(std::ifstream& in, const std::function<void(const RawRecord&)>& on_record) {
  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (lineno == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // UTF-8 BOM
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (std::all_of(line.begin(), line.end(), is_space)) continue;
    RawRecord r;
    r.text = std::move(line);
    r.line = lineno;
    r.where = line_where(lineno);
    on_record(r);
    line.clear();
  }
}

// Splits a top-level JSON array into element texts without parsing them, so a
// file larger than memory streams through; tracks strings and nesting only.
void read_array(std::ifstream& in, const std::function<void(const RawRecord&)>& on_record) {
  enum class State { Before, ExpectValue, InElement, AfterElement, Done };
  State state = State::Before;
  size_t line = 1, index = 0, elem_line = 0;
  int depth = 0;
  bool in_string = false, escape = false, bracketed = false, reported_trailing = false;
  std::string elem;
  std::vector<char> buf(1 << 16);

  auto where = [&](size_t l) { return line_where(l) + " (array element " + std::to_string(index) + ")"; };
  auto emit = [&] {
    RawRecord r;
    r.element = index;
    r.text = std::move(elem);
    r.line = elem_line;
    r.where = where(elem_line);
    on_record(r);
    elem.clear();
  };
  auto fail = [&](size_t l, std::string msg, bool is_record) {
    RawRecord r;
    r.line = l;
    r.element = is_record ? index : 0;
    r.where = is_record ? where(l) : line_where(l);
    r.error = std::move(msg);
    r.is_record = is_record;
    on_record(r);
  };

  bool first = true;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    size_t n = static_cast<size_t>(in.gcount());
    size_t i = 0;
    if (first && n >= 3 && std::memcmp(buf.data(), "\xEF\xBB\xBF", 3) == 0) i = 3;
    first = false;
    for (; i < n; ++i) {
      char c = buf[i];
      // Re-dispatch after a state change that does not consume c.
      for (bool again = true; again;) {
        again = false;
        switch (state) {
          case State::Before:
            if (c == '[') state = State::ExpectValue;
            break;  // read_records guarantees the first non-space char is '['
          case State::ExpectValue:
            if (is_space(c)) break;
            if (c == ']') {
              if (index > 0) fail(line, "trailing ',' before ']'", false);
              state = State::Done;
              break;
            }
            if (c == ',') {
              fail(line, "empty array element", false);
              break;
            }
            ++index;
            elem_line = line;
            depth = 0;
            in_string = escape = false;
            bracketed = (c == '{' || c == '[');
            state = State::InElement;
            again = true;
            break;
          case State::InElement:
            if (in_string) {
              elem += c;
              if (escape)
                escape = false;
              else if (c == '\\')
                escape = true;
              else if (c == '"')
                in_string = false;
              break;
            }
            if (!bracketed && depth == 0 && (c == ',' || c == ']')) {  // scalar element ends
              emit();
              state = c == ',' ? State::ExpectValue : State::Done;
              break;
            }
            elem += c;
            if (c == '"') {
              in_string = true;
            } else if (c == '{' || c == '[') {
              ++depth;
            } else if (c == '}' || c == ']') {
              if (--depth == 0 && bracketed) {
                emit();
                state = State::AfterElement;
              }
            }
            break;
          case State::AfterElement:
            if (is_space(c)) break;
            if (c == ',') {
              state = State::ExpectValue;
            } else if (c == ']') {
              state = State::Done;
            } else {
              // Most likely a missing comma: report it and read on.
              fail(line, std::string("expected ',' or ']' between array elements, found '") + c + "'", false);
              state = State::ExpectValue;
              again = true;
            }
            break;
          case State::Done:
            if (!is_space(c) && !reported_trailing) {
              fail(line, "unexpected content after the closing ']'", false);
              reported_trailing = true;
            }
            break;
        }
      }
      if (c == '\n') ++line;
    }
  }
  if (in.bad()) throw Error("read error");
  switch (state) {
    case State::InElement:
      if (!bracketed && !in_string) {
        emit();  // a scalar last element; the missing ']' is reported below
        fail(line, "missing ']' at end of file", false);
      } else {
        elem.clear();
        fail(elem_line, "element is not terminated before end of file", true);
      }
      break;
    case State::ExpectValue:
    case State::AfterElement:
      fail(line, "missing ']' at end of file", false);
      break;
    default:
      break;
  }
}

}  // namespace

void read_records(const std::string& path, const std::function<void(const RawRecord&)>& on_record) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
  // Peek at the first non-space byte (after an optional BOM) to pick the format.
  char c = 0;
  size_t pos = 0;
  bool is_array = false;
  while (in.get(c)) {
    if (pos < 3 && static_cast<unsigned char>(c) == static_cast<unsigned char>("\xEF\xBB\xBF"[pos])) {
      ++pos;
      continue;
    }
    ++pos;
    if (is_space(c)) continue;
    is_array = (c == '[');
    break;
  }
  in.clear();
  in.seekg(0);
  if (!in) throw Error(path + ": cannot seek (record files must be regular files)");
  try {
    if (is_array)
      read_array(in, on_record);
    else
      read_jsonl(in, on_record);
  } catch (const std::ios_base::failure& e) {
    throw Error(path + ": read error: " + e.what());
  }
  if (in.bad()) throw Error(path + ": read error");
}

std::string where_at(const RawRecord& r, size_t line) {
  std::string w = line_where(line);
  if (r.element) w += " (array element " + std::to_string(r.element) + ")";
  return w;
}

bool parse_record(const std::string& text, size_t first_line, json& out, std::string& error, size_t& error_line) {
  TextNumberDom dom;
  bool ok = json::sax_parse(text, &dom, json::input_format_t::json, /*strict=*/true);
  if (ok && dom.error.empty()) {
    out = std::move(dom.root);
    return true;
  }
  size_t upto = std::min(dom.error_pos, text.size());
  error_line = first_line + static_cast<size_t>(std::count(text.begin(), text.begin() + upto, '\n'));
  error = "invalid JSON: " + (dom.error.empty() ? std::string("syntax error") : strip_nlohmann_prefix(dom.error));
  return false;
}

}  // namespace specsteer::profile::detail
