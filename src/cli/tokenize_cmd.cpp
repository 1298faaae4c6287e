// `specsteer tokenize -m MODEL -p TEXT [--parse-special] [--no-bos]`: prints the
// token ids as a JSON array on one line.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/command.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace {

struct TokenizeOptions {
  std::string model;
  std::string prompt;
  bool parse_special = false;
  bool no_bos = false;
};

specsteer::cli::Registrar reg("tokenize", [](CLI::App& root) {
  auto opt = std::make_shared<TokenizeOptions>();
  auto* sub = root.add_subcommand("tokenize", "Print the token ids of a text as a JSON array");
  sub->add_option("-m,--model", opt->model, "GGUF model (a vocab-only GGUF works too)")->required();
  sub->add_option("-p,--prompt", opt->prompt, "Text to tokenize (raw, no chat format)")->required();
  sub->add_flag("--parse-special", opt->parse_special, "Turn special-token text such as <|im_start|> into those tokens");
  sub->add_flag("--no-bos", opt->no_bos, "Do not add BOS/EOS even when the model's metadata asks for them");
  sub->callback([opt] {
    auto file = specsteer::gguf::File::open(opt->model);
    auto tok = specsteer::Tokenizer::from_gguf(*file);
    const auto ids = tok->encode(opt->prompt, !opt->no_bos, opt->parse_special);
    std::string line = "[";
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) line += ", ";
      line += std::to_string(ids[i]);
    }
    line += "]\n";
    std::fputs(line.c_str(), stdout);
  });
});

}  // namespace
