#pragma once
// What it takes to repeat a run: file hashes and the source revision.
#include <string>

namespace specsteer::eval {

// Lowercase hex SHA-256 of a file's bytes (OpenSSL EVP, streamed). Throws
// Error naming the file when it cannot be read.
std::string sha256_file(const std::string& path);
std::string sha256_hex(const void* data, size_t n);

// `git rev-parse HEAD` run in `dir`, "unknown" when git or a repository is absent.
std::string git_revision(const std::string& dir);
// True when `git status --porcelain` in `dir` reports tracked or untracked changes.
bool git_dirty(const std::string& dir);

// Current UTC time as ISO 8601 ("2025-01-31T12:00:00Z").
std::string utc_now_iso8601();

}  // namespace specsteer::eval
