#pragma once
// Option spellings shared by every command (run, generate, eval, demo, cloud
// serve/load, edge serve), after llama.cpp: -p/--prompt with `-p -` for
// stdin, -f/--file, -n/--n-predict, -s/--seed, -t/--threads, -c/--ctx-size,
// --steer-k for the steering vector's size. Old spellings stay as aliases
// that warn once.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

#include <CLI/CLI.hpp>

#include "common/error.h"

namespace specsteer::cli {

// The prompt from -p TEXT, -p - (standard input) or -f FILE; exactly one.
inline std::string resolve_prompt(const std::string& prompt, const std::string& file, bool prompt_given,
                                  const char* prompt_flag = "-p") {
  if (prompt_given && !file.empty()) throw Error(std::string("give ") + prompt_flag + " or -f/--file, not both");
  if (!file.empty()) {
    std::ifstream f(file, std::ios::binary);
    if (!f) throw Error("-f/--file: cannot open '" + file + "'");
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  if (prompt_given && prompt == "-") return std::string(std::istreambuf_iterator<char>(std::cin), {});
  if (!prompt_given) throw Error(std::string("give the prompt: ") + prompt_flag + " TEXT, " + prompt_flag +
                                 " - (standard input) or -f FILE");
  return prompt;
}

// A deprecated spelling that sets the same value and says what replaces it.
template <typename T>
CLI::Option* add_deprecated(CLI::App* app, const std::string& name, T& target, const std::string& replacement) {
  return app->add_option_function<T>(
      name,
      [&target, name, replacement](const T& v) {
        std::fprintf(stderr, "warning: %s is deprecated, use %s\n", name.c_str(), replacement.c_str());
        target = v;
      },
      "deprecated: use " + replacement);
}

// --port-file of the servers: written whole, then renamed, so a reader
// (a test, a supervisor) never sees half a number.
inline void write_port_file(const std::string& path, int port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    f << port << "\n";
    if (!f) throw Error("--port-file: cannot write '" + tmp + "'");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw Error("--port-file: cannot rename to '" + path + "'");
}

}  // namespace specsteer::cli
