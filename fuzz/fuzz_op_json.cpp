// libFuzzer target: the JSON op reader (parse_json_ops: sattn.op/v1, arrays, JSON Lines, plans).
#include <cstdint>
#include <string_view>

#include "common.hpp"
#include "formats/op_io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> warnings;
  SATTN_FUZZ_GUARD("fuzz.json", sattn::parse_json_ops(text, "fuzz.json", &warnings));
  return 0;
}
