// Running external programs (qemu-riscv64, the Verilator harness, compilers) and finding the
// helper files the build installs beside the tools.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sattn/cancel.hpp"

namespace sattn {

struct ProcessResult {
  int exit_code = -1;      // the program's exit status; -1 when it was killed by a signal
  int signal = 0;          // the signal that killed it, else 0
  bool timed_out = false;  // killed because it ran past the timeout
  std::string out;         // everything it wrote to stdout
  std::string err;         // everything it wrote to stderr
  bool ok() const { return exit_code == 0 && signal == 0 && !timed_out; }
  // One line for messages: "exit status 3", "killed by signal 11 (Segmentation fault)", "timed out after 60 s".
  std::string describe(double timeout_s) const;
  // The last `lines` lines of stderr, for error messages.
  std::string err_tail(int lines = 10) const;
};

// Runs argv[0] (searched in PATH when it has no '/') with stdin from /dev/null, capturing stdout
// and stderr. A program still running after `timeout_s` seconds (0 = no limit) is killed with
// SIGKILL. `cwd` (if not empty) is its working directory. A program that cannot be started at
// all is reported as exit status 127 with the reason in `err`, like a shell does.
ProcessResult run_process(const std::vector<std::string>& argv, double timeout_s = 0, const std::string& cwd = "");

// The full path of an executable: `name` itself when it contains '/', else the first match in
// PATH; nullopt when none is executable.
std::optional<std::string> find_executable(const std::string& name);

// Where the build puts (and `cmake --install` installs) the helper programs the backends run:
// the riscv64 runners, the QEMU plugin, the Verilator harness. $SATTN_LIBEXEC_DIR when set, else
// found from the library's own location (dladdr on a libsattn symbol), so that it is right in
// any host process (a tool, python3, a user's program): LIBDIR/../libexec/sattn as installed
// (PREFIX/lib -> PREFIX/libexec/sattn), build/lib -> build/libexec/sattn in the build tree. Only
// when libsattn is linked statically into an executable: <executable's dir>/../libexec/sattn.
std::string libexec_dir();

// Cancellation is per call (sattn/cancel.hpp): the caller's CancelToken, installed for the
// call by a CancelScope. The tools own one token for the whole run, which their SIGINT/SIGTERM
// handler requests (tools/cli); long-running code checks the calling thread's scopes, so the
// tool stops at the next check, unwinds (temporary directories removed, no partial output
// committed) and exits 130. run_process() checks them while it waits (a child in the same
// process group got the Ctrl-C too; it is killed if still running).
// Warnings the library cannot hand back to its caller (an op reader given no sink): passed to
// the caller's handler (the tools print "TOOL: warning: ..."), else printed as "warning: ...".
void set_warning_handler(void (*handler)(const std::string& message));
void report_warning(const std::string& message);
// The calling thread's cancellation (cancel_requested() / throw_if_cancelled() of sattn/cancel.hpp).
inline bool interrupted() { return cancel_requested(); }
inline void throw_if_interrupted() { throw_if_cancelled(); }  // throws Interrupted when the call was cancelled
// For long loops (kernels, layout builders, emit, calibrate, imc): throw_if_interrupted() every
// 1024th iteration, so a Ctrl-C stops one large op within a fraction of a second.
inline void poll_interrupt(int64_t iteration) {
  if ((iteration & 1023) == 0) throw_if_interrupted();
}
// Objects that must clean up when unwinding (staged directories, temporary directories) count
// themselves here while they live: the tools' second Ctrl-C exits at once only when none does
// (a third always does), so an interrupted run leaves no hidden staging directory behind.
void cleanup_begin() noexcept;
void cleanup_end() noexcept;
bool cleanup_pending() noexcept;  // async-signal-safe

// A fresh private directory under $TMPDIR (or /tmp), removed with everything in it by the
// destructor unless keep() was called. For the scratch files of one backend run.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "sattn");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  void keep() { keep_ = true; }

 private:
  std::string path_;
  bool keep_ = false;
};

}  // namespace sattn
