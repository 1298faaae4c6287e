// specsteer: one binary, many subcommands (see src/cli/*.cpp).
#include <algorithm>
#include <cstdio>
#include <exception>

#include "cli/command.h"
#include "common/error.h"

namespace specsteer::cli {
std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}
}  // namespace specsteer::cli

int main(int argc, char** argv) {
  using namespace specsteer;
  CLI::App app{"specsteer: private, personalized LLM generation split between device and cloud"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "specsteer 0.1.0");
  auto& commands = cli::registry();
  std::sort(commands.begin(), commands.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  for (auto& c : commands) c.setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const cli::ExitStatus& e) {
    return e.code;
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
