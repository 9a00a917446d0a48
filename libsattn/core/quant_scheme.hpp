// A quantization scheme applied to one op's Q, K, V (sattn/quant.hpp, sattn-quant(7)): the
// integer codes and scale tables that the same-quantized reference and the CPU kernel both read,
// so that the two share every integer rounding.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string_view>
#include <vector>

#include "sattn/op.hpp"
#include "sattn/quant.hpp"
#include "sattn/tensor.hpp"

namespace sattn {

// The scheme an op runs with at its precision when the backend can run every scheme: the op's
// quant_scheme, else the recommended one (i8, i4); per-tensor for fp32 and bf16 (unused there).
QuantScheme quant_scheme_of(const Op&);

// Round half to even of x / scale, clamped to [-qmax, qmax] (qmax <= 2^22); NaN gives 0. Inline
// and branch-free so that the loops over whole tensors vectorize.
inline int32_t quantize_code(float x, float scale, int32_t qmax) {
  const float limit = static_cast<float>(qmax);
  const float y = std::clamp(x / scale, -limit, limit);
  // Round half to even without libm: adding 1.5 * 2^23 leaves no fraction bits, so the sum is
  // rounded to an integer in the default mode (|y| <= 2^22; the constant is even, so ties go to
  // the even integer), and subtracting it back is exact.
  const float rounded = (y + 12582912.0f) - 12582912.0f;
  return y == y ? static_cast<int32_t>(rounded) : 0;
}

// y = H x for the orthonormal Sylvester-Hadamard matrix of order n (a power of two), in place.
void hadamard_inplace(float* x, int64_t n);

// One op's Q, K, V quantized by a scheme. Rows are addressed as in the tensors: q rows
// (b * heads + h) * seq_len + i, k/v rows (b * kv_heads + kvh) * kv_len + j.
struct QuantizedQKV {
  QuantScheme scheme;
  Precision precision = Precision::i8;
  int64_t batch = 0, heads = 0, kv_heads = 0, seq_len = 0, kv_len = 0, dim = 0;
  int32_t qk_max = 127;          // quant_max(precision)
  std::vector<int8_t> q_codes;   // [B, H, S, D]: round(q' / q_scale)
  std::vector<float> q_scale;    // [B, H, S]: each row's scale (expanded from the granularity)
  std::vector<int8_t> k_codes;   // [B, KVH, KV, D]
  std::vector<float> k_scale;    // [B, KVH, KV]
  // smooth_q: the per-block mean of the (rotated) Q, [B, H, ceil(S / block), D], and the smoothed
  // (rotated) K in fp32, [B, KVH, KV, D]; score(i, j) adds q_mean[block(i)] . k_smooth[j].
  std::vector<float> q_mean;
  std::vector<float> k_smooth;
  // smooth_k: the subtracted per-channel mean of K, [B, KVH, D] (empty otherwise).
  std::vector<float> k_mean;
  // smooth_k with a softcap: q_i . mean(K) per query row [B, H, S], added back to every score of
  // the row before the cap (the shift is exact under softmax, not under tanh). Empty otherwise.
  std::vector<float> row_bias;
  // P.V: pv fp32 reads v_dequant [B, KVH, KV, D] (V quantized at the op's precision); pv i8/fix16
  // read v_codes with v_scale [B, KVH, D] (one value repeated for v=tensor) and P in [0, p_max].
  std::vector<float> v_dequant;
  std::vector<int16_t> v_codes;
  std::vector<float> v_scale;
  int32_t p_max = 0;  // 127 (pv i8), 32767 (pv fix16), 0 (pv fp32)

  int64_t q_row(int64_t b, int64_t h, int64_t i) const { return (b * heads + h) * seq_len + i; }
  int64_t k_row(int64_t b, int64_t kvh, int64_t j) const { return (b * kv_heads + kvh) * kv_len + j; }
  const float* mean_of(int64_t b, int64_t h, int64_t i) const {
    return q_mean.data() + (((b * heads + h) * ((seq_len + scheme.block - 1) / scheme.block)) + i / scheme.block) * dim;
  }
};

// The shape of a fixed scale table (sattn/quant.hpp QuantTables) for `op` and `scheme`: name is
// scale_q, scale_k, scale_v, mean_q or mean_k; empty when the scheme has no such table (mean_q
// without smooth_q, mean_k without smooth_k).
std::vector<int64_t> quant_table_shape(const Op& op, const QuantScheme& scheme, std::string_view name);
inline constexpr const char* kQuantTableNames[] = {"scale_q", "scale_k", "scale_v", "mean_q", "mean_k"};
std::vector<float>& quant_table(QuantTables&, std::string_view name);
const std::vector<float>& quant_table(const QuantTables&, std::string_view name);

// The tables that reproduce `z`'s scales and means (each group's scale read from its first row).
QuantTables tables_of(const QuantizedQKV& z);

// Quantizes q [B, H, S, D], k and v [B, KVH, KV, D] for `op` (its precision, i8 or i4, and its
// scale_q/k/v where the granularity is tensor) with `scheme`. op.quant_tables, when set, give the
// scales and means instead of the data (each table checked against quant_table_shape). Throws Error(invalid_input) for a
// non-integer precision or mismatched shapes.
QuantizedQKV quantize_qkv(const Op& op, const QuantScheme& scheme, TensorView q, TensorView k, TensorView v);

}  // namespace sattn
