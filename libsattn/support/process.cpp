#include "support/process.hpp"
#include "support/notes.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <sstream>

#include "sattn/error.hpp"

#ifndef SATTN_LIBEXEC_FROM_LIBDIR
#define SATTN_LIBEXEC_FROM_LIBDIR "../libexec/sattn"
#endif

namespace sattn {

std::string ProcessResult::describe(double timeout_s) const {
  std::ostringstream s;
  if (timed_out)
    s << "timed out after " << timeout_s << " s";
  else if (signal)
    s << "killed by signal " << signal << " (" << strsignal(signal) << ")";
  else
    s << "exit status " << exit_code;
  return s.str();
}

std::string ProcessResult::err_tail(int lines) const {
  std::string text = err;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  size_t pos = text.size();
  for (int n = 0; n < lines && pos != std::string::npos && pos > 0; ++n) pos = text.rfind('\n', pos - 1);
  return pos == std::string::npos || pos == 0 ? text : text.substr(pos + 1);
}

std::optional<std::string> find_executable(const std::string& name) {
  if (name.empty()) return std::nullopt;
  if (name.find('/') != std::string::npos) {
    if (access(name.c_str(), X_OK) == 0) return name;
    return std::nullopt;
  }
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    struct stat st {};
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(candidate.c_str(), X_OK) == 0)
      return candidate;
  }
  return std::nullopt;
}

std::string libexec_dir() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("SATTN_LIBEXEC_DIR"); env && *env) return env;
  std::error_code ec;
  // The library's own file (libsattn.so.0, wherever the host process is: a tool, python3, a
  // user's program), found from one of its symbols. The helpers are installed at a fixed place
  // relative to it (LIBDIR -> LIBEXECDIR/sattn, SATTN_LIBEXEC_FROM_LIBDIR), and the build tree
  // mirrors it (build/lib -> build/libexec/sattn).
  Dl_info info{};
  if (dladdr(reinterpret_cast<const void*>(&libexec_dir), &info) && info.dli_fname && *info.dli_fname) {
    const fs::path self = fs::weakly_canonical(fs::absolute(info.dli_fname, ec), ec);
    if (!ec && self.filename().string().rfind("libsattn", 0) == 0) {
      const fs::path lib_dir = self.parent_path();
      for (const char* rel : {SATTN_LIBEXEC_FROM_LIBDIR, "../libexec/sattn"}) {
        const fs::path dir = (lib_dir / rel).lexically_normal();
        if (fs::is_directory(dir, ec)) return dir.string();
      }
      return (lib_dir / SATTN_LIBEXEC_FROM_LIBDIR).lexically_normal().string();
    }
  }
  // The library linked statically into an executable: beside the executable, as bin/ ->
  // libexec/sattn.
  const auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "libexec/sattn";
  return (exe.parent_path().parent_path() / "libexec" / "sattn").string();
}


namespace {
std::atomic<int> g_cleanups{0};
static_assert(std::atomic<int>::is_always_lock_free, "read from a signal handler");
}  // namespace

namespace {
void (*g_warning_handler)(const std::string&) = nullptr;
}  // namespace

void set_warning_handler(void (*handler)(const std::string&)) { g_warning_handler = handler; }

void report_warning(const std::string& message) {
  if (g_warning_handler)
    g_warning_handler(message);
  else
    std::fprintf(stderr, "warning: %s\n", message.c_str());
}

namespace {
void (*g_note_handler)(const std::string&) = nullptr;
}  // namespace

void set_note_handler(void (*handler)(const std::string&)) { g_note_handler = handler; }

void report_note(const std::string& message) {
  if (g_note_handler)
    g_note_handler(message);
  else
    std::fprintf(stderr, "note: %s\n", message.c_str());
}

void report_note_once(const std::string& message) {
  static std::mutex mutex;
  static std::set<std::string> seen;
  {
    std::lock_guard lock(mutex);
    if (!seen.insert(message).second) return;
  }
  report_note(message);
}

void cleanup_begin() noexcept { g_cleanups.fetch_add(1); }
void cleanup_end() noexcept { g_cleanups.fetch_sub(1); }
bool cleanup_pending() noexcept { return g_cleanups.load() > 0; }


namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv, double timeout_s, const std::string& cwd) {
  ProcessResult r;
  if (argv.empty()) throw Error(ExitCode::runtime, "run_process: no program given");
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0)
    throw Error(ExitCode::runtime, std::string("cannot create a pipe: ") + std::strerror(errno));
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  const pid_t pid = fork();
  if (pid < 0) throw Error(ExitCode::runtime, std::string("cannot start ") + argv[0] + ": " + std::strerror(errno));
  if (pid == 0) {
    // Child: only async-signal-safe calls from here on.
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(127);
    execvp(args[0], args.data());
    const char* msg = "cannot execute program: ";
    (void)!write(2, msg, strlen(msg));
    const char* why = strerror(errno);
    (void)!write(2, why, strlen(why));
    (void)!write(2, "\n", 1);
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);

  const auto t0 = std::chrono::steady_clock::now();
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (cancel_requested()) {
      kill(pid, SIGKILL);
      for (auto& f : fds)
        if (f.fd >= 0) close(f.fd);
      while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      throw Interrupted();
    }
    int wait_ms = -1;
    if (timeout_s > 0) {
      const double left = timeout_s - seconds_since(t0);
      if (left <= 0) {
        r.timed_out = true;
        kill(pid, SIGKILL);
        break;
      }
      wait_ms = int(std::min(left * 1000.0 + 1, double(INT_MAX)));
    }
    // A signal interrupts poll() (EINTR); a token requested from another thread does not, so
    // under a cancellation scope the wait is sliced to notice it within 100 ms.
    if (CancelScope::current()) wait_ms = wait_ms < 0 ? 100 : std::min(wait_ms, 100);
    const int n = poll(fds, 2, wait_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t got = read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        sinks[i]->append(buf, size_t(got));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) close(f.fd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  throw_if_interrupted();  // the child died of the same Ctrl-C: report the interruption, not it
  if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.exit_code = -1;
    r.signal = r.timed_out ? 0 : WTERMSIG(status);
  }
  return r;
}

TempDir::TempDir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/" + prefix + ".XXXXXX";
  if (!mkdtemp(templ.data()))
    throw Error(ExitCode::runtime, "cannot create a temporary directory in " + std::string(tmp && *tmp ? tmp : "/tmp") +
                                       ": " + std::strerror(errno));
  path_ = templ;
  cleanup_begin();
}

TempDir::~TempDir() {
  if (!keep_) {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  cleanup_end();
}

}  // namespace sattn
