// The one place where error kinds become process exit codes (DESIGN §7), and the one ranking of
// their severities for runs that gather several (sattn run --backend all, sattn bench).
#pragma once
#include "sattn/error.hpp"

namespace sattn {

inline constexpr int kExitInterrupted = 130;  // Ctrl-C / SIGTERM: nothing written

// 0 ok, 1 runtime or I/O, 2 usage, 3 invalid input, 4 external tool, 5 check failed.
int exit_code(ErrorKind);
// Of two exit codes, the more telling one: a usage error outranks an external tool's failure,
// which outranks invalid input, then a runtime failure, then a failed check (the run itself
// worked), then success.
int more_severe(int a, int b);

}  // namespace sattn
