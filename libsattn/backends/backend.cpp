#include "backends/backend.hpp"

#include <chrono>

#include "support/text_table.hpp"

namespace sattn {

nlohmann::json check_against_reference(const Op& op, const Layout& layout, const QKV& data, CpuRun& r,
                                       double& reference_ms) {
  const auto t0 = std::chrono::steady_clock::now();
  const Tensor ref = reference_attention(op, layout, data.q, data.k, data.v);
  reference_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  r.error = compare(r.out, ref);
  r.tolerance = tolerance(op.precision);
  r.passed = r.error.finite && r.error.max_rel <= r.tolerance;
  return {{"reference", "cpu reference: fp32 inputs, double accumulation"},
          {"max_abs_error", r.error.finite ? nlohmann::json(r.error.max_abs) : nlohmann::json("inf")},
          {"max_rel_error", r.error.finite ? nlohmann::json(r.error.max_rel) : nlohmann::json("inf")},
          {"tolerance", r.tolerance},
          {"passed", r.passed}};
}

std::string check_failure(const ErrorStats& e, double tolerance) {
  return "output differs from the reference: max relative error " + (e.finite ? format_sci(e.max_rel) : std::string("inf")) +
         " > tolerance " + format_sci(tolerance);
}

BackendResult checked_result(const nlohmann::json& result, const Tensor& out, const ErrorStats& error, double tolerance,
                             bool passed) {
  BackendResult b;
  b.json = result.dump();
  b.passed = passed;
  if (!passed) b.failures.push_back(check_failure(error, tolerance));
  b.out = out;
  return b;
}

BackendResult backend_result(const CpuRun& r) { return checked_result(r.result, r.out, r.error, r.tolerance, r.passed); }

}  // namespace sattn
