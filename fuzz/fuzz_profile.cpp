// libFuzzer target: the YAML profile reader (load_profile: schema sattn.profile/v1, `base:`
// chains, every backend section's checker). The input is written to a temporary .yaml file
// because load_profile() takes a path.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "common.hpp"
#include "formats/profile.hpp"

namespace {
std::string temp_path() {
  static const std::string path = "/tmp/sattn-fuzz-profile-" + std::to_string(getpid()) + ".yaml";
  return path;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = temp_path();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size) std::fwrite(data, 1, size, f);
  std::fclose(f);
  SATTN_FUZZ_GUARD(path, {
    const auto p = sattn::load_profile(path);
    (void)sattn::profile_select(p);
    (void)sattn::profile_defaults(p);
    (void)p.merged();
  });
  std::remove(path.c_str());
  return 0;
}
