// Attention on CUDA device memory through the cuda backend's kernels, for callers that already hold
// device tensors (the Python package's torch operator on CUDA tensors). Forward with the
// log-sum-exp, and the backward pass (FlashAttention-2 recomputation; sattn-run(1), "cuda").
#pragma once
#include <memory>
#include <string>

#include "sattn/layout.hpp"
#include "sattn/op.hpp"

namespace sattn {

// Whether this libsattn was built with the CUDA kernels (nvcc found at configure time).
bool cuda_built();

// One op's layout prepared on the device, run many times. Pointers are device memory on the current
// device; launches go to the default stream and return before the kernels finish. Throws
// Error(external_tool) when sattn was built without the CUDA kernels or no device is present,
// Error(invalid_input) for an op the kernels do not run (i8/i4; head_dim above 256), and
// Error(runtime) when CUDA fails.
class CudaAttention {
 public:
  // bf16: q, k and v hold bfloat16 (the tensor-core kernels for head_dim 64 or 128 on dense, window
  // and block layouts); otherwise fp32.
  CudaAttention(const Op& op, Spec spec, const SpecParams& params, const Layout& layout, bool bf16);
  ~CudaAttention();
  CudaAttention(const CudaAttention&) = delete;
  CudaAttention& operator=(const CudaAttention&) = delete;
  // "tensor-core" or "simt".
  std::string kernel() const;
  // o: fp32 [batch, heads, seq_len, head_dim]; lse: fp32 [batch, heads, seq_len] or null.
  void forward(const void* q, const void* k, const void* v, float* o, float* lse) const;
  // From the forward's o and lse and dout (fp32 [batch, heads, seq_len, head_dim]): dq (fp32, q's
  // shape), dk and dv (fp32, k's shape; GQA sums the query heads of each KV head), overwritten.
  void backward(const void* q, const void* k, const void* v, const float* o, const float* dout, const float* lse,
                float* dq, float* dk, float* dv) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sattn
