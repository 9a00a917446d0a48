// Run-time dispatch of the fast CPU kernels (docs/decisions.md "CPU kernels: one source, one object
// per ISA"). tests/arch/cpu_isa.sh runs this and the fast-kernel tests once per ISA with
// SATTN_CPU_ISA set, so that every copy is compared with the reference.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "sattn/attention.hpp"
#include "sattn/error.hpp"

using namespace sattn;

TEST_CASE("cpu_isa: SATTN_CPU_ISA selects the copy, or fails with a message that names the choices") {
  const auto available = cpu_isas_available();
  REQUIRE(!available.empty());
  CHECK(available.front() == CpuIsa::baseline);
  CHECK(std::is_sorted(available.begin(), available.end()));
  const char* env = std::getenv("SATTN_CPU_ISA");
  const std::string want = env ? env : "";
  if (want.empty()) {
    CHECK(cpu_isa() == available.back());  // the best the CPU has
    return;
  }
  const bool known = want == "baseline" || want == "avx2" || want == "avx512" || want == "amx";
  const bool usable = std::any_of(available.begin(), available.end(), [&](CpuIsa i) { return to_string(i) == want; });
  if (usable) {
    CHECK(std::string(to_string(cpu_isa())) == want);
  } else {
    std::string message;
    try {
      cpu_isa();
    } catch (const Error& e) {
      message = e.what();
    }
    CHECK(message.find("SATTN_CPU_ISA=" + want + ": ") != std::string::npos);
    if (known)  // a CPU without it, or a build without dispatch (baseline only)
      CHECK((message.find("does not support") != std::string::npos || message.find("has no") != std::string::npos));
    else
      CHECK(message.find("unknown ISA") != std::string::npos);
  }
}
