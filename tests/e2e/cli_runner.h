#pragma once
// Runs the real `specsteer` binary (SPECSTEER_CLI) through /bin/sh and
// captures its output, for end-to-end tests of the command-line contracts.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace specsteer::testing {

struct CliResult {
  int rc;
  std::string out;  // stdout and stderr together
};

inline std::string q(const std::string& s) {  // single-quote for /bin/sh
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

inline CliResult run_cli(const std::string& args, bool merge_stderr = true) {
  std::string cmd = std::string(SPECSTEER_CLI) + " " + args + (merge_stderr ? " 2>&1" : " 2>/dev/null");
  CliResult r{-1, ""};
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace specsteer::testing
