#include "cli/output.hpp"

#include <iostream>

#include <CLI/CLI.hpp>

#include "sattn/error.hpp"
#include "support/io.hpp"

namespace sattn {

void OutputFlags::add_to(CLI::App& app, const std::string& output_help, const std::string& format_help,
                         const std::string& quiet_help) {
  if (!output_help.empty()) app.add_option("-o,--output", output, output_help)->capture_default_str();
  if (!format_help.empty()) app.add_option("--format", format, format_help)->capture_default_str();
  if (!quiet_help.empty()) app.add_flag("-q,--quiet", quiet, quiet_help);
}

void OutputFlags::check() const {
  if (format != "json" && format != "text") throw Error(ExitCode::usage, "--format must be json or text");
}

bool OutputFlags::progress() const { return !quiet && stderr_is_tty(); }

void OutputFlags::write(const std::string& json_text, const std::string& table) const {
  write_atomic(output, json() ? json_text : table);
}

void ProgressLine::show(const std::string& text) {
  if (!enabled_) return;
  std::cerr << "\r" << text << "\x1b[K" << std::flush;
  shown_ = true;
}

void ProgressLine::clear() {
  if (!shown_) return;
  std::cerr << "\r\x1b[K" << std::flush;
  shown_ = false;
}

}  // namespace sattn
