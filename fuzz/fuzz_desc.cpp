// libFuzzer target: the .desc reader (parse_desc: `key = value` lines).
#include <cstdint>
#include <string_view>

#include "formats/artifacts_format.hpp"
#include "common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  SATTN_FUZZ_GUARD("fuzz.desc", sattn::artifacts_detail::parse_desc(text, "fuzz.desc"));
  return 0;
}
