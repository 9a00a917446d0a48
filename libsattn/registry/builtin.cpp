// The built-in backends: the one place that knows them all (ARCHITECTURE.md). It registers each
// backend's profile sections with that backend's own loader, so load_profile() (formats, which
// knows no backend) checks every section; this object file is part of libsattn, so the
// registrations happen when the library is loaded, before any profile can be read.
#include <algorithm>

#include "backends/cpu/run.hpp"
#include "backends/cuda/run_cuda.hpp"
#include "backends/imc/imc.hpp"
#include "backends/rocc/accel.hpp"
#include "backends/rocc/energy.hpp"
#include "backends/rocc/sim_run.hpp"
#include "backends/rvv/run_rvv.hpp"
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

const std::vector<const Backend*>& backend_registry() {
  static const std::vector<const Backend*> backends = {&cpu_backend(), &cuda_backend(), &rvv_backend(), &rocc_backend(),
                                                       &imc_backend()};
  return backends;
}

const Backend* find_backend(std::string_view requested) {
  const std::string name = canonical_backend_name(requested);  // "sim", "accel": deprecated names of rocc
  const auto& all = backend_registry();
  const auto it = std::find_if(all.begin(), all.end(), [&](const Backend* b) { return b->name() == name; });
  return it == all.end() ? nullptr : *it;
}

void require_supported(const Backend& backend, const std::vector<BackendInput>& items) {
  for (const BackendInput& item : items) {
    const Op& op = item.plan.op;
    const bool integer = op.precision == Precision::i8 || op.precision == Precision::i4;
    if (integer && op.quant_scheme && !op.quant_scheme->is_per_tensor() && !backend.capabilities().quant_schemes) {
      std::string able;
      for (const Backend* b : backend_registry())
        if (b->capabilities().quant_schemes) able += (able.empty() ? "" : ", ") + std::string(b->name());
      throw Error(ExitCode::invalid_input,
                  "op " + op.name + ": backend " + std::string(backend.name()) + " cannot run quant_scheme " +
                      to_string(*op.quant_scheme) + ": it quantizes with one scale per tensor only (quant_scheme " +
                      "per-tensor); backends that can: " + able,
                  op.loc_of("quant_scheme"));
    }
    if (const int64_t widest = backend.capabilities().max_head_dim; widest > 0 && op.shape.head_dim > widest) {
      std::string able;
      for (const Backend* b : backend_registry())
        if (b->capabilities().max_head_dim == 0 || b->capabilities().max_head_dim >= op.shape.head_dim)
          able += (able.empty() ? "" : ", ") + std::string(b->name());
      throw Error(ExitCode::invalid_input,
                  "op " + op.name + ": backend " + std::string(backend.name()) + " cannot run head_dim " +
                      std::to_string(op.shape.head_dim) + ": at most " + std::to_string(widest) +
                      " (its capabilities' max_head_dim); backends that can: " + able,
                  op.loc_of("head_dim"));
    }
    if (integer && op.quant_scheme && !op.quant_scheme->is_per_tensor()) {
      const auto has_pv = [&](const Backend& b) {
        const BackendCapabilities c = b.capabilities();
        return c.quant_schemes && std::find(c.quant_pv.begin(), c.quant_pv.end(), op.quant_scheme->pv) != c.quant_pv.end();
      };
      if (!has_pv(backend)) {
        std::string able, have;
        for (const Backend* b : backend_registry())
          if (has_pv(*b)) able += (able.empty() ? "" : ", ") + std::string(b->name());
        for (PvPrecision pv : backend.capabilities().quant_pv) have += (have.empty() ? "" : ", ") + std::string(to_string(pv));
        throw Error(ExitCode::invalid_input,
                    "op " + op.name + ": backend " + std::string(backend.name()) + " cannot run quant_scheme " +
                        to_string(*op.quant_scheme) + ": it has no P.V datapath for pv=" +
                        std::string(to_string(op.quant_scheme->pv)) + " (it has pv=" + have + "); backends that can: " + able,
                    op.loc_of("quant_scheme"));
      }
    }
    if (!op.softcap || backend.capabilities().softcap) continue;
    std::string able;
    for (const Backend* b : backend_registry())
      if (b->capabilities().softcap) able += (able.empty() ? "" : ", ") + std::string(b->name());
    throw Error(ExitCode::usage,
                "op " + op.name + ": backend " + std::string(backend.name()) + " cannot run softcap (logit soft-capping); " +
                    (able.empty() ? std::string("no backend can") : "backends that can: " + able),
                op.loc_of("softcap"));
  }
}

}  // namespace sattn
