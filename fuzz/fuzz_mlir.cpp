// libFuzzer target: the MLIR op reader (parse_mlir_ops).
#include <cstdint>
#include <string_view>

#include "common.hpp"
#include "formats/op_io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> warnings;
  SATTN_FUZZ_GUARD("fuzz.mlir", sattn::parse_mlir_ops(text, "fuzz.mlir", &warnings));
  return 0;
}
