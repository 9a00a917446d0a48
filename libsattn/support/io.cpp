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
#include <limits>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <system_error>

#include "sattn/error.hpp"
#include "support/process.hpp"

namespace sattn {

namespace {

[[noreturn]] void throw_errno(const std::string& what, const std::string& path, int err) {
  throw Error(ExitCode::runtime, what + ": " + std::strerror(err), {path});
}

// Creating `path` (a file or directory) in directory `where` failed with `err`. Refused by
// permissions or a read-only file system, it says so ("not writable"), naming the directory that
// refused; other failures keep `what` ("cannot create directory: No such file or directory").
[[noreturn]] void throw_create_errno(const std::string& what, const std::string& path, const std::string& where, int err) {
  if (err == EACCES || err == EPERM || err == EROFS)
    throw Error(ExitCode::runtime,
                "not writable: cannot create " + std::string(what.find("directory") != std::string::npos ? "a directory" : "a file") +
                    " in " + (where.empty() ? std::string(".") : where) + " (" + std::strerror(err) + ")",
                {path});
  throw_errno(what, path, err);
}

// "64M", "1G", "1048576", "0": bytes, with an optional K/M/G/T suffix (powers of 1024).
std::optional<uint64_t> parse_byte_size(const std::string& text) {
  if (text.empty() || text[0] < '0' || text[0] > '9') return std::nullopt;
  size_t used = 0;
  unsigned long long value = 0;
  try {
    value = std::stoull(text, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  std::string suffix = text.substr(used);
  if (suffix.size() == 2 && (suffix[1] == 'B' || suffix[1] == 'b')) suffix.pop_back();
  int shift = 0;
  if (suffix.empty()) shift = 0;
  else if (suffix.size() == 1 && std::strchr("kK", suffix[0])) shift = 10;
  else if (suffix.size() == 1 && std::strchr("mM", suffix[0])) shift = 20;
  else if (suffix.size() == 1 && std::strchr("gG", suffix[0])) shift = 30;
  else if (suffix.size() == 1 && std::strchr("tT", suffix[0])) shift = 40;
  else return std::nullopt;
  if (shift && value > (std::numeric_limits<uint64_t>::max() >> shift)) return std::nullopt;
  return uint64_t(value) << shift;
}

std::string byte_size_text(uint64_t n) {
  if (n >= (uint64_t(1) << 30) && n % (uint64_t(1) << 30) == 0) return std::to_string(n >> 30) + " GiB";
  if (n >= (uint64_t(1) << 20) && n % (uint64_t(1) << 20) == 0) return std::to_string(n >> 20) + " MiB";
  return std::to_string(n) + " bytes";
}

}  // namespace

uint64_t input_limit() {
  const char* env = std::getenv("SATTN_MAX_INPUT");
  if (!env || !*env) return kDefaultInputLimit;
  const std::optional<uint64_t> n = parse_byte_size(env);
  if (!n) throw Error(ExitCode::usage, std::string("SATTN_MAX_INPUT: expected a size like 64M or 1G (0 = no limit), got '") + env + "'");
  return *n;
}

InputFile::InputFile(const std::string& path) : path_(path) {
  if (path == "-" || path == "/dev/stdin") {
    fd_ = STDIN_FILENO;
  } else {
    for (;;) {
      // O_NONBLOCK is not used: a FIFO's open waits for its writer, as cat's does.
      fd_ = ::open(path.c_str(), O_RDONLY | O_NOCTTY | O_CLOEXEC);
      if (fd_ >= 0) break;
      if (errno != EINTR) throw_errno("cannot open", path, errno);
      throw_if_interrupted();
    }
    owned_ = true;
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int err = errno;
    if (owned_) ::close(fd_);
    fd_ = -1;
    throw_errno("cannot read", path, err);
  }
  regular_ = S_ISREG(st.st_mode);
  const char* refused = S_ISDIR(st.st_mode)   ? "is a directory, not a file"
                        : S_ISBLK(st.st_mode) ? "is a block device, not a file"
                        : S_ISSOCK(st.st_mode) ? "is a socket, not a file"
                        : S_ISCHR(st.st_mode) && owned_ ? "is a character device, not a file (give a file, a pipe or '-')"
                                                        : nullptr;
  if (refused) {
    if (owned_) ::close(fd_);
    fd_ = -1;
    throw Error(ExitCode::runtime, std::string("cannot read: ") + refused, {path});
  }
}

InputFile::~InputFile() {
  if (owned_ && fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::string InputFile::read_all(uint64_t limit) {
  std::string out;
  std::vector<char> chunk(size_t(1) << 16);
  for (;;) {
    const ssize_t n = ::read(fd_, chunk.data(), chunk.size());
    if (n < 0) {
      if (errno == EINTR) {
        throw_if_interrupted();
        continue;
      }
      throw_errno("read failed", path_ == "-" ? "<stdin>" : path_, errno);
    }
    if (n == 0) return out;
    out.append(chunk.data(), size_t(n));
    if (limit && out.size() > limit)
      throw Error(ExitCode::runtime,
                  "input larger than " + byte_size_text(limit) +
                      " (the limit on one input; set SATTN_MAX_INPUT to raise it, 0 for none)",
                  {path_ == "-" ? "<stdin>" : path_});
  }
}

std::string read_text(const std::string& path) { return InputFile(path).read_all(input_limit()); }

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
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) throw_create_errno("cannot create file", path, dir, errno);
  }
#endif
  temp_path = (dir_of(path) / ("." + std::filesystem::path(path).filename().string() + ".tmpXXXXXX")).string();
  const int fd = ::mkostemp(temp_path.data(), O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    temp_path.clear();
    throw_create_errno("cannot create file", path, dir, err);
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

std::string safe_file_name(std::string_view name, std::string_view fallback) {
  std::string out;
  for (const char c : name.substr(0, 128)) {
    const auto u = static_cast<unsigned char>(c);
    out += (c == '/' || c == '\\' || u < 0x20 || u == 0x7f) ? '_' : c;
  }
  if (!out.empty() && out[0] == '.') out[0] = '_';
  return out.empty() ? std::string(fallback) : out;
}

std::vector<std::string> unique_file_names(const std::vector<std::string>& names, std::string_view fallback) {
  std::vector<std::string> out;
  std::set<std::string> taken;
  for (const std::string& name : names) {
    const std::string base = safe_file_name(name, fallback);
    std::string unique = base;
    for (int n = 2; taken.count(unique); ++n) unique = base + "." + std::to_string(n);
    taken.insert(unique);
    out.push_back(unique);
  }
  return out;
}

bool is_contained_path(std::string_view rel) {
  if (rel.empty() || rel.front() == '/' || rel.find('\0') != std::string_view::npos) return false;
  for (const auto& part : std::filesystem::path(rel))
    if (part == "..") return false;
  return true;
}

void make_dirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) {
    // The deepest directory that exists is the one that refused.
    std::filesystem::path where = std::filesystem::path(path).parent_path();
    std::error_code ignored;
    while (!where.empty() && !std::filesystem::exists(where, ignored)) where = where.parent_path();
    if (ec.category() == std::generic_category() || ec.category() == std::system_category())
      throw_create_errno("cannot create directory", path, where.string(), ec.value());
    throw Error(ExitCode::runtime, "cannot create directory: " + ec.message(), {path});
  }
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

namespace {

// Whether `dir` holds what a sattn tool writes into an output directory: an envelope at its top
// (artifacts.json, result.json, bench.json), or only subdirectories that each hold one (the
// multi-op layouts of sattn-emit and sattn run).
bool holds_sattn_output(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  static const char* const kEnvelopes[] = {"artifacts.json", "result.json", "bench.json"};
  auto has_envelope = [](const fs::path& d) {
    std::error_code ec;
    for (const char* name : kEnvelopes)
      if (fs::is_regular_file(d / name, ec)) return true;
    return false;
  };
  if (has_envelope(dir)) return true;
  std::error_code ec;
  bool any = false;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().rfind(kStagePrefix, 0) == 0) continue;
    if (!it->is_directory(ec) || it->is_symlink(ec) || !has_envelope(it->path())) return false;
    any = true;
  }
  return any;
}

bool is_empty_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  return std::filesystem::is_empty(dir, ec) && !ec;
}

// `path` with its symlinks resolved as far as they exist, absolute and without "." / "..".
std::filesystem::path resolved_target(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p = fs::absolute(fs::path(path), ec).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();  // "out/" -> "out"
  for (int hops = 0; hops < 40; ++hops) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) break;
    const fs::path link = fs::read_symlink(p, ec);
    if (ec) break;
    p = (link.is_absolute() ? link : p.parent_path() / link).lexically_normal();
    if (!p.has_filename()) p = p.parent_path();
  }
  // A symlinked parent is fine (the staging directory goes through the same one); a canonical
  // form of what exists makes the current-directory check exact.
  const fs::path weak = fs::weakly_canonical(p, ec);
  return ec ? p : weak;
}

// An flock on a directory, for as long as this object lives.
class DirectoryLock {
 public:
  // A staging directory is private to its run (and already flocked by it: a second flock from
  // this process would wait for itself), so it is not locked again.
  explicit DirectoryLock(const std::string& dir)
      : fd_(std::filesystem::path(dir).filename().string().rfind(kStagePrefix, 0) == 0
                ? -1
                : ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {
    if (fd_ >= 0) ::flock(fd_, LOCK_EX);
  }
  ~DirectoryLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

 private:
  int fd_;
};

}  // namespace

StagedDirectory::StagedDirectory(std::string path, StageOptions options) : path_(std::move(path)), options_(options) {
  namespace fs = std::filesystem;
  if (path_.empty()) throw Error(ExitCode::usage, "empty output directory name");
  const fs::path target = resolved_target(path_);
  target_ = target.string();
  std::error_code ec;
  const fs::path cwd = fs::weakly_canonical(fs::current_path(ec), ec);
  if (!options_.merge && (target == target.root_path() || (!ec && std::mismatch(target.begin(), target.end(), cwd.begin(), cwd.end()).first == target.end())))
    throw Error(ExitCode::runtime, "refusing to replace the current directory or one above it (give a new or sattn output directory)", {path_});
  if (fs::exists(target, ec) && !fs::is_directory(target, ec))
    throw Error(ExitCode::runtime, "cannot write into it: not a directory", {path_});
  check_replaceable();
  fs::path ancestor = target.parent_path();
  while (!ancestor.empty() && !fs::exists(ancestor, ec)) ancestor = ancestor.parent_path();
  if (ancestor.empty()) ancestor = ".";
  parent_ = ancestor.string();
  remove_abandoned_stages(ancestor);
  // Created under a name the clean-up above ignores, locked, then renamed: another run never
  // sees it unlocked.
  std::string fresh = (ancestor / (std::string(kNewStagePrefix) + "XXXXXX")).string();
  if (!::mkdtemp(fresh.data())) throw_create_errno("cannot create directory", path_, ancestor.string(), errno);
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
  cleanup_begin();
  // mkdtemp creates 0700; the directory should get the permissions mkdir would give it.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::chmod(staging_.c_str(), 0777 & ~mask);
}

void StagedDirectory::check_replaceable() const {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (options_.merge || options_.force || !fs::is_directory(target_, ec)) return;
  if (is_empty_dir(target_) || holds_sattn_output(target_)) return;
  throw Error(ExitCode::runtime,
              "exists, is not empty and holds no sattn output: refusing to replace it (--force replaces it whole)",
              {path_});
}

StagedDirectory::~StagedDirectory() {
  if (!committed_ && !staging_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(staging_, ec);
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);
  if (!staging_.empty()) cleanup_end();
}

void StagedDirectory::commit(const std::string& last) {
  namespace fs = std::filesystem;
  std::error_code ec;
  // One commit at a time in this parent: concurrent writers replace the target one after the
  // other, each whole.
  const DirectoryLock lock(parent_);
  if (!fs::exists(target_, ec)) {
    const fs::path parent = fs::path(target_).parent_path();
    if (!parent.empty()) make_dirs(parent.string());
    if (std::rename(staging_.c_str(), target_.c_str()) == 0) {
      committed_ = true;
      return;
    }
    if (errno != EEXIST && errno != ENOTEMPTY)
      throw_create_errno("cannot create directory", path_, fs::path(target_).parent_path().string(), errno);
  }
  if (!fs::is_directory(target_, ec)) throw Error(ExitCode::runtime, "cannot write into it: not a directory", {path_});
  if (options_.merge) {
    try {
      merge_into(staging_, target_, last);
    } catch (const fs::filesystem_error& e) {
      throw Error(ExitCode::runtime, std::string("cannot move into place: ") + e.code().message(), {path_});
    }
    fs::remove_all(staging_, ec);
    committed_ = true;
    return;
  }
  check_replaceable();  // again: another process may have filled it since
  // Swap the staged tree and the old one in one step; the old one, now under the staging name,
  // is removed (a kill during the removal leaves it to the next run's sweep).
  if (::renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, target_.c_str(), RENAME_EXCHANGE) != 0) {
    if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) throw_errno("cannot move into place", path_, errno);
    // A file system without RENAME_EXCHANGE: move the old tree aside, then the new one in.
    const std::string aside = (fs::path(parent_) / (std::string(kStagePrefix) + "old-" +
                                                     fs::path(staging_).filename().string().substr(std::strlen(kStagePrefix))))
                                  .string();
    if (std::rename(target_.c_str(), aside.c_str()) != 0) throw_errno("cannot move into place", path_, errno);
    if (std::rename(staging_.c_str(), target_.c_str()) != 0) {
      const int err = errno;
      std::rename(aside.c_str(), target_.c_str());
      throw_errno("cannot move into place", path_, err);
    }
    fs::remove_all(aside, ec);
  } else {
    fs::remove_all(staging_, ec);
  }
  committed_ = true;
}

bool stderr_is_tty() { return ::isatty(STDERR_FILENO) == 1; }

}  // namespace sattn
