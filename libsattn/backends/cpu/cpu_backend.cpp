// The cpu backend in the registry: the fast fused kernel, checked against the reference.
#include "backends/cpu/run.hpp"

namespace sattn {

namespace {

class CpuBackend final : public Backend {
 public:
  std::string_view name() const override { return "cpu"; }
  std::string_view summary() const override { return "host kernels: fused online softmax, SIMD, threads"; }
  Target cost_target() const override { return Target::cpu; }
  BackendCapabilities capabilities() const override {
    return {{Precision::fp32, Precision::bf16, Precision::i8, Precision::i4}, true, true, "", /*softcap=*/true,
            /*quant_schemes=*/true};
  }
  BackendResult run(const BackendInput& item, const QKV& data, const DataSource& src,
                    const BackendRunOptions& o) const override {
    const CancelScope cancel(o.cancel);  // this call's cancellation
    FastOptions fast;
    fast.threads = o.threads;
    if (o.progress) fast.progress = [&](int64_t done, int64_t total) { o.progress({"kernel", double(done), double(total)}); };
    return backend_result(run_cpu(item.plan, item.layout ? &*item.layout : nullptr, data, describe(src), fast, o.tool,
                                  o.check, o.progress));
  }
};

}  // namespace

const Backend& cpu_backend() {
  static const CpuBackend backend;
  return backend;
}

}  // namespace sattn
