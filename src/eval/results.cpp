#include "eval/results.h"
#include "eval/schedule_json.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "steer/settings.h"

namespace specsteer::eval {
namespace {

using nlohmann::json;

json score_json(const RougeScore& s) {
  return {{"precision", s.precision}, {"recall", s.recall}, {"fmeasure", s.fmeasure}};
}

template <typename T>
T field(const json& j, const char* name, const std::string& where) {
  auto it = j.find(name);
  if (it == j.end()) throw Error(where + ": missing field '" + name + "'");
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    throw Error(where + ": field '" + name + "' has the wrong type");
  }
}

RougeScore score_from(const json& j, const char* name, const std::string& where) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_object()) throw Error(where + ": missing object '" + name + "'");
  const std::string w = where + " " + name;
  return {field<double>(*it, "precision", w), field<double>(*it, "recall", w), field<double>(*it, "fmeasure", w)};
}

}  // namespace

json to_json(const ResultRow& r) {
  const GenCounters& c = r.c;
  json j = {
      {"record", r.record_id},
      {"user", r.user_id},
      {"method", r.method},
      {"setting", r.setting},
      {"lambda", r.lambda ? json(*r.lambda) : json(nullptr)},
      {"beta", r.beta},
      {"draft", r.draft_k},
      {"private", r.keeps_profile_on_device},
      {"prediction", r.prediction},
      {"reference", r.reference},
      {"tokens", r.tokens},
      {"stop_reason", r.stop_reason},
      {"rouge_stemmer", r.rouge_stemmer},
      {"rouge1", score_json(r.rouge.rouge1)},
      {"rougeL", score_json(r.rouge.rougeL)},
      {"counters",
       {{"n_generated", c.n_generated},
        {"n_drafted", c.n_drafted},
        {"n_accepted", c.n_accepted},
        {"acceptance_rate", c.n_drafted ? json(double(c.n_accepted) / double(c.n_drafted)) : json(nullptr)},
        {"n_rejections", c.n_rejections},
        {"round_trips", c.round_trips},
        {"bytes_up", c.bytes_up},
        {"bytes_down", c.bytes_down},
        {"seconds", c.seconds},
        {"gen_tok_per_s", c.seconds > 0 ? json(double(c.n_generated) / c.seconds) : json(nullptr)},
        {"t_prefill_s", c.t_prefill_s},
        {"t_total_s", c.t_total_s},
        {"t_draft_s", c.t_draft_s},
        {"t_verify_s", c.t_verify_s},
        {"t_recover_s", c.t_recover_s}}},
      {"work",
       {{"slm_positions", c.slm_positions},
        {"slm_attention", c.slm_attention},
        {"llm_positions", c.llm_positions},
        {"llm_attention", c.llm_attention}}},
      {"flops", {{"slm", c.slm_flops}, {"llm", c.llm_flops}, {"total", c.slm_flops + c.llm_flops}}},
  };
  if (r.steer_candidates) j["steer_candidates"] = *r.steer_candidates;
  if (r.plausibility) j["plausibility"] = *r.plausibility;
  if (r.exact)
    j["exact"] = {{"fact_recall", r.exact->fact_recall},
                  {"cons_items", r.exact->cons_items},
                  {"cons_strict", r.exact->cons_strict}};
  if (!r.breakdown.is_null()) j["breakdown"] = r.breakdown;
  if (r.schedule) j["trace"] = schedule_to_json(*r.schedule);
  return j;
}

ResultRow row_from_json(const json& j, const std::string& where) {
  if (!j.is_object()) throw Error(where + ": a row must be a JSON object");
  ResultRow r;
  r.record_id = field<std::string>(j, "record", where);
  r.user_id = field<std::string>(j, "user", where);
  r.method = field<std::string>(j, "method", where);
  r.setting = field<std::string>(j, "setting", where);
  if (auto it = j.find("lambda"); it != j.end() && !it->is_null()) r.lambda = field<double>(j, "lambda", where);
  r.beta = field<double>(j, "beta", where);
  r.draft_k = field<int>(j, "draft", where);
  if (j.contains("private")) {
    r.keeps_profile_on_device = field<bool>(j, "private", where);
  } else {
    try {
      r.keeps_profile_on_device = steer::keeps_profile_on_device(steer::parse_method(r.method));
    } catch (const Error&) {
      // a method this build does not know: leave it marked private as written
    }
  }
  if (auto it = j.find("steer_candidates"); it != j.end() && !it->is_null())
    r.steer_candidates = field<std::string>(j, "steer_candidates", where);
  if (auto it = j.find("plausibility"); it != j.end() && !it->is_null())
    r.plausibility = field<double>(j, "plausibility", where);
  if (auto it = j.find("exact"); it != j.end() && it->is_object()) {
    const std::string we = where + " exact";
    r.exact = ExactScores{field<double>(*it, "fact_recall", we), field<double>(*it, "cons_items", we),
                          field<bool>(*it, "cons_strict", we)};
  }
  r.prediction = field<std::string>(j, "prediction", where);
  r.reference = field<std::string>(j, "reference", where);
  r.tokens = field<std::vector<int32_t>>(j, "tokens", where);
  r.stop_reason = field<std::string>(j, "stop_reason", where);
  r.rouge_stemmer = field<bool>(j, "rouge_stemmer", where);
  r.rouge.rouge1 = score_from(j, "rouge1", where);
  r.rouge.rougeL = score_from(j, "rougeL", where);
  auto obj = [&](const char* name) -> const json& {
    auto it = j.find(name);
    if (it == j.end() || !it->is_object()) throw Error(where + ": missing object '" + name + "'");
    return *it;
  };
  const json& c = obj("counters");
  const std::string wc = where + " counters";
  r.c.n_generated = field<uint64_t>(c, "n_generated", wc);
  r.c.n_drafted = field<uint64_t>(c, "n_drafted", wc);
  r.c.n_accepted = field<uint64_t>(c, "n_accepted", wc);
  r.c.n_rejections = field<uint64_t>(c, "n_rejections", wc);
  r.c.round_trips = field<uint64_t>(c, "round_trips", wc);
  r.c.bytes_up = field<uint64_t>(c, "bytes_up", wc);
  r.c.bytes_down = field<uint64_t>(c, "bytes_down", wc);
  r.c.seconds = field<double>(c, "seconds", wc);
  r.c.t_prefill_s = field<double>(c, "t_prefill_s", wc);
  r.c.t_total_s = field<double>(c, "t_total_s", wc);
  r.c.t_draft_s = field<double>(c, "t_draft_s", wc);
  r.c.t_verify_s = field<double>(c, "t_verify_s", wc);
  r.c.t_recover_s = field<double>(c, "t_recover_s", wc);
  const json& w = obj("work");
  const std::string ww = where + " work";
  r.c.slm_positions = field<uint64_t>(w, "slm_positions", ww);
  r.c.slm_attention = field<uint64_t>(w, "slm_attention", ww);
  r.c.llm_positions = field<uint64_t>(w, "llm_positions", ww);
  r.c.llm_attention = field<uint64_t>(w, "llm_attention", ww);
  const json& f = obj("flops");
  r.c.slm_flops = field<uint64_t>(f, "slm", where + " flops");
  r.c.llm_flops = field<uint64_t>(f, "llm", where + " flops");
  if (auto it = j.find("breakdown"); it != j.end() && it->is_object()) r.breakdown = *it;
  if (auto it = j.find("trace"); it != j.end() && !it->is_null()) r.schedule = schedule_from_json(*it, where + " trace");
  return r;
}

ResultsLog::ResultsLog(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT, 0644);
  if (fd_ < 0) throw Error(path_ + ": cannot open results file: " + std::strerror(errno));
  std::string data;
  {
    std::ifstream in(path_, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    data = ss.str();
  }
  size_t pos = 0, line_no = 0, good_end = 0;
  while (pos < data.size()) {
    size_t nl = data.find('\n', pos);
    ++line_no;
    bool last = nl == std::string::npos || nl + 1 == data.size();
    std::string_view line(data.data() + pos, (nl == std::string::npos ? data.size() : nl) - pos);
    bool whole = nl != std::string::npos;
    const std::string where = path_ + ":" + std::to_string(line_no);
    try {
      if (!whole) throw Error(where + ": torn line");  // killed mid-write
      if (!line.empty()) {
        json j = json::parse(line);
        ResultRow r = row_from_json(j, where);
        if (keys_.insert(key_of(r)).second) rows_.push_back(std::move(r));
      }
      good_end = nl + 1;
    } catch (const std::exception& e) {
      if (!last) {
        ::close(fd_);
        throw Error(where + ": malformed results row (only the last line may be torn): " + e.what());
      }
      break;
    }
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  if (good_end < data.size()) {
    dropped_ = data.size() - good_end;
    if (::ftruncate(fd_, static_cast<off_t>(good_end)) != 0) {
      ::close(fd_);
      throw Error(path_ + ": cannot drop torn last line: " + std::strerror(errno));
    }
  }
  if (::lseek(fd_, 0, SEEK_END) < 0) {
    ::close(fd_);
    throw Error(path_ + ": seek failed: " + std::strerror(errno));
  }
}

ResultsLog::~ResultsLog() {
  if (fd_ >= 0) ::close(fd_);
}

void ResultsLog::append(const ResultRow& row) {
  // Invalid UTF-8 in generated text (a token boundary inside a character) is
  // written as U+FFFD rather than failing the whole run.
  std::string line = to_json(row).dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(fd_, line.data() + off, line.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(path_ + ": write failed: " + std::strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
  if (keys_.insert(key_of(row)).second) rows_.push_back(row);
}

}  // namespace specsteer::eval
