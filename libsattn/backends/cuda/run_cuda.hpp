// `sattn run --backend cuda`: one op on the GPU (libsattn/cuda kernels), checked against the CPU
// reference like the cpu backend. Built into libsattn always; without the CUDA kernels (nvcc not
// found at configure time) or without a CUDA device it fails with exit 4.
#pragma once
#include <string>

#include "backends/backend.hpp"
#include "formats/data.hpp"
#include "sattn/tensor.hpp"

namespace sattn {

// Throws Error(external_tool) when no CUDA device can be used (message names the reason).
void require_cuda_device();

// For `sattn doctor`: runs a small bf16 op (seq 100, head_dim 64, causal, GQA) on the tensor-core
// kernel and a small fp32 one on the SIMT kernel, each checked against a double-precision softmax.
struct CudaProbe {
  std::string status;   // "ok", "missing" (no kernels, no device) or "broken"
  std::string version;  // device name and driver version
  std::string detail;
};
CudaProbe probe_cuda();
// Runs a plan on the CUDA kernels: layout (given or built), data uploaded (bf16 rounded to
// nearest even for bf16 ops), kernel timed with CUDA events (median of 5 runs after a warm-up),
// output checked against the reference at the op precision's tolerance. The result is the cpu
// backend's sattn.result/v1 with backend "cuda", a "cuda" object (device, kernel, mode) and the
// times in "timing". fp32 and bf16 ops only (others: Error(invalid_input)).
CpuRun run_cuda(const Plan&, const Layout* layout, const QKV& data, const nlohmann::json& data_desc,
                const std::string& tool);
// The forward on caller device memory (the C API's CUDA tensors): q/k/v/out are CUDA pointers,
// float32, shaped like the op (checked here); fp32 ops only (the bf16 kernel reads bf16 data);
// lse must be null (the kernels do not write it). Synchronous. Without the kernels or a device:
// Error(external_tool).
void cuda_forward_device(const Op&, const Layout&, TensorView q, TensorView k, TensorView v, MutableTensorView out,
                         float* lse);

}  // namespace sattn

namespace sattn {
const Backend& cuda_backend();
}  // namespace sattn
