// libFuzzer target: the .npy reader (parse_npy, then npy_to_tensor as the backends use it).
#include <cstdint>
#include <span>

#include "common.hpp"
#include "formats/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  SATTN_FUZZ_GUARD("fuzz.npy", {
    const auto arr = sattn::parse_npy(std::span<const uint8_t>(data, size), "fuzz.npy");
    (void)sattn::npy_to_tensor(arr, "fuzz.npy");
  });
  return 0;
}
