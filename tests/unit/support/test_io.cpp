// Output paths (libsattn/support/io.cpp, classify_output / write_atomic / AtomicFile): a regular
// file or new name is replaced atomically, a symlink's target is written (the link stays), a FIFO
// or a descriptor is written in place, a directory is an error. Every file this test writes is
// in its own mkdtemp directory; device paths (/dev/null, /dev/stdout) are only classified (lstat,
// readlink), never opened.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "sattn/error.hpp"
#include "support/io.hpp"

namespace {

using namespace sattn;
namespace fs = std::filesystem;

struct ScratchDir {
  fs::path path;
  ScratchDir() {
    std::string tmpl = (fs::temp_directory_path() / "sattn_io_test_XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

ExitCode code_of(const std::string& path) {
  try {
    classify_output(path);
  } catch (const Error& e) {
    return e.code();
  }
  return ExitCode::ok;
}

}  // namespace

TEST_CASE("classify_output: streams and descriptors by name, never by opening them") {
  CHECK(classify_output("-").kind == OutputKind::standard_output);
  CHECK(classify_output("/dev/stdout").kind == OutputKind::standard_output);
  CHECK(classify_output("/dev/stdout").fd == 1);
  CHECK(classify_output("/dev/stderr").kind == OutputKind::descriptor);
  CHECK(classify_output("/dev/stderr").fd == 2);
  CHECK(classify_output("/dev/fd/7").fd == 7);
  CHECK(classify_output("/proc/self/fd/12").kind == OutputKind::descriptor);
  CHECK(classify_output("/proc/self/fd/12").fd == 12);
}

TEST_CASE("classify_output: a character device is written directly (lstat only)") {
  const OutputTarget t = classify_output("/dev/null");
  CHECK(t.kind == OutputKind::direct);
  CHECK(t.path == "/dev/null");
}

TEST_CASE("classify_output: regular, new, FIFO, symlinks, directory") {
  ScratchDir d;
  std::ofstream(d / "regular") << "x";
  REQUIRE(::mkfifo((d / "fifo").c_str(), 0600) == 0);
  fs::create_directory(d / "dir");
  fs::create_symlink("regular", d / "link");
  fs::create_symlink(d / "link", d / "link2");
  fs::create_symlink("/dev/null", d / "to-null");
  fs::create_symlink("fifo", d / "to-fifo");
  fs::create_symlink("missing", d / "dangling");
  fs::create_symlink("loop", d / "loop");
  fs::create_symlink("dir", d / "to-dir");

  CHECK(classify_output(d / "regular").kind == OutputKind::atomic);
  CHECK(classify_output(d / "new").kind == OutputKind::atomic);
  CHECK(classify_output(d / "fifo").kind == OutputKind::direct);
  CHECK(classify_output(d / "link").kind == OutputKind::atomic);
  CHECK(classify_output(d / "link").path == d / "regular");
  CHECK(classify_output(d / "link2").path == d / "regular");
  CHECK(classify_output(d / "to-null").kind == OutputKind::direct);
  CHECK(classify_output(d / "to-null").path == "/dev/null");
  CHECK(classify_output(d / "to-fifo").kind == OutputKind::direct);
  CHECK(classify_output(d / "dangling").kind == OutputKind::atomic);
  CHECK(classify_output(d / "dangling").path == d / "missing");
  CHECK(code_of(d / "dir") == ExitCode::runtime);
  CHECK(code_of(d / "to-dir") == ExitCode::runtime);
  CHECK(code_of(d / "loop") == ExitCode::runtime);
}

TEST_CASE("write_atomic: a symlink's target is written and the link stays") {
  ScratchDir d;
  std::ofstream(d / "results.json") << "old";
  fs::create_symlink("results.json", d / "link");
  write_atomic(d / "link", "new\n");
  CHECK(fs::is_symlink(d / "link"));
  CHECK(slurp(d / "results.json") == "new\n");
  // A dangling link creates its target, as cp and shell redirection do.
  fs::create_symlink("made", d / "dangling");
  write_atomic(d / "dangling", "made\n");
  CHECK(fs::is_symlink(d / "dangling"));
  CHECK(slurp(d / "made") == "made\n");
}

TEST_CASE("write_atomic: a FIFO is written through, not replaced") {
  ScratchDir d;
  const std::string fifo = d / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  std::string got;
  std::thread reader([&] { got = slurp(fifo); });
  write_atomic(fifo, "through the pipe\n");
  reader.join();
  CHECK(got == "through the pipe\n");
  struct stat st {};
  REQUIRE(::lstat(fifo.c_str(), &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));
  CHECK(std::distance(fs::directory_iterator(d.path), fs::directory_iterator()) == 1);  // no temporary left
}

TEST_CASE("write_atomic and AtomicFile: a descriptor path writes the open descriptor") {
  ScratchDir d;
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  // A link in the scratch directory to /proc/self/fd/N: the writer must follow it to the descriptor.
  fs::create_symlink("/proc/self/fd/" + std::to_string(fds[1]), d / "to-pipe");
  write_atomic(d / "to-pipe", "abc");
  {
    AtomicFile f(d / "to-pipe");
    f.write("def");
    f.commit();
  }
  ::close(fds[1]);
  char buf[16] = {};
  const ssize_t n = ::read(fds[0], buf, sizeof buf);
  ::close(fds[0]);
  CHECK(std::string(buf, n > 0 ? size_t(n) : 0) == "abcdef");
  CHECK(fs::is_symlink(d / "to-pipe"));
}

TEST_CASE("write_atomic: a directory is an error and stays as it was") {
  ScratchDir d;
  fs::create_directory(d / "dir");
  std::ofstream(d / "dir/keep") << "k";
  CHECK_THROWS_AS(write_atomic(d / "dir", "x"), Error);
  CHECK(slurp(d / "dir/keep") == "k");
}

TEST_CASE("check_output_path: a missing directory is refused before any work") {
  ScratchDir d;
  CHECK_THROWS_AS(check_output_path(d / "no/such/x.fst"), Error);
  CHECK_NOTHROW(check_output_path(d / "x.fst"));
  CHECK(!fs::exists(d / "x.fst"));
}
