// Attention kernels on the host CPU (DESIGN §5 "CPU").
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

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

// The same-quantized reference (sattn-quant(7)): Q, K, V quantized by `scheme` at the op's
// precision (i8 or i4) exactly as the fast kernel quantizes them (the same integer codes and scale
// tables, the mean-Q bias of smooth_q from the same fp32 values), then scores, softmax, the
// quantization of P (round half to even of p * p_max, p = exp(s - row max)) and P.V in double.
// Differs from the fast kernel only where exp() in fp32 and in double round P to different
// integers. The second form uses the op's scheme (quant_scheme_of: the recommended one by default).
Tensor reference_attention_quantized(const Op& op, const QuantScheme& scheme, const Layout& layout, const Tensor& q,
                                     const Tensor& k, const Tensor& v);
Tensor reference_attention_quantized(const Op& op, const Layout& layout, const Tensor& q, const Tensor& k,
                                     const Tensor& v);
// The instruction sets the fast CPU kernels are compiled for (x86-64: the portable baseline, and
// x86-64-v3 / x86-64-v4 copies chosen at run time; other architectures: baseline only). amx is the
// avx512 copy plus AMX tiles (tdpbf16ps) for the bf16 precision's block tiles: it needs AMX-TILE,
// AMX-BF16 and AVX512-BF16 from CPUID, the tile state enabled in XCR0, and the kernel's
// permission for the tile data (arch_prctl ARCH_REQ_XCOMP_PERM, asked once per process).
enum class CpuIsa { baseline, avx2, avx512, amx };
std::string_view to_string(CpuIsa);
// The copy of the fast CPU kernels this process runs: the environment variable SATTN_CPU_ISA
// (baseline, avx2, avx512, amx) when set, else the best one this CPU supports. Decided once per
// process. Throws Error(invalid_input) when SATTN_CPU_ISA names an unknown ISA, one this build
// has no copy of, or one this CPU lacks.
CpuIsa cpu_isa();
// The copies this build has that this CPU can run, baseline first.
std::vector<CpuIsa> cpu_isas_available();

struct FastOptions {
  int threads = 0;  // 0: hardware concurrency
  std::function<void(int64_t done, int64_t total)> progress = {};  // row tasks done, from the calling thread (empty: none)
};
// The fast fused kernel: online softmax over key blocks, SIMD, threads over
// batch x heads x row blocks; work proportional to the layout's allowed pairs. Applies the op's
// precision (bf16 rounding, i8/i4 quantization with resolve_scales()).
Tensor fast_attention(const Op& op, const Layout& layout, const Tensor& q, const Tensor& k, const Tensor& v,
                      const FastOptions& = {});

// The fast kernel into caller memory: q [batch, heads, seq_len, head_dim], k and v [batch,
// kv_heads, kv_len, head_dim], out like q (overwritten). At fp32 q/k/v are read in place (no copy);
// bf16 and i8/i4 read converted copies. lse (nullable) receives [batch, heads, seq_len] floats:
// the natural-log log-sum-exp of each row's scaled scores over its allowed keys (the values
// the forward used: bf16-rounded / quantized inputs), -inf for a row with no allowed key (whose
// output is 0). out and lse must not overlap q, k or v. Throws Error(invalid_input) when a shape
// does not match the op or the layout, or a pointer is null.
void fast_attention_into(const Op&, const Layout&, TensorView q, TensorView k, TensorView v, MutableTensorView out,
                         float* lse, const FastOptions& = {});

// Backward by recomputation from lse (FlashAttention-2): P is rebuilt one row (or tile) at a time
// and never materialized. Inputs: q/k/v as in the forward, out and dout [batch, heads, seq_len,
// head_dim], lse as written by fast_attention_into. Writes (overwrites) dq [B, H, S, D] and dk,
// dv [B, KVH, KV, D] (GQA: the contributions of the query heads of one KV head summed).
// The layout is a constant of the gradient (also when it was chosen from the data). fp32 and
// bf16 only (bf16: straight-through on the input rounding, docs/decisions.md); i8/i4 throw
// Error(invalid_input). Rows with no allowed key contribute nothing and get dq = 0.
void fast_attention_backward(const Op&, const Layout&, TensorView q, TensorView k, TensorView v, TensorView out,
                             TensorView dout, const float* lse, MutableTensorView dq, MutableTensorView dk,
                             MutableTensorView dv, const FastOptions& = {});

struct Gradients {
  Tensor dq, dk, dv;
};
// Double-precision reference backward over a layout: explicit softmax per row, double
// accumulation of every gradient, fp32 semantics (the op's precision is not applied, like
// reference_attention). dout is [batch, heads, seq_len, head_dim].
Gradients reference_attention_backward(const Op&, const Layout&, const Tensor& q, const Tensor& k, const Tensor& v,
                                       const Tensor& dout);
// Reference log-sum-exp per row ([batch, heads, seq_len], natural log, -inf for empty rows), in
// double from the same row keys as reference_attention.
std::vector<double> reference_lse(const Op&, const Layout&, const Tensor& q, const Tensor& k);

// Errors of `out` against `ref`: max-norm (max|out - ref| and that divided by max|ref|), relative
// L1 (sum|out - ref| / sum|ref|) and cosine similarity (the metrics SageAttention reports).
struct ErrorStats {
  double max_abs = 0;
  double max_rel = 0;
  double rel_l1 = 0;
  double cosine = 1;
  bool finite = true;  // false if out has NaN/Inf
};
ErrorStats compare(const Tensor& out, const Tensor& ref);
// Documented max-norm tolerance against the fp32 reference: fp32 1e-4 (fast kernel), bf16 1e-2,
// i8 5e-2; i4 none (infinity): i4 is judged by relative L1 and cosine (tolerance_of).
double tolerance(Precision);

// What a check asks of an output (docs/decisions.md "Check metrics per precision"); infinite /
// -1 bounds are not checked.
struct Tolerance {
  double max_rel = std::numeric_limits<double>::infinity();
  double rel_l1 = std::numeric_limits<double>::infinity();
  double min_cosine = -1;
  bool same_quantized = false;  // compare with reference_attention_quantized, not the fp32 reference
};
// fp32, bf16, i8: max-norm (tolerance()). i4 with a scheme other than per-tensor: relative L1
// <= 2e-1 and cosine >= 0.98. i4 per-tensor keeps no accuracy promise: it is checked against the
// same-quantized reference (max-norm 1e-4), which catches kernel bugs only.
Tolerance tolerance_of(Precision, const QuantScheme&);
bool within(const ErrorStats&, const Tolerance&);
// "relative L1 <= 2.0e-01, cosine >= 0.980", for messages.
std::string describe(const Tolerance&);

}  // namespace sattn
