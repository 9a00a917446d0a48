// The cuda backend in the registry: the GPU kernels, checked against the reference on the host.
#include "backends/cuda/run_cuda.hpp"

namespace sattn {

namespace {

class CudaBackend final : public Backend {
 public:
  std::string_view name() const override { return "cuda"; }
  std::string_view summary() const override { return "NVIDIA GPU kernels (tensor-core bf16, SIMT fp32)"; }
  Target cost_target() const override { return Target::cpu; }
  BackendCapabilities capabilities() const override {
    return {{Precision::fp32, Precision::bf16}, true, false, "an NVIDIA GPU, and nvcc when sattn is configured",
            /*softcap=*/false, /*quant_schemes=*/false, /*max_head_dim=*/256};  // run_cuda's shared-memory tiles
  }
  void require_available(const BackendRunOptions&) const override { require_cuda_device(); }
  BackendResult run(const BackendInput& item, const QKV& data, const DataSource& src,
                    const BackendRunOptions& o) const override {
    const CancelScope cancel(o.cancel);  // this call's cancellation
    return backend_result(run_cuda(item.plan, item.layout ? &*item.layout : nullptr, data, describe(src), o.tool, o.check));
  }
};

}  // namespace

const Backend& cuda_backend() {
  static const CudaBackend backend;
  return backend;
}

}  // namespace sattn
