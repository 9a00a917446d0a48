// What every backend takes (one op: its plan and, from artifacts, its layout and data) and what it
// does with its output: compare it with the double-precision reference on the
// same layout, at the tolerance of the precision it ran at.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sattn/attention.hpp"
#include "sattn/backend.hpp"
#include "sattn/plan.hpp"

namespace sattn {

struct CpuRun {
  Spec spec = Spec::dense;
  SpecParams params;
  Tensor out;
  ErrorStats error;
  double tolerance = 0;  // the main bound of `tol` (max_rel, or rel_l1 for i4)
  Tolerance tol;
  bool passed = false;
  nlohmann::json result;  // sattn.result/v1
};

// The check every backend run on the host makes: `r.out` against the CPU reference on the same
// layout at the precision's tolerance. Fills r.error, r.tolerance, r.passed; returns the result's
// "check" object and the reference's wall time in `reference_ms`.
// `check` decides full / sample / none (the result's "check" says which, with the rows checked);
// `progress` gets the "check" stage.
nlohmann::json check_against_reference(const Op& op, const Layout& layout, const QKV& data, CpuRun& r,
                                       double& reference_ms, const CheckOptions& check = {},
                                       const ProgressFn& progress = {});

// The query rows a check visits in every (batch, head): all of them (full), a seeded sample
// (CheckOptions), none. Sorted, unique.
std::vector<int64_t> check_rows(const Layout& layout, CheckMode mode, const CheckOptions& options);
// `layout` restricted to `rows` (the others get no keys): the reference over it visits only them.
Layout restrict_rows(const Layout& layout, const std::vector<int64_t>& rows);

// The line a failed check prints (located at the op by the caller): "output differs from the
// reference: max relative error 3.1e-02 > tolerance 1.0e-02".
std::string check_failure(const ErrorStats&, double tolerance);
// The same for a check by several metrics (i4: relative L1 and cosine).
std::string check_failure(const ErrorStats&, const Tolerance&);
// A run checked against the reference, as the registry's result (the failure line when it failed).
BackendResult checked_result(const nlohmann::json& result, const Tensor& out, const ErrorStats&, double tolerance,
                             bool passed);
// The same for a host-checked run (cpu, cuda).
BackendResult backend_result(const CpuRun&);

}  // namespace sattn
