// The built-in backends' registrations that the parts below them cannot make themselves: each
// backend's profile sections are checked by that backend's own loader (ARCHITECTURE.md, R2), and
// load_profile() (formats) knows no backend. This object file is part of libsattn, so the
// registrations happen when the library is loaded, before any profile can be read.
#include "backends/imc/imc.hpp"
#include "backends/rocc/accel.hpp"
#include "backends/rocc/energy.hpp"
#include "backends/rvv/rvv_model.hpp"

namespace sattn {
namespace {

const bool registered = [] {
  rvv::register_rvv_profile_section();
  accel::register_accel_profile_section();
  register_energy_profile_section();
  register_imc_profile_section();
  return true;
}();

}  // namespace
}  // namespace sattn
