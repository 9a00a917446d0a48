// Errors and exit codes shared by every sattn tool (DESIGN §7).
#pragma once
#include <stdexcept>
#include <string>

namespace sattn {

// What went wrong: the kind of an Error. The library throws kinds; the tools alone turn them into
// process exit codes, through one table (tools/cli/exit_codes.cpp). The enumerators carry the exit
// codes of DESIGN §7 as their values so that the table is the identity and the codes documented in
// every man page can be read here too.
enum class ErrorKind : int {
  ok = 0,
  runtime = 1,        // runtime or I/O failure
  usage = 2,          // bad command line
  invalid_input = 3,  // parse, schema or range error in an input file or value
  external_tool = 4,  // qemu, verilator, compiler failed
  check_failed = 5,   // output outside the tolerance of the reference
};
using ExitCode = ErrorKind;  // the earlier name, still used across the code

// A position in an input file. line/col are 1-based; 0 means "unknown".
struct SourceLoc {
  std::string file;
  int line = 0;
  int col = 0;
  // "file:line:col", "file:line", "file" or "" depending on what is known.
  std::string str() const;
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string message, SourceLoc loc = {});
  ErrorKind kind() const { return code_; }
  ErrorKind code() const { return code_; }  // = kind()
  const SourceLoc& loc() const { return loc_; }
  const std::string& message() const { return message_; }

 private:
  ErrorKind code_;
  std::string message_;
  SourceLoc loc_;
};

// Shorthands for the two most common kinds.
[[noreturn]] void throw_input_error(const SourceLoc& loc, const std::string& message);
[[noreturn]] void throw_runtime_error(const std::string& message);

}  // namespace sattn
