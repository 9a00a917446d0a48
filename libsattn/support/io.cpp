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

namespace sattn {

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

[[noreturn]] void throw_errno(const std::string& what, const std::string& path, int err) {
  throw Error(ExitCode::runtime, what + ": " + std::strerror(err), {path});
}

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
      if (errno == EINTR) continue;
      throw_errno("write failed", path, errno);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace

void write_atomic(const std::string& path, const std::string& contents) {
  if (path == "-") {
    std::cout << contents;
    std::cout.flush();
    if (!std::cout) throw_runtime_error("error writing to stdout");
    return;
  }
  std::string temp_path;
  const int fd = open_temp(path, temp_path);
  try {
    write_all(fd, contents.data(), contents.size(), path);
  } catch (...) {
    ::close(fd);
    if (!temp_path.empty()) ::unlink(temp_path.c_str());
    throw;
  }
  publish(fd, temp_path, path);
}

void make_dirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) throw Error(ExitCode::runtime, "cannot create directory: " + ec.message(), {path});
}

namespace {

constexpr size_t kAtomicFileBuffer = size_t(1) << 20;

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  fd_ = open_temp(path_, temp_path_);
  buffer_.resize(kAtomicFileBuffer);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
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
  publish(fd, temp_path_, path_);
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
