#include "support/io.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <sstream>
#include <system_error>

#include "sattn/error.hpp"
#include "support/process.hpp"

namespace sattn {

namespace {

[[noreturn]] void throw_errno(const std::string& what, const std::string& path, int err) {
  throw Error(ExitCode::runtime, what + ": " + std::strerror(err), {path});
}

}  // namespace

std::string read_text(const std::string& path) {
  if (path == "-") {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    return ss.str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ExitCode::runtime, std::string("cannot open: ") + std::strerror(errno), {path});
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(ExitCode::runtime, "read failed", {path});
  return s;
}

namespace {

std::filesystem::path dir_of(const std::string& path) {
  const std::filesystem::path target(path);
  return target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
}

// A hidden, unused name beside `path` for a temporary: ".NAME.tmpXXXXXX".
std::string hidden_temp_name(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  static const unsigned seed = std::random_device{}();
  const unsigned n = seed ^ (unsigned(::getpid()) * 2654435761u) ^ (counter.fetch_add(1) * 40503u);
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "%08x", n);
  return (dir_of(path) / ("." + std::filesystem::path(path).filename().string() + ".tmp" + suffix)).string();
}

// Opens the file that becomes `path`. Where the file system supports it (Linux O_TMPFILE), the
// file has no name at all until publish() links it in, so a run killed at any moment (even by
// SIGKILL) leaves nothing behind; elsewhere it is a hidden temporary beside `path` (`temp_path`
// set), removed on every failure the process lives through.
int open_temp(const std::string& path, std::string& temp_path) {
  temp_path.clear();
  const std::string dir = dir_of(path).string();
#ifdef O_TMPFILE
  static const bool have_proc = ::access("/proc/self/fd", X_OK) == 0;
  if (have_proc) {
    const int fd = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
    if (fd >= 0) return fd;
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) throw_errno("cannot create file", path, errno);
  }
#endif
  temp_path = (dir_of(path) / ("." + std::filesystem::path(path).filename().string() + ".tmpXXXXXX")).string();
  const int fd = ::mkostemp(temp_path.data(), O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    temp_path.clear();
    throw_errno("cannot create file", path, err);
  }
  ::fchmod(fd, 0644);  // mkstemp creates 0600; give the file the usual permissions
  return fd;
}

// Closes `fd` and gives the file its name `path`, replacing what was there atomically.
void publish(int fd, const std::string& temp_path, const std::string& path) {
  if (!temp_path.empty()) {
    if (::close(fd) != 0 || std::rename(temp_path.c_str(), path.c_str()) != 0) {
      const int err = errno;
      ::unlink(temp_path.c_str());
      throw_errno("cannot write", path, err);
    }
    return;
  }
  const std::string proc = "/proc/self/fd/" + std::to_string(fd);
  if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) == 0) {
    ::close(fd);
    return;
  }
  if (errno != EEXIST) {
    const int err = errno;
    ::close(fd);
    throw_errno("cannot write", path, err);
  }
  // `path` exists: link the file under a hidden name and rename it over `path` (atomic).
  for (int attempt = 0;; ++attempt) {
    const std::string temp = hidden_temp_name(path);
    if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, temp.c_str(), AT_SYMLINK_FOLLOW) != 0) {
      if (errno == EEXIST && attempt < 100) continue;
      const int err = errno;
      ::close(fd);
      throw_errno("cannot write", path, err);
    }
    ::close(fd);
    if (std::rename(temp.c_str(), path.c_str()) != 0) {
      const int err = errno;
      ::unlink(temp.c_str());
      throw_errno("cannot write", path, err);
    }
    return;
  }
}

void write_all(int fd, const char* p, size_t left, const std::string& path) {
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) {  // Ctrl-C while a FIFO's reader is slow: stop; else retry
        throw_if_interrupted();
        continue;
      }
      throw_errno("write failed", path, errno);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

// /dev/stdout, /dev/stderr, /dev/fd/N and /proc/self/fd/N name a descriptor this process holds:
// it is written as it is (a pipe, a terminal or a file the shell opened), never reopened or
// replaced. Returns the descriptor, or -1.
int named_descriptor(const std::string& p) {
  if (p == "-" || p == "/dev/stdout") return STDOUT_FILENO;
  if (p == "/dev/stderr") return STDERR_FILENO;
  for (const std::string prefix : {"/dev/fd/", "/proc/self/fd/"}) {
    if (p.size() <= prefix.size() || p.size() > prefix.size() + 6 || p.compare(0, prefix.size(), prefix) != 0) continue;
    int fd = 0;
    for (size_t i = prefix.size(); i < p.size(); ++i) {
      if (p[i] < '0' || p[i] > '9') return -1;
      fd = fd * 10 + (p[i] - '0');
    }
    return fd;
  }
  return -1;
}

// Opens a character device or FIFO for writing, in place. Opening a FIFO blocks until a reader
// comes; Ctrl-C interrupts the wait (the tools' handler has no SA_RESTART).
int open_direct(const std::string& path) {
  for (;;) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (fd >= 0) return fd;
    if (errno != EINTR) throw_errno("cannot open", path, errno);
    throw_if_interrupted();
  }
}

}  // namespace

OutputTarget classify_output(const std::string& path) {
  if (path.empty()) throw Error(ExitCode::usage, "empty output file name");
  std::string p = path;
  for (int hops = 0;; ++hops) {
    if (const int fd = named_descriptor(p); fd >= 0)
      return {fd == STDOUT_FILENO ? OutputKind::standard_output : OutputKind::descriptor, p, fd};
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) return {OutputKind::atomic, p, -1};  // a new name; the writer reports other errors
    if (S_ISLNK(st.st_mode)) {
      if (hops >= 40) throw Error(ExitCode::runtime, "cannot write: too many levels of symbolic links", {path});
      std::error_code ec;
      const std::filesystem::path target = std::filesystem::read_symlink(p, ec);
      if (ec) throw Error(ExitCode::runtime, "cannot read the symbolic link: " + ec.message(), {path});
      p = target.is_absolute() ? target.string() : (dir_of(p) / target).string();
      continue;
    }
    if (S_ISREG(st.st_mode)) return {OutputKind::atomic, p, -1};
    if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) return {OutputKind::direct, p, -1};
    if (S_ISDIR(st.st_mode)) throw Error(ExitCode::runtime, "cannot write: is a directory (give a file name)", {path});
    if (S_ISBLK(st.st_mode)) throw Error(ExitCode::runtime, "refusing to write to a block device", {path});
    throw Error(ExitCode::runtime, "cannot write: not a regular file, FIFO or character device", {path});
  }
}

void write_atomic(const std::string& path, const std::string& contents) {
  if (classify_output(path).kind == OutputKind::standard_output) {
    std::cout << contents;
    std::cout.flush();
    if (!std::cout) throw_runtime_error("error writing to stdout");
    return;
  }
  AtomicFile file(path);
  file.write(contents);
  file.commit();
}

void check_output_path(const std::string& path) {
  const OutputTarget target = classify_output(path);
  if (target.kind != OutputKind::atomic) return;
  struct stat st {};
  const std::string dir = dir_of(target.path).string();
  if (::stat(dir.c_str(), &st) != 0) throw_errno("cannot write", path, errno);
  if (!S_ISDIR(st.st_mode)) throw Error(ExitCode::runtime, "cannot write: " + dir + " is not a directory", {path});
  if (::access(dir.c_str(), W_OK) != 0) throw_errno("cannot write", path, errno);
}

void copy_to_output(const std::string& from, const std::string& to) {
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) throw_errno("cannot open", from, errno);
  try {
    AtomicFile out(to);
    std::vector<char> chunk(size_t(1) << 20);
    for (;;) {
      const ssize_t n = ::read(in, chunk.data(), chunk.size());
      if (n < 0 && errno == EINTR) {
        throw_if_interrupted();
        continue;
      }
      if (n < 0) throw_errno("read failed", from, errno);
      if (n == 0) break;
      out.write(chunk.data(), size_t(n));
    }
    out.commit();
  } catch (...) {
    ::close(in);
    throw;
  }
  ::close(in);
}

void make_dirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) throw Error(ExitCode::runtime, "cannot create directory: " + ec.message(), {path});
}

namespace {

constexpr size_t kAtomicFileBuffer = size_t(1) << 20;

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)), target_(classify_output(path_)) {
  switch (target_.kind) {
    case OutputKind::atomic: fd_ = open_temp(target_.path, temp_path_); break;
    case OutputKind::direct: fd_ = open_direct(target_.path); break;
    case OutputKind::standard_output:
      std::cout.flush();  // what the tool already printed goes first
      [[fallthrough]];
    case OutputKind::descriptor: fd_ = target_.fd; break;
  }
  buffer_.resize(kAtomicFileBuffer);
}

AtomicFile::~AtomicFile() {
  if (fd_ < 0) return;
  if (target_.kind == OutputKind::atomic) {
    ::close(fd_);
    if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
  } else if (target_.kind == OutputKind::direct) {
    ::close(fd_);
  }
}

void AtomicFile::write_through(const char* data, size_t size) {
  if (fd_ < 0) throw_runtime_error("AtomicFile: write after commit: " + path_);
  write_all(fd_, data, size, path_);
}

void AtomicFile::flush_buffer() {
  write_through(buffer_.data(), used_);
  used_ = 0;
}

void AtomicFile::write(const void* data, size_t size) {
  const char* bytes = static_cast<const char*>(data);
  if (used_ + size <= buffer_.size()) {
    if (size > 0) std::memcpy(buffer_.data() + used_, bytes, size);
    used_ += size;
    return;
  }
  flush_buffer();
  // Large pieces (whole arrays) skip the copy into the buffer.
  if (size >= buffer_.size()) return write_through(bytes, size);
  std::memcpy(buffer_.data(), bytes, size);
  used_ = size;
}

void AtomicFile::commit() {
  flush_buffer();
  const int fd = fd_;
  fd_ = -1;
  switch (target_.kind) {
    case OutputKind::atomic: publish(fd, temp_path_, target_.path); break;
    case OutputKind::direct:
      if (::close(fd) != 0) throw_errno("write failed", path_, errno);
      break;
    case OutputKind::standard_output:
    case OutputKind::descriptor: break;  // not ours to close
  }
}

namespace {

// Moves every entry of `from` into the existing directory `to`: files replace files of the same
// name (rename is atomic), subdirectories are moved whole or merged. The old `last` entries
// (envelopes) are removed first and the new ones moved last, so a reader never finds an
// envelope beside files it does not describe.
void merge_into(const std::filesystem::path& from, const std::filesystem::path& to, const std::string& last) {
  namespace fs = std::filesystem;
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(from)) entries.push_back(e.path());
  std::sort(entries.begin(), entries.end(), [&last](const fs::path& a, const fs::path& b) {
    return std::pair(a.filename() == last, a) < std::pair(b.filename() == last, b);
  });
  if (!last.empty() && fs::exists(from / last)) {
    std::error_code ec;
    const fs::path old = to / last;
    if (fs::is_regular_file(fs::symlink_status(old, ec)) && ::unlink(old.c_str()) != 0)
      throw_errno("cannot replace", old.string(), errno);
  }
  for (const fs::path& src : entries) {
    const fs::path dst = to / src.filename();
    std::error_code ec;
    if (fs::is_directory(src) && fs::is_directory(dst, ec)) {
      merge_into(src, dst, last);
      continue;
    }
    if (std::rename(src.c_str(), dst.c_str()) != 0) throw_errno("cannot move into place", dst.string(), errno);
  }
}

constexpr const char* kStagePrefix = ".sattn-stage-";
constexpr const char* kNewStagePrefix = ".sattn-new-";

// Removes the staging directories in `dir` that runs killed with SIGKILL (or a power cut) left
// behind. A live run holds an flock on its staging directory for as long as it exists; the
// kernel drops the lock when the process dies however it dies, so an unlocked one is litter.
void remove_abandoned_stages(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(kStagePrefix, 0) != 0) continue;
    const int fd = ::open(it->path().c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) continue;
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      std::error_code rm;
      fs::remove_all(it->path(), rm);
    }
    ::close(fd);
  }
}

}  // namespace

StagedDirectory::StagedDirectory(std::string path) : path_(std::move(path)) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(path_, ec) && !fs::is_directory(path_, ec))
    throw Error(ExitCode::runtime, "cannot write into it: not a directory", {path_});
  fs::path target(path_);
  if (!target.has_filename()) target = target.parent_path();  // "out/" -> "out"
  fs::path ancestor = target.parent_path();
  while (!ancestor.empty() && !fs::exists(ancestor, ec)) ancestor = ancestor.parent_path();
  if (ancestor.empty()) ancestor = ".";
  remove_abandoned_stages(ancestor);
  // Created under a name the clean-up above ignores, locked, then renamed: another run never
  // sees it unlocked.
  std::string fresh = (ancestor / (std::string(kNewStagePrefix) + "XXXXXX")).string();
  if (!::mkdtemp(fresh.data())) throw_errno("cannot create directory", path_, errno);
  lock_fd_ = ::open(fresh.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock_fd_ < 0 || ::flock(lock_fd_, LOCK_EX) != 0) {
    const int err = errno;
    if (lock_fd_ >= 0) ::close(lock_fd_);
    lock_fd_ = -1;
    ::rmdir(fresh.c_str());
    throw_errno("cannot create directory", path_, err);
  }
  const std::string suffix = fresh.substr(fresh.size() - 6);
  staging_ = (ancestor / (std::string(kStagePrefix) + suffix)).string();
  if (::renameat2(AT_FDCWD, fresh.c_str(), AT_FDCWD, staging_.c_str(), RENAME_NOREPLACE) != 0) {
    const int err = errno;
    ::close(lock_fd_);
    lock_fd_ = -1;
    ::rmdir(fresh.c_str());
    staging_.clear();
    throw_errno("cannot create directory", path_, err);
  }
  // mkdtemp creates 0700; the directory should get the permissions mkdir would give it.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::chmod(staging_.c_str(), 0777 & ~mask);
}

StagedDirectory::~StagedDirectory() {
  if (!committed_ && !staging_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(staging_, ec);
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void StagedDirectory::commit(const std::string& last) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path_, ec)) {
    const fs::path parent = fs::path(path_).parent_path();
    if (!parent.empty()) make_dirs(parent.string());
    if (std::rename(staging_.c_str(), path_.c_str()) == 0) {
      committed_ = true;
      return;
    }
    if (errno != EEXIST && errno != ENOTEMPTY) throw_errno("cannot create directory", path_, errno);
  }
  if (!fs::is_directory(path_, ec)) throw Error(ExitCode::runtime, "cannot write into it: not a directory", {path_});
  try {
    merge_into(staging_, path_, last);
  } catch (const fs::filesystem_error& e) {
    throw Error(ExitCode::runtime, std::string("cannot move into place: ") + e.code().message(), {path_});
  }
  fs::remove_all(staging_, ec);
  committed_ = true;
}

bool stderr_is_tty() { return ::isatty(STDERR_FILENO) == 1; }

}  // namespace sattn
