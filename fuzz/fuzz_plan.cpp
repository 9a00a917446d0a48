// libFuzzer target: the plan reader (parse_plans: sattn.plan/v1 JSON Lines or bare ops, selected
// in-process).
#include <cstdint>
#include <string_view>

#include "common.hpp"
#include "sattn/select.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  SATTN_FUZZ_GUARD("fuzz.plan.json", sattn::parse_plans(text, "fuzz.plan.json", sattn::SelectOptions{}));
  return 0;
}
