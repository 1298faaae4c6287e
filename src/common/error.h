#pragma once
// One exception type for every user-facing failure: the message names what was
// wrong and where (file, offset, field), so the CLI can print it as is.
#include <stdexcept>
#include <string>

namespace specsteer {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace specsteer
