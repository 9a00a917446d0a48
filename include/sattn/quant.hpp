// Quantization schemes for the integer precisions (i8, i4): how Q, K, V and P are turned into
// integers, as data (sattn-quant(7) gives the exact math).
//
// A scheme names
//   - the granularity of the Q scales and of the K scales: one per tensor, per (batch, head), per
//     block of `block` tokens of a head, or per token;
//   - smoothing: K minus its per-channel mean over tokens (exact under softmax: it adds the same
//     constant to every score of a row), and Q minus its per-block mean (the mean-Q . K term is
//     kept in fp32 as a per-(query block, key) bias);
//   - rotation: Q and K multiplied by the orthonormal Hadamard matrix of order head_dim (exact:
//     Q H (K H)^T = Q K^T), which spreads channel outliers before the per-token scales;
//   - the P.V datapath: fp32 (P in fp32, V quantized at the op's precision and dequantized: the
//     historical per-tensor scheme), i8 (P in [0, 127] with the fixed scale 1/127, V int8) or fix16
//     (P in [0, 32767] with the fixed scale 1/32767, V int16);
//   - the granularity of the V scales: per tensor or per (batch, KV head, channel).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sattn {

enum class Precision;

enum class ScaleGranularity { tensor, head, block, token };
enum class PvPrecision { fp32, i8, fix16 };
enum class VGranularity { tensor, channel };

std::string_view to_string(ScaleGranularity);
std::string_view to_string(PvPrecision);
std::string_view to_string(VGranularity);

struct QuantScheme {
  ScaleGranularity q = ScaleGranularity::tensor;
  ScaleGranularity k = ScaleGranularity::tensor;
  int64_t block = 16;  // tokens per scale (granularity block) and per mean of Q (smooth_q)
  bool smooth_q = false;
  bool smooth_k = false;
  bool rotate = false;  // Hadamard rotation of Q and K (head_dim a power of two)
  PvPrecision pv = PvPrecision::fp32;
  VGranularity v = VGranularity::tensor;

  // The historical scheme: one absmax scale per tensor, no smoothing, P.V in fp32.
  bool is_per_tensor() const;
  bool operator==(const QuantScheme&) const = default;
};

// Named schemes:
//   per-tensor  q=tensor,k=tensor,smooth=none,rotate=0,pv=fp32,v=tensor (the historical one)
//   sage        q=token,k=block,block=16,smooth=qk,rotate=0,pv=i8,v=channel (SageAttention-like)
//   smooth      q=token,k=token,block=16,smooth=qk,rotate=1,pv=fix16,v=channel (recommended at i8)
QuantScheme per_tensor_scheme();
QuantScheme sage_scheme();
QuantScheme smooth_scheme();
// The recommended scheme for an i8 or i4 op of this head_dim: `smooth` (i4: with block=2, the mean
// of Q over 2 tokens, docs/decisions.md), without the rotation when head_dim is not a power of two.
QuantScheme recommended_scheme(Precision, int64_t head_dim);

// Parses a name (per-tensor, sage, smooth) or a list of key=value separated by commas, over the
// per-tensor scheme: q=G, k=G (G: tensor, head, block, token), block=N (1..4096),
// smooth=none|q|k|qk, rotate=0|1, pv=fp32|i8|fix16, v=tensor|channel. Also a name followed by
// overrides ("smooth,pv=i8"). nullopt with `error` set on anything else.
std::optional<QuantScheme> parse_quant_scheme(std::string_view, std::string* error = nullptr);
// The canonical key=value form (parse_quant_scheme reads it back), or the name when it is one.
std::string to_string(const QuantScheme&);

// Fixed scale tables (sattn-calibrate --apply; sattn-quant(7) FIXED SCALES), used instead of the
// scales and means computed from the data at run time. Shapes, with G = a granularity's groups
// (tensor: [1]; head: [B, H]; block: [B, H, ceil(S / block)]; token: [B, H, S]; K with KV heads
// and kv_len): scale_q G(q), scale_k G(k), scale_v [1] (v=tensor) or [B, KVH, D] (v=channel),
// mean_k [B, KVH, D] (smooth_k), mean_q [B, H, ceil(S / block), D] (smooth_q). Flattened in
// row-major order; an empty vector is computed from the data.
struct QuantTables {
  std::vector<float> scale_q, scale_k, scale_v, mean_q, mean_k;
};

}  // namespace sattn
