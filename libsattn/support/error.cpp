#include "sattn/error.hpp"

namespace sattn {

std::string SourceLoc::str() const {
  std::string s = file;
  if (line > 0) {
    s += ":" + std::to_string(line);
    if (col > 0) s += ":" + std::to_string(col);
  }
  return s;
}

Error::Error(ExitCode code, std::string message, SourceLoc loc)
    : std::runtime_error(loc.str().empty() ? message : loc.str() + ": " + message),
      code_(code),
      message_(std::move(message)),
      loc_(std::move(loc)) {}

void throw_input_error(const SourceLoc& loc, const std::string& message) {
  throw Error(ExitCode::invalid_input, message, loc);
}

void throw_runtime_error(const std::string& message) { throw Error(ExitCode::runtime, message); }

const char* version() { return SATTN_VERSION; }

}  // namespace sattn
