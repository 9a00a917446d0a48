// `TOOL --version`: the version, and the git revision the build came from when it was built from a
// checkout (cmake/git_revision.cmake), as the bench provenance records it.
#include <string>

#include "cli/cli.hpp"
#include "sattn_git_revision.h"

namespace sattn {

std::string git_revision_built() { return SATTN_GIT_REVISION; }

std::string version_line(const std::string& prog) {
  const std::string rev = git_revision_built();
  return prog + " " SATTN_VERSION + (rev.empty() ? "" : " (git " + rev + ")");
}

}  // namespace sattn
