// The command-line layer shared by every executable: one tool table, CLI11 parsing, error
// mapping to exit codes (DESIGN §7), stdout flush checks.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace sattn {

struct Tool {
  const char* name;     // "run", later "select", "emit", ...
  const char* summary;  // one line for `sattn --help`
  // Adds the tool's options to `app` and returns the action run after parsing. The action
  // returns the exit code; it may throw sattn::Error.
  std::function<std::function<int()>(CLI::App& app)> configure;
};

// Every tool, in the order `sattn --help` lists them.
const std::vector<Tool>& tool_table();
const Tool* find_tool(const std::string& name);
// The man page that documents a tool: sattn-NAME, or sattn for profile, doctor and completions.
std::string man_page_of(const Tool&);

// Runs one tool as a process would: parses argv (argv[0] is the program name used in
// messages), runs the action, maps exceptions and CLI11's own codes to sattn's exit codes,
// flushes and checks stdout. `prog` prefixes diagnostics ("sattn run").
int run_tool(const Tool&, const std::string& prog, int argc, const char* const* argv);
// The umbrella: `sattn TOOL ...`, `sattn help [TOOL]`, `sattn --version`.
int umbrella_main(int argc, const char* const* argv);

// The tools' option definitions (each returns the action to run after parsing).
std::function<int()> configure_run(CLI::App& app);
std::function<int()> configure_emit(CLI::App& app);
std::function<int()> configure_select(CLI::App& app);
std::function<int()> configure_run_rvv(CLI::App& app);
std::function<int()> configure_sim(CLI::App& app);
std::function<int()> configure_calibrate(CLI::App& app);
std::function<int()> configure_imc(CLI::App& app);
std::function<int()> configure_profile(CLI::App& app);
std::function<int()> configure_bench(CLI::App& app);
std::function<int()> configure_doctor(CLI::App& app);
std::function<int()> configure_eval(CLI::App& app);
std::function<int()> configure_model(CLI::App& app);
// `PROG --version`: "PROG 0.1.0 (git 0123456789ab)", the revision only when built from a checkout
// ("+dirty" when tracked files had changes); git_revision_built() is that revision or "".
std::string version_line(const std::string& prog);
std::string git_revision_built();
// `sattn version`: this build and the versions of the external tools found.
std::string version_report();

// `sattn completions SHELL`: a completion script generated from every tool's options.
std::string completion_script(const std::string& shell);
// The tools that are executables of their own too (sattn-select, ...), which the scripts complete.
const std::vector<std::string>& standalone_tools();
std::function<int()> configure_completions(CLI::App& app);

// --max-memory SIZE (every tool that builds layouts or data has it) and the limit it gives, merged
// with SATTN_MAX_MEMORY and the default (core/resources.hpp memory_limit).
void add_max_memory_option(CLI::App& app);
struct MemoryLimit;
MemoryLimit tool_memory_limit();

// Diagnostics: "PROG: error: LOC: message" on stderr (stdout flushed first).
void print_diagnostic(const std::string& prog, const char* kind, const std::string& message);

}  // namespace sattn
