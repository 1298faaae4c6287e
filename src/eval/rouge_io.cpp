#include "eval/rouge_io.h"

#include <fstream>

#include "common/error.h"

namespace specsteer::eval {

using nlohmann::json;

std::vector<RougePair> read_rouge_pairs(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open pairs file");
  std::vector<RougePair> out;
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(n);
    json j;
    try {
      j = json::parse(line);
    } catch (const json::parse_error& e) {
      throw Error(where + ": not valid JSON (" + e.what() + ")");
    }
    if (!j.is_object()) throw Error(where + ": expected a JSON object with \"reference\" and \"prediction\"");
    RougePair p;
    p.line = n;
    for (auto [name, dst] : {std::pair{"reference", &p.reference}, std::pair{"prediction", &p.prediction}}) {
      auto it = j.find(name);
      if (it == j.end()) throw Error(where + ": missing field \"" + name + "\"");
      if (!it->is_string()) throw Error(where + ": field \"" + name + "\" must be a string");
      *dst = it->get<std::string>();
    }
    out.push_back(std::move(p));
  }
  if (in.bad()) throw Error(path + ": read error");
  return out;
}

json rouge_json(const RougeResult& r) {
  auto s = [](const RougeScore& x) {
    return json{{"precision", x.precision}, {"recall", x.recall}, {"fmeasure", x.fmeasure}};
  };
  return {{"rouge1", s(r.rouge1)}, {"rougeL", s(r.rougeL)}};
}

json rouge_pair_json(const std::string& reference, const std::string& prediction, bool use_stemmer) {
  json j = {{"reference", reference}, {"prediction", prediction}};
  json scores = rouge_json(rouge(reference, prediction, use_stemmer));
  j["rouge1"] = scores["rouge1"];
  j["rougeL"] = scores["rougeL"];
  return j;
}

}  // namespace specsteer::eval
