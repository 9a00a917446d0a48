// CLI11 front end shared by every tool: parse, run, map errors to exit codes (DESIGN §7).
#include "cli/cli.hpp"
#include "cli/exit_codes.hpp"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <optional>

#include <unistd.h>
#include <iostream>

#include <CLI/CLI.hpp>

#include "core/resources.hpp"
#include "layout/blas_threads.hpp"
#include "sattn/error.hpp"
#include "support/notes.hpp"
#include "support/process.hpp"
#include "support/suggest.hpp"

namespace sattn {

void print_diagnostic(const std::string& prog, const char* kind, const std::string& message) {
  std::fflush(stdout);
  std::cout.flush();
  std::cerr << prog << ": " << kind << ": " << message << "\n";
}

namespace {

// The tool's cancellation: one token for the whole run, installed around the action (every
// library call the tool makes checks it) and requested by the signal handler.
CancelToken g_cancel;

void on_interrupt(int) {
  static volatile sig_atomic_t count = 0;
  count = count + 1;  // not ++ on a volatile (deprecated in C++20, -Wvolatile)
  if (!g_cancel.request()) return;  // the first: every long loop stops at its next check
  // A second one stops at once, unless a staged or temporary directory is being removed (the
  // unwind takes well under a second): then only a third does, leaving it to the next run.
  if (!cleanup_pending() || count >= 3) _exit(kExitInterrupted);
  static const char note[] = "\nremoving temporary files; Ctrl-C again to stop at once\n";
  (void)!write(STDERR_FILENO, note, sizeof note - 1);
}

// SIGINT/SIGTERM request the tool's cancellation token; the tool unwinds and exits 130. SIGXFSZ is
// ignored, so a file size limit (ulimit -f) is an I/O error (exit 1, no output file) instead of a
// core dump.
void install_interrupt_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocking poll() returns EINTR and sees the flag
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGXFSZ, SIG_IGN);
}

std::string g_prog;  // the running tool's name, for the library's warnings

void print_library_warning(const std::string& message) { print_diagnostic(g_prog, "warning", message); }
void print_library_note(const std::string& message) { print_diagnostic(g_prog, "note", message); }

std::optional<std::string> g_max_memory;  // --max-memory, as given

// "; did you mean '--window-size'?" for the first argument that looks like a flag the tool does
// not have (CLI11 reports it as not expected), or "".
std::string unknown_flag_hint(const CLI::App& app, int argc, const char* const* argv) {
  std::vector<std::string> names;  // the long options, without their "--"
  for (const CLI::Option* opt : app.get_options())
    for (const std::string& l : opt->get_lnames()) names.push_back(l);
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") break;
    if (arg.size() < 3 || arg.rfind("--", 0) != 0) continue;
    const std::string name = arg.substr(2, arg.find('=') == std::string::npos ? std::string::npos : arg.find('=') - 2);
    if (std::find(names.begin(), names.end(), name) != names.end()) continue;
    const std::string c = closest_name(name, names);
    if (!c.empty()) return "; did you mean '--" + c + "'?";
  }
  return "";
}

// stdout must have reached its destination: a full disk or closed pipe is an I/O error.
int check_stdout(const std::string& prog, int code) {
  std::cout.flush();
  if (!std::cout || std::fflush(stdout) != 0 || std::ferror(stdout)) {
    print_diagnostic(prog, "error", "error writing to standard output");
    return code == 0 ? exit_code(ErrorKind::runtime) : code;
  }
  return code;
}

}  // namespace

std::string man_page_of(const Tool& tool) {
  const std::string name = tool.name;
  // The umbrella's own commands are described in sattn(1); every other tool has its page.
  return name == "profile" || name == "doctor" || name == "completions" ? "sattn" : "sattn-" + name;
}

int run_tool(const Tool& tool, const std::string& prog, int argc, const char* const* argv) {
  // OpenBLAS's worker threads spin for ~0.1 s after the library loads, on the cores the kernels'
  // threads need; no other thread runs yet, so they can be stopped here (layout/blas_threads.hpp).
  stop_idle_blas_threads();
  CLI::App app(tool.summary, prog);
  app.set_help_flag("-h,--help", "Show this help and exit");
  app.set_version_flag("--version", version_line(prog), "Print the version (and the git revision it was built from) and exit");
  app.footer("Exit status: 0 ok, 1 runtime/I-O failure, 2 usage, 3 invalid input, 4 external tool failed,\n"
             "5 check failed (output outside the reference tolerance), 130 interrupted. See man " + man_page_of(tool) + ".");
  std::function<int()> action;
  try {
    action = tool.configure(app);
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return check_stdout(prog, 0);
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return check_stdout(prog, 0);
  } catch (const CLI::CallForVersion& e) {  // --version
    std::cout << e.what() << "\n";
    return check_stdout(prog, 0);
  } catch (const CLI::ParseError& e) {
    // CLI11's own exit codes start at 100; every parse failure is a usage error here.
    print_diagnostic(prog, "error", e.what() + unknown_flag_hint(app, argc, argv));
    std::cerr << "Try '" << prog << " --help' for more information.\n";
    return exit_code(ErrorKind::usage);
  } catch (const Error& e) {
    print_diagnostic(prog, "error", e.what());
    return exit_code(e.kind());
  }
  int code = 0;
  install_interrupt_handlers();
  g_prog = prog;
  set_warning_handler(print_library_warning);
  set_note_handler(print_library_note);
  try {
    CancelScope cancel_scope(&g_cancel);
    code = action();
  } catch (const Interrupted&) {
    print_diagnostic(prog, "error", "interrupted; no output written");
    code = kExitInterrupted;
  } catch (const Error& e) {
    print_diagnostic(prog, "error", e.what());
    code = exit_code(e.kind());
  } catch (const std::bad_alloc&) {
    print_diagnostic(prog, "error", "out of memory");
    code = exit_code(ErrorKind::runtime);
  } catch (const std::exception& e) {
    print_diagnostic(prog, "error", e.what());
    code = exit_code(ErrorKind::runtime);
  }
  return check_stdout(prog, code);
}

void add_max_memory_option(CLI::App& app) {
  app.add_option_function<std::string>("--max-memory",
                                       [](const std::string& v) {
                                         parse_memory_size(v, "--max-memory");  // usage error now, not at the first op
                                         g_max_memory = v;
                                       },
                                       "Fail fast (exit 1, with the estimate) when an op's estimated peak memory "
                                       "exceeds SIZE (bytes, K/M/G/T, or N% of physical memory; 0 = no limit). "
                                       "Default: SATTN_MAX_MEMORY, else 80%")
      ->type_name("SIZE");
}

MemoryLimit tool_memory_limit() { return memory_limit(g_max_memory); }


const Tool* find_tool(const std::string& name) {
  for (const Tool& t : tool_table())
    if (name == t.name) return &t;
  return nullptr;
}

namespace {

void print_umbrella_help() {
  std::cout << "sattn " SATTN_VERSION " - multi-spec sparse attention toolkit for RISC-V\n\n"
               "Usage: sattn TOOL [OPTIONS] [ARGS]\n"
               "       sattn help TOOL\n"
               "       sattn version | --version\n\n"
               "Tools:\n";
  for (const Tool& t : tool_table()) {
    std::string name = t.name;
    name.resize(std::max<size_t>(name.size() + 2, 12), ' ');
    std::cout << "  " << name << t.summary << "\n";
  }
  std::cout << "\nRun 'sattn help TOOL' or 'sattn TOOL --help' for a tool's options; 'man sattn' for more.\n"
               "Exit status: 0 ok, 1 runtime/I-O failure, 2 usage, 3 invalid input, 4 external tool failed,\n"
               "5 check failed, 130 interrupted (Ctrl-C). Each code is described in man sattn, EXIT STATUS.\n";
}

}  // namespace

int umbrella_main(int argc, const char* const* argv) {
  if (argc < 2) {
    print_umbrella_help();
    return check_stdout("sattn", exit_code(ErrorKind::usage));
  }
  const std::string first = argv[1];
  if (first == "-h" || first == "--help") {
    print_umbrella_help();
    return check_stdout("sattn", 0);
  }
  if (first == "--version") {
    std::cout << version_line("sattn") << "\n";
    return check_stdout("sattn", 0);
  }
  if (first == "version") {
    std::cout << version_report();
    return check_stdout("sattn", 0);
  }
  if (first == "help") {
    if (argc < 3) {
      print_umbrella_help();
      return check_stdout("sattn", 0);
    }
    const Tool* t = find_tool(argv[2]);
    if (!t) {
      print_diagnostic("sattn", "error", std::string("unknown tool '") + argv[2] + "'; run 'sattn --help' for the list");
      return exit_code(ErrorKind::usage);
    }
    const char* args[] = {argv[2], "--help"};
    return run_tool(*t, std::string("sattn ") + t->name, 2, args);
  }
  const Tool* t = find_tool(first);
  if (!t) {
    print_diagnostic("sattn", "error", "unknown tool '" + first + "'; run 'sattn --help' for the list");
    return exit_code(ErrorKind::usage);
  }
  return run_tool(*t, std::string("sattn ") + t->name, argc - 1, argv + 1);
}

}  // namespace sattn
