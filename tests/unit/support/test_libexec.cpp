// libexec_dir(): the helpers' directory is found from the library's own location (dladdr), not
// from the host executable's, and SATTN_LIBEXEC_DIR overrides it. (tests/cli/libexec.sh runs a
// tool copied outside bin/ and a Python process that load the same library.)
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>

#include "support/process.hpp"

using namespace sattn;
namespace fs = std::filesystem;

TEST_CASE("libexec_dir: beside the library, or SATTN_LIBEXEC_DIR") {
  const char* saved = std::getenv("SATTN_LIBEXEC_DIR");
  const std::string keep = saved ? saved : "";
  unsetenv("SATTN_LIBEXEC_DIR");
  // The library is in build/lib (this executable in build/tests: cli.libexec is the test that
  // tells the library's location from the executable's, with a tool copied elsewhere).
  CHECK(fs::equivalent(libexec_dir(), SATTN_BUILD_LIBEXEC_DIR));
  setenv("SATTN_LIBEXEC_DIR", "/nonexistent/helpers", 1);
  CHECK(libexec_dir() == "/nonexistent/helpers");
  if (saved)
    setenv("SATTN_LIBEXEC_DIR", keep.c_str(), 1);
  else
    unsetenv("SATTN_LIBEXEC_DIR");
}
