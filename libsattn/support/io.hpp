// File helpers: whole-file reads ("-" = stdin) and atomic writes ("-" = stdout).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sattn {

// The most bytes read_text() takes from one input: $SATTN_MAX_INPUT (bytes, or K/M/G/T in powers
// of 1024; 0 = no limit), else kDefaultInputLimit. A malformed value is a usage error (exit 2).
constexpr uint64_t kDefaultInputLimit = uint64_t(64) << 20;
uint64_t input_limit();

// An input opened for reading: "-" or /dev/stdin (standard input, whatever it is), a regular
// file, or a FIFO or pipe (process substitution). A directory, a device (/dev/zero), or a socket
// is refused (exit 1, naming it), so no read runs without end. Opening a FIFO waits for a
// writer, and every read can be interrupted by Ctrl-C (Interrupted).
class InputFile {
 public:
  explicit InputFile(const std::string& path);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  bool regular() const { return regular_; }
  // Everything up to the end, or Error(runtime) naming the file once it passes `limit` bytes
  // (0 = no limit), without reading more than limit + 1 bytes.
  std::string read_all(uint64_t limit);

 private:
  std::string path_;
  int fd_ = -1;
  bool owned_ = false, regular_ = false;
};

// A whole input ("-" = stdin) as bytes, at most input_limit() of them. Throws Error(runtime)
// naming the file for what InputFile refuses, I/O errors and a larger input.
std::string read_text(const std::string& path);

// What an output path (-o FILE, --trace FILE, ...) names, and so how it is written. Decided from
// the path alone (lstat/readlink; nothing is opened or written), as LLVM's ToolOutputFile and the
// GNU tools do:
enum class OutputKind {
  standard_output,  // "-" or /dev/stdout: the process's stdout
  descriptor,       // /dev/stderr, /dev/fd/N, /proc/self/fd/N: that open descriptor, written in place
  direct,           // a character device (/dev/null) or a FIFO: opened and written, never renamed over
  atomic,           // a regular file or a new name: a temporary renamed over it once complete
};
struct OutputTarget {
  OutputKind kind = OutputKind::atomic;
  std::string path;  // what is written: symlinks resolved (their target is written, not replaced)
  int fd = -1;       // the descriptor, for standard_output and descriptor
};
// Symlinks are followed (up to 40) at every step, so a link to a regular file writes the file it
// names (atomically, in that file's directory) and a link to /dev/null writes /dev/null. Throws
// Error(runtime) naming `path` for a directory, a block device, a socket or a symlink loop.
OutputTarget classify_output(const std::string& path);

// Writes `path` as classify_output says: a regular file or new name atomically (the bytes go to
// an unnamed file, Linux O_TMPFILE, elsewhere a hidden temporary beside it, linked or renamed into
// place only once complete, so a failed or killed run, even by SIGKILL, never leaves a partial
// file, nor a temporary one on Linux); "-" and /dev/std* to that stream; a character device or
// FIFO directly, without rename. Every write is checked.
void write_atomic(const std::string& path, const std::string& contents);
// Checks, before a long run, that `path` can be written as classify_output says: its directory
// exists (for a new or regular file). Throws Error(runtime) naming `path` otherwise.
void check_output_path(const std::string& path);
// Writes the file `from` to the output `to` (as write_atomic does: atomically, or directly for
// stdout, a FIFO or a device), streaming it.
void copy_to_output(const std::string& from, const std::string& to);
// A file or directory name made from user text (an op's name): the one place every tool turns a
// name into a path component. '/', '\\', control characters and NUL become '_', as does a
// leading '.' (no ".", "..", or hidden names); an empty name becomes `fallback`; the result is
// cut to 128 bytes. So a name can never lead out of the directory it is made in.
std::string safe_file_name(std::string_view name, std::string_view fallback = "op");
// safe_file_name() of each, made unique in order: a name already given (after cleaning, "a/b"
// and "a_b" are the same) gets the first free suffix ".2", ".3", ...
std::vector<std::string> unique_file_names(const std::vector<std::string>& names, std::string_view fallback = "op");
// Whether `rel` is a relative path that stays inside the directory it is resolved against: not
// empty, not absolute, no ".." component, no NUL. (Readers of artifacts check every path they follow.)
bool is_contained_path(std::string_view rel);

// Creates a directory (and parents); throws Error(runtime) if it cannot.
void make_dirs(const std::string& path);

// A file written in pieces (streamed) that appears under its name only when commit() succeeds:
// the bytes go to an unnamed file (as write_atomic), linked or renamed into place by commit().
// Destroyed without commit() (an exception on the way), the file is discarded, so a failure never
// leaves a partial file. Small writes are buffered; large ones go straight to the file. A path
// that classify_output does not call `atomic` (stdout, a FIFO, a device) is written directly.
// Throws Error(runtime) naming `path` on any I/O failure.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t size);
  void write(std::string_view text) { write(text.data(), text.size()); }
  void commit();
  const std::string& path() const { return path_; }

 private:
  void flush_buffer();
  void write_through(const char* data, size_t size);
  std::string path_, temp_path_;
  OutputTarget target_;
  int fd_ = -1;
  std::vector<char> buffer_;
  size_t used_ = 0;
};

// How StagedDirectory treats a directory that already exists at its path.
struct StageOptions {
  // Replace a non-empty directory even when it holds no sattn output (--force).
  bool force = false;
  // Add the entries to the existing directory instead of replacing it (sattn-emit --out-stem
  // DIR/NAME, which names files inside a directory the user keeps): each file is replaced
  // atomically, the `last` entry (the envelope) removed first and moved in last.
  bool merge = false;
};

// A directory built under a temporary name and moved to `path` by commit(), so a failed run
// leaves nothing there. `path` is resolved first (a symlink to a directory stands for its
// target, which is what gets replaced; the link stays), and the temporary is created beside the
// target (the same file system, so the final rename is atomic); missing parents are created only
// on commit. If the target exists, commit() replaces it whole, atomically (renameat2
// RENAME_EXCHANGE, then the old tree is removed): old and new files never mix, and of two
// concurrent writers the last to commit wins whole (commits in one parent are serialized by an
// flock on it). A non-empty target that holds no sattn output (no artifacts.json, result.json or
// bench.json, at its top or in each subdirectory) is refused, when this object is created, unless
// options.force: a mistyped --out-dir never deletes a user's directory. The current directory and
// those above it are always refused. Destroyed without commit(), the staged tree is removed. The
// staging directory is hidden (".sattn-stage-XXXXXX") and locked while this object lives; one
// left behind by a run killed with SIGKILL is removed by the next StagedDirectory created beside it.
class StagedDirectory {
 public:
  explicit StagedDirectory(std::string path, StageOptions options = {});
  ~StagedDirectory();
  StagedDirectory(const StagedDirectory&) = delete;
  StagedDirectory& operator=(const StagedDirectory&) = delete;

  // Where to write the directory's contents until commit().
  const std::string& staging_path() const { return staging_; }
  const std::string& path() const { return path_; }
  // `last`: an entry (such as an envelope naming the other files) moved into an existing
  // directory after all the others, so a reader that sees it finds what it names.
  void commit(const std::string& last = "");

 private:
  void check_replaceable() const;
  std::string path_, target_, parent_, staging_;
  StageOptions options_;
  int lock_fd_ = -1;  // an flock held on the staging directory: a run that finds it unlocked removes it
  bool committed_ = false;
};

// True if stderr is a terminal (progress output goes there only then).
bool stderr_is_tty();

}  // namespace sattn
