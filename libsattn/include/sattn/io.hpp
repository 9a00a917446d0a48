// File helpers: whole-file reads ("-" = stdin) and atomic writes ("-" = stdout).
#pragma once
#include <string>

namespace sattn {

// Throws Error(runtime) naming the file on failure.
std::string read_text(const std::string& path);
// Writes to a temporary file beside `path`, then renames it into place, so a failed run never
// leaves a partial file. "-" writes to stdout (and checks the write).
void write_atomic(const std::string& path, const std::string& contents);
// Creates a directory (and parents); throws Error(runtime) if it cannot.
void make_dirs(const std::string& path);

// True if stderr is a terminal (progress output goes there only then).
bool stderr_is_tty();

}  // namespace sattn
