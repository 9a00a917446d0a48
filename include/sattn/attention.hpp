// Attention kernels on the host CPU (DESIGN §5 "CPU").
#pragma once
#include <cstdint>
#include <functional>

#include "sattn/layout.hpp"
#include "sattn/op.hpp"
#include "sattn/tensor.hpp"

namespace sattn {

// The oracle: double accumulation, plain softmax over the allowed keys of each row, fp32
// semantics (no quantization). A row with no allowed key gives 0.
// allowed(b, h, i, j) decides the mask; h is the query head.
using MaskFn = std::function<bool(int64_t b, int64_t h, int64_t i, int64_t j)>;
Tensor reference_attention_masked(const Op& op, const Tensor& q, const Tensor& k, const Tensor& v, const MaskFn& allowed);
// Dense reference (only the causal rule applies).
Tensor reference_attention_dense(const Op& op, const Tensor& q, const Tensor& k, const Tensor& v);
// Sparse reference over a layout: visits only the layout's keys.
Tensor reference_attention(const Op& op, const Layout& layout, const Tensor& q, const Tensor& k, const Tensor& v);

struct FastOptions {
  int threads = 0;  // 0: hardware concurrency
  std::function<void(int64_t done, int64_t total)> progress;  // row tasks done, from the calling thread (empty: none)
};
// The fast fused kernel: online softmax over key blocks, SIMD, threads over
// batch x heads x row blocks; work proportional to the layout's allowed pairs. Applies the op's
// precision (bf16 rounding, i8/i4 quantization with resolve_scales()).
Tensor fast_attention(const Op& op, const Layout& layout, const Tensor& q, const Tensor& k, const Tensor& v,
                      const FastOptions& = {});

// Max-norm errors of `out` against `ref`: max|out - ref| and that divided by max|ref|.
struct ErrorStats {
  double max_abs = 0;
  double max_rel = 0;
  bool finite = true;  // false if out has NaN/Inf
};
ErrorStats compare(const Tensor& out, const Tensor& ref);
// Documented tolerance against the fp32 reference (relative, max-norm): fp32 1e-4 (fast kernel),
// bf16 1e-2, i8 5e-2, i4 2.5e-1 (docs/decisions.md).
double tolerance(Precision);

}  // namespace sattn
