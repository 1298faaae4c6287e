#pragma once
// Subcommands register themselves here (one file per command family under
// src/cli/), so main.cpp never has to know the list. CLI code parses flags
// and prints; the logic lives in the library modules.
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace specsteer::cli {

using Setup = std::function<void(CLI::App& root)>;

struct Command {
  std::string name;
  Setup setup;
};

std::vector<Command>& registry();

// Thrown by a command after it printed its result, to end the process with
// this status (e.g. kExitFellBack) instead of 0; main() returns it.
struct ExitStatus {
  int code;
};
// `generate`: the text is complete but the edge finished it alone because the
// cloud was lost mid-generation (the JSON says "fallback": true).
inline constexpr int kExitFellBack = 3;

struct Registrar {
  Registrar(std::string name, Setup setup) { registry().push_back({std::move(name), std::move(setup)}); }
};

}  // namespace specsteer::cli
