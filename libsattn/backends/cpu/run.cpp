#include "backends/cpu/run.hpp"
#include "backends/cpu/kernel_fast_internal.hpp"

#include <chrono>
#include <optional>

namespace sattn {

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

CpuRun run_cpu(const Plan& plan, const Layout* given_layout, const QKV& data, const nlohmann::json& data_desc,
               const FastOptions& fast, const std::string& tool, const CheckOptions& check_options,
               const ProgressFn& progress) {
  const Op& op = plan.op;
  CpuRun r;
  r.spec = plan.spec;
  r.params = plan.params;

  auto t0 = std::chrono::steady_clock::now();
  std::optional<Layout> built;
  if (!given_layout) built = build_layout(op, r.spec, r.params, &data.q, &data.k);
  const Layout& layout = given_layout ? *given_layout : *built;
  const double layout_ms = given_layout ? 0.0 : ms_since(t0);

  t0 = std::chrono::steady_clock::now();
  r.out = fast_attention(op, layout, data.q, data.k, data.v, fast);
  const double kernel_ms = ms_since(t0);

  double reference_ms = 0;
  nlohmann::json check = check_against_reference(op, layout, data, r, reference_ms, check_options, progress);
  nlohmann::json j = result_header(plan, op, op.precision, "cpu", data_desc, layout, tool);
  j["check"] = std::move(check);
  // The copy of the kernels that ran (SATTN_CPU_ISA, else the best this CPU has): a property of
  // the machine, like the rounding it gives.
  j["cpu_isa"] = std::string(to_string(cpu_isa()));
  // Whether this op ran on the AMX bf16 tiles (the amx copy, bf16, a block layout, head_dim a
  // multiple of 32): they round P to bf16 for P.V, the other tiles keep it in fp32.
  j["cpu_amx_tiles"] = fast::amx_bf16_tiles(op, layout);
  // Wall time only here, so results diff byte for byte once "timing" is dropped (docs/robustness.md).
  j["timing"] = {{"layout_ms", layout_ms}, {"kernel_ms", kernel_ms}, {"reference_ms", reference_ms}};
  r.result = std::move(j);
  return r;
}

}  // namespace sattn
