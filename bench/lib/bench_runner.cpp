// Running a sweep's points as subprocesses, `jobs` at a time, with clean interruption: on SIGINT
// or SIGTERM no new point starts, the running ones get SIGINT (SIGKILL after a grace period),
// and the caller sees SweepInterrupted before anything has been written.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "bench.hpp"
#include "sattn/error.hpp"
#include "support/io.hpp"
#include "support/process.hpp"

namespace sattn {

namespace {

using Clock = std::chrono::steady_clock;

volatile sig_atomic_t g_interrupted = 0;
int g_wake_fd = -1;  // write end of the self-pipe that wakes poll() on a signal

void on_signal(int) {
  g_interrupted = 1;
  if (g_wake_fd >= 0) {
    const char byte = 1;
    (void)!write(g_wake_fd, &byte, 1);
  }
}

// Installs the SIGINT/SIGTERM handlers for the lifetime of a sweep and restores the old ones.
class SignalGuard {
 public:
  SignalGuard() {
    if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0)
      throw Error(ExitCode::runtime, std::string("cannot create a pipe: ") + std::strerror(errno));
    g_interrupted = 0;
    g_wake_fd = wake_[1];
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: poll() returns EINTR at once
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~SignalGuard() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
    g_wake_fd = -1;
    close(wake_[0]);
    close(wake_[1]);
  }
  int read_fd() const { return wake_[0]; }

 private:
  int wake_[2] = {-1, -1};
  struct sigaction old_int_ {}, old_term_ {};
};

struct Child {
  size_t index = 0;
  pid_t pid = -1;
  int fds[2] = {-1, -1};  // stdout, stderr
  std::string out, err;
  Clock::time_point start;
  bool timed_out = false;
};

Child spawn(size_t index, const std::vector<std::string>& argv) {
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) throw Error(ExitCode::runtime, std::string("pipe: ") + std::strerror(errno));
  if (pipe2(err_pipe, O_CLOEXEC) != 0) throw Error(ExitCode::runtime, std::string("pipe: ") + std::strerror(errno));
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw Error(ExitCode::runtime, std::string("cannot start a point: ") + std::strerror(errno));
  if (pid == 0) {
    // Its own process group, so that a terminal's Ctrl-C reaches only sattn bench, which then
    // stops the whole group (the tool and whatever it runs: qemu, the Verilator harness).
    setpgid(0, 0);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    execv(args[0], args.data());
    const char* why = strerror(errno);
    (void)!write(2, "cannot execute ", 15);
    (void)!write(2, args[0], strlen(args[0]));
    (void)!write(2, ": ", 2);
    (void)!write(2, why, strlen(why));
    (void)!write(2, "\n", 1);
    _exit(127);
  }
  setpgid(pid, pid);  // also here: whichever runs first wins the race
  close(out_pipe[1]);
  close(err_pipe[1]);
  Child c;
  c.index = index;
  c.pid = pid;
  c.fds[0] = out_pipe[0];
  c.fds[1] = err_pipe[0];
  c.start = Clock::now();
  return c;
}

std::string tail_lines(std::string text, int lines) {
  while (!text.empty() && text.back() == '\n') text.pop_back();
  size_t pos = text.size();
  for (int n = 0; n < lines && pos != std::string::npos && pos > 0; ++n) pos = text.rfind('\n', pos - 1);
  return pos == std::string::npos || pos == 0 ? text : text.substr(pos + 1);
}

PointOutcome finish(Child& c, int status, double timeout_s) {
  PointOutcome o;
  o.wall_s = std::chrono::duration<double>(Clock::now() - c.start).count();
  if (const nlohmann::json load = load_average(); load.is_array()) o.load_1min = load[0].get<double>();
  const std::string tail = tail_lines(c.err, 10);
  if (c.timed_out) {
    o.exit_code = int(ExitCode::external_tool);
    o.error = "timed out after " + std::to_string(int(timeout_s)) + " s";
  } else if (WIFSIGNALED(status)) {
    o.exit_code = int(ExitCode::external_tool);
    o.error = std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  } else {
    o.exit_code = WEXITSTATUS(status);
    // 127 is the shell's "command not found": the tool could not be run at all.
    if (o.exit_code == 127) o.exit_code = int(ExitCode::external_tool);
    if (o.exit_code != 0) o.error = "exit status " + std::to_string(WEXITSTATUS(status));
  }
  // The tools print one JSON line per op; a point is one op. A check failure (exit 5) still
  // prints its result, so parse whatever is there.
  const size_t brace = c.out.find('{');
  if (brace != std::string::npos) {
    const size_t eol = c.out.find('\n', brace);
    try {
      o.result = nlohmann::json::parse(c.out.substr(brace, eol == std::string::npos ? std::string::npos : eol - brace));
    } catch (const nlohmann::json::exception&) {
      o.result = nullptr;
    }
  }
  if (o.exit_code == 0 && !o.result.is_object()) {
    o.exit_code = int(ExitCode::runtime);
    o.error = "the tool exited 0 but printed no JSON result";
  }
  if (o.exit_code != 0 && !tail.empty()) o.error += ": " + tail;
  return o;
}

void stop_all(std::vector<Child>& running) {
  for (Child& c : running) kill(-c.pid, SIGINT);
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  for (Child& c : running) {
    for (;;) {
      int status = 0;
      const pid_t got = waitpid(c.pid, &status, WNOHANG);
      if (got == c.pid || (got < 0 && errno != EINTR)) break;
      if (Clock::now() > deadline) {
        kill(-c.pid, SIGKILL);
        while (waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
        }
        break;
      }
      usleep(20000);
    }
    for (int& fd : c.fds)
      if (fd >= 0) close(fd), fd = -1;
  }
  running.clear();
}

}  // namespace

std::vector<PointOutcome> run_points(const std::vector<BenchPoint>& points, const BenchConfig& config,
                                     const std::string& sattn, int jobs, bool progress) {
  if (jobs < 1) jobs = 1;
  std::vector<PointOutcome> outcomes(points.size());
  TempDir scratch("sattn-bench");
  SignalGuard guard;
  std::vector<Child> running;
  size_t next = 0, done = 0;
  auto show = [&](const std::string& what) {
    if (progress)
      std::cerr << "\r[" << done << "/" << points.size() << "] " << running.size() << " running " << what << "\x1b[K"
                << std::flush;
  };
  char buf[65536];
  while (next < points.size() || !running.empty()) {
    if (g_interrupted) {
      stop_all(running);
      if (progress) std::cerr << "\r\x1b[K" << std::flush;
      throw SweepInterrupted{};
    }
    while (next < points.size() && int(running.size()) < jobs) {
      const BenchPoint& p = points[next];
      const std::string op_file = (std::filesystem::path(scratch.path()) / (p.id + ".op.json")).string();
      write_atomic(op_file, p.op.dump() + "\n");
      std::vector<std::string> argv{sattn};
      for (std::string& a : backend_args(p, config, op_file)) argv.push_back(std::move(a));
      running.push_back(spawn(next, argv));
      show(p.id);
      ++next;
    }
    std::vector<pollfd> fds{{guard.read_fd(), POLLIN, 0}};
    std::vector<std::pair<size_t, int>> owner;  // (running index, stream)
    int wait_ms = -1;
    for (size_t i = 0; i < running.size(); ++i) {
      for (int s = 0; s < 2; ++s)
        if (running[i].fds[s] >= 0) {
          fds.push_back({running[i].fds[s], POLLIN, 0});
          owner.push_back({i, s});
        }
      if (config.timeout_s > 0) {
        const double left = config.timeout_s - std::chrono::duration<double>(Clock::now() - running[i].start).count();
        const int ms = left <= 0 ? 0 : int(std::min(left * 1000.0 + 1, double(INT_MAX)));
        wait_ms = wait_ms < 0 ? ms : std::min(wait_ms, ms);
      }
    }
    const int n = poll(fds.data(), fds.size(), wait_ms);
    if (n < 0 && errno != EINTR) throw Error(ExitCode::runtime, std::string("poll: ") + std::strerror(errno));
    if (n > 0) {
      if (fds[0].revents & POLLIN) (void)!read(fds[0].fd, buf, sizeof buf);
      for (size_t f = 1; f < fds.size(); ++f) {
        if (!(fds[f].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        Child& c = running[owner[f - 1].first];
        const int s = owner[f - 1].second;
        const ssize_t got = read(c.fds[s], buf, sizeof buf);
        if (got > 0) {
          (s == 0 ? c.out : c.err).append(buf, size_t(got));
        } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
          close(c.fds[s]);
          c.fds[s] = -1;
        }
      }
    }
    // Time limits, then the children whose output is complete.
    for (Child& c : running)
      if (config.timeout_s > 0 && !c.timed_out &&
          std::chrono::duration<double>(Clock::now() - c.start).count() > config.timeout_s) {
        c.timed_out = true;
        kill(-c.pid, SIGKILL);
      }
    for (size_t i = 0; i < running.size();) {
      Child& c = running[i];
      if (c.fds[0] >= 0 || c.fds[1] >= 0) {
        ++i;
        continue;
      }
      int status = 0;
      while (waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
      }
      outcomes[c.index] = finish(c, status, config.timeout_s);
      ++done;
      show(points[c.index].id + (outcomes[c.index].exit_code ? " (failed)" : ""));
      running.erase(running.begin() + long(i));
    }
  }
  if (progress) std::cerr << "\r\x1b[K" << std::flush;
  return outcomes;
}

}  // namespace sattn
