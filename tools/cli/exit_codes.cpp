#include "cli/exit_codes.hpp"

namespace sattn {

int exit_code(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::ok: return 0;
    case ErrorKind::runtime: return 1;
    case ErrorKind::usage: return 2;
    case ErrorKind::invalid_input: return 3;
    case ErrorKind::external_tool: return 4;
    case ErrorKind::check_failed: return 5;
  }
  return 1;
}

int more_severe(int a, int b) {
  auto rank = [](int c) {
    switch (c) {
      case 0: return 0;
      case 5: return 1;  // a check failed: the run itself worked
      case 3: return 3;
      case 4: return 4;
      case 2: return 5;
      default: return 2;
    }
  };
  return rank(b) > rank(a) ? b : a;
}

}  // namespace sattn
