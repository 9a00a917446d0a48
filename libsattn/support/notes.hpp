// Notes: what the library did that the user may want to know (a float64 .npy rounded to float32),
// passed to the caller's handler (the tools print "TOOL: note: ..."), else printed as "note: ...".
// Beside the warning hook of support/process.hpp.
#pragma once
#include <string>

namespace sattn {

void set_note_handler(void (*handler)(const std::string& message));
void report_note(const std::string& message);
// Prints a note only the first time this process reports that exact text.
void report_note_once(const std::string& message);

}  // namespace sattn
