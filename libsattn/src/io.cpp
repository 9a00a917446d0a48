#include "sattn/io.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
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

void write_atomic(const std::string& path, const std::string& contents) {
  if (path == "-") {
    std::cout << contents;
    std::cout.flush();
    if (!std::cout) throw_runtime_error("error writing to stdout");
    return;
  }
  namespace fs = std::filesystem;
  fs::path target(path);
  fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string tmpl = (dir / ("." + target.filename().string() + ".tmpXXXXXX")).string();
  int fd = mkstemp(tmpl.data());
  if (fd < 0) throw Error(ExitCode::runtime, std::string("cannot create file: ") + std::strerror(errno), {path});
  const char* p = contents.data();
  size_t left = contents.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      ::unlink(tmpl.c_str());
      throw Error(ExitCode::runtime, std::string("write failed: ") + std::strerror(e), {path});
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  // mkstemp creates 0600; give the file the usual permissions.
  ::fchmod(fd, 0644);
  if (::close(fd) != 0 || std::rename(tmpl.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmpl.c_str());
    throw Error(ExitCode::runtime, std::string("cannot write: ") + std::strerror(e), {path});
  }
}

void make_dirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) throw Error(ExitCode::runtime, "cannot create directory: " + ec.message(), {path});
}

namespace {

constexpr size_t kAtomicFileBuffer = size_t(1) << 20;

[[noreturn]] void throw_errno(const std::string& what, const std::string& path, int err) {
  throw Error(ExitCode::runtime, what + ": " + std::strerror(err), {path});
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  namespace fs = std::filesystem;
  const fs::path target(path_);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  temp_path_ = (dir / ("." + target.filename().string() + ".tmpXXXXXX")).string();
  fd_ = mkstemp(temp_path_.data());
  if (fd_ < 0) throw_errno("cannot create file", path_, errno);
  ::fchmod(fd_, 0644);  // mkstemp creates 0600; give the file the usual permissions
  buffer_.resize(kAtomicFileBuffer);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(temp_path_.c_str());
  }
}

void AtomicFile::write_through(const char* data, size_t size) {
  if (fd_ < 0) throw_runtime_error("AtomicFile: write after commit: " + path_);
  while (size > 0) {
    const ssize_t n = ::write(fd_, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("write failed", path_, errno);
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
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
  if (::close(fd) != 0 || std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp_path_.c_str());
    throw_errno("cannot write", path_, err);
  }
}

namespace {

// Moves every entry of `from` into the existing directory `to`: files replace files of the same
// name (rename is atomic), subdirectories are moved whole or merged.
void merge_into(const std::filesystem::path& from, const std::filesystem::path& to, const std::string& last) {
  namespace fs = std::filesystem;
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(from)) entries.push_back(e.path());
  std::sort(entries.begin(), entries.end(), [&last](const fs::path& a, const fs::path& b) {
    return std::pair(a.filename() == last, a) < std::pair(b.filename() == last, b);
  });
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
  staging_ = (ancestor / ".sattn-stage-XXXXXX").string();
  if (!::mkdtemp(staging_.data())) {
    const int err = errno;
    staging_.clear();
    throw_errno("cannot create directory", path_, err);
  }
  // mkdtemp creates 0700; the directory should get the permissions mkdir would give it.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::chmod(staging_.c_str(), 0777 & ~mask);
}

StagedDirectory::~StagedDirectory() {
  if (committed_ || staging_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(staging_, ec);
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
