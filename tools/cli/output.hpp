// What every tool's output shares: the flags -o/--output, --format and -q/--quiet, and the
// progress line on stderr (a terminal only, never with -q).
#pragma once
#include <string>

namespace CLI {
class App;
}

namespace sattn {

struct OutputFlags {
  std::string output = "-";
  std::string format = "json";  // json or text; a tool whose default is text sets it before add_to
  bool quiet = false;

  // Adds -o/--output FILE (written atomically), --format json|text and -q/--quiet with the tool's
  // help texts; an empty text leaves that flag out.
  void add_to(CLI::App&, const std::string& output_help, const std::string& format_help,
              const std::string& quiet_help);
  // --format must be json or text: Error(usage) otherwise.
  void check() const;
  bool json() const { return format == "json"; }
  // Whether a progress line may be shown: stderr is a terminal and there is no -q.
  bool progress() const;
  // Writes `json_text` or `table` (by --format) to -o, atomically.
  void write(const std::string& json_text, const std::string& table) const;
};

// One line of progress on stderr, rewritten in place ("\r...\x1b[K") and erased when done.
class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled) {}
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;
  ~ProgressLine() { clear(); }
  bool enabled() const { return enabled_; }
  void show(const std::string& text);
  void clear();

 private:
  bool enabled_;
  bool shown_ = false;
};

}  // namespace sattn
