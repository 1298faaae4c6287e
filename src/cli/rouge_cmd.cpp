// specsteer rouge: ROUGE-1/ROUGE-L exactly as rouge_score computes them, over
// a JSONL file of pairs or one pair given on the command line.
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "common/error.h"
#include "eval/rouge_io.h"

namespace {

struct RougeOpts {
  std::string pairs, reference, prediction;
  bool stemmer = false;
};

specsteer::cli::Registrar reg("rouge", [](CLI::App& root) {
  auto o = std::make_shared<RougeOpts>();
  auto* sub = root.add_subcommand(
      "rouge", "ROUGE-1 and ROUGE-L (precision, recall, F-measure in [0,1]) as Google's rouge_score");
  auto* pairs = sub->add_option("--pairs", o->pairs, "JSONL file, one {\"reference\", \"prediction\"} object a line");
  auto* ref = sub->add_option("--reference", o->reference, "Reference text (with --prediction)");
  auto* pred = sub->add_option("--prediction", o->prediction, "Predicted text (with --reference)");
  sub->add_flag("--stemmer", o->stemmer, "Porter-stem tokens longer than 3 characters (rouge_score use_stemmer)");
  pairs->excludes(ref)->excludes(pred);
  ref->needs(pred);
  pred->needs(ref);
  sub->callback([o, pairs, ref] {
    using specsteer::Error;
    namespace ev = specsteer::eval;
    auto dump = [](const nlohmann::json& j) {
      std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      std::printf("%s\n", s.c_str());
    };
    if (*pairs) {
      for (const auto& p : ev::read_rouge_pairs(o->pairs)) dump(ev::rouge_pair_json(p.reference, p.prediction, o->stemmer));
    } else if (*ref) {
      dump(ev::rouge_pair_json(o->reference, o->prediction, o->stemmer));
    } else {
      throw Error("rouge: give --pairs FILE.jsonl, or --reference TEXT and --prediction TEXT");
    }
  });
});

}  // namespace
