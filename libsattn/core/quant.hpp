// Reduced-precision semantics shared by every backend (DESIGN §3 numerical rules).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "sattn/op.hpp"
#include "sattn/tensor.hpp"

namespace sattn {

// bfloat16: round-to-nearest-even; NaN stays NaN (quiet).
uint16_t float_to_bf16(float);
float bf16_to_float(uint16_t);

// Symmetric quantization. i8: [-127, 127]; i4: [-7, 7]. Round half to even (exact, no libm).
int32_t quant_max(Precision);  // 127 for i8, 7 for i4
int8_t quantize(float x, float scale, Precision);
// absmax / quant_max; 1 when the tensor is all zeros.
float absmax_scale(std::span<const float>, Precision);
// i4: two values per byte, low nibble first (element 2i in bits 0..3).
std::vector<uint8_t> pack_i4(std::span<const int8_t>);
std::vector<int8_t> unpack_i4(std::span<const uint8_t>, size_t count);

struct Scales {
  float q = 1, k = 1, v = 1;
};
// The op's scale_q/k/v where given, else absmax scales of the data. Only meaningful for i8/i4.
Scales resolve_scales(const Op&, const Tensor& q, const Tensor& k, const Tensor& v);
Scales resolve_scales(const Op&, std::span<const float> q, std::span<const float> k, std::span<const float> v);

// The values the kernels actually see at this precision: fp32 unchanged, bf16 rounded, i8/i4
// quantized and dequantized with `scales`. Used to check fast kernels tightly.
Tensor apply_precision(const Tensor&, Precision, float scale);

}  // namespace sattn
