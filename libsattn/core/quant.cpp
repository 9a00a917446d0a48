// Reduced-precision semantics (DESIGN §3): bf16 rounding, symmetric i8/i4 quantization, i4
// packing. Everything here is exact integer/bit arithmetic so every backend can reproduce it.
#include "core/quant.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <string>

#include "sattn/error.hpp"

namespace sattn {

uint16_t float_to_bf16(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const bool is_nan = (bits & 0x7F800000u) == 0x7F800000u && (bits & 0x007FFFFFu) != 0;
  // Truncating a NaN could clear every mantissa bit left (giving Inf); force the quiet bit.
  if (is_nan) return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  // Round to nearest, ties to even: add 0x7FFF plus the lowest kept bit. A carry into the
  // exponent is the correct rounding (max finite rounds up to Inf).
  const uint32_t lowest_kept = (bits >> 16) & 1u;
  return static_cast<uint16_t>((bits + 0x7FFFu + lowest_kept) >> 16);
}

float bf16_to_float(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

int32_t quant_max(Precision p) {
  switch (p) {
    case Precision::i8: return 127;
    case Precision::i4: return 7;
    case Precision::fp32:
    case Precision::bf16: break;
  }
  throw_runtime_error("quant_max: precision " + std::string(to_string(p)) + " is not an integer precision");
}

namespace {

// Round half to even of a value already clamped to a small range (|y| <= 127), without libm and
// independent of the FP rounding mode: truncate, then look at the exact remainder.
int32_t round_half_even_small(float y) {
  const auto truncated = static_cast<int32_t>(y);        // toward zero
  const float remainder = y - static_cast<float>(truncated);  // exact: |y| < 2^23
  if (remainder > 0.5f || (remainder == 0.5f && (truncated & 1))) return truncated + 1;
  if (remainder < -0.5f || (remainder == -0.5f && (truncated & 1))) return truncated - 1;
  return truncated;
}

}  // namespace

int8_t quantize(float x, float scale, Precision p) {
  const int32_t qmax = quant_max(p);
  if (std::isnan(x)) return 0;  // no integer meaning; 0 keeps downstream sums finite
  const float y = x / scale;
  const float limit = static_cast<float>(qmax);
  // Clamping first is equivalent to rounding first (the limits are integers) and keeps the
  // value in the range where round_half_even_small is exact.
  const float clamped = std::clamp(y, -limit, limit);
  return static_cast<int8_t>(round_half_even_small(clamped));
}

float absmax_scale(std::span<const float> values, Precision p) {
  const int32_t qmax = quant_max(p);
  float absmax = 0.0f;
  for (float x : values)
    if (std::abs(x) > absmax) absmax = std::abs(x);  // NaN compares false and is skipped
  if (absmax == 0.0f) return 1.0f;
  return absmax / static_cast<float>(qmax);
}

std::vector<uint8_t> pack_i4(std::span<const int8_t> values) {
  std::vector<uint8_t> packed((values.size() + 1) / 2, 0);
  for (size_t t = 0; t < values.size(); ++t) {
    const auto nibble = static_cast<uint8_t>(static_cast<uint8_t>(values[t]) & 0x0Fu);
    packed[t / 2] |= (t % 2 == 0) ? nibble : static_cast<uint8_t>(nibble << 4);
  }
  return packed;
}

std::vector<int8_t> unpack_i4(std::span<const uint8_t> packed, size_t count) {
  if (packed.size() * 2 < count)
    throw_runtime_error("unpack_i4: " + std::to_string(packed.size()) + " bytes cannot hold " +
                        std::to_string(count) + " values");
  std::vector<int8_t> values(count);
  for (size_t t = 0; t < count; ++t) {
    const int nibble = (t % 2 == 0) ? (packed[t / 2] & 0x0F) : (packed[t / 2] >> 4);
    values[t] = static_cast<int8_t>((nibble ^ 0x8) - 0x8);  // sign-extend 4 bits
  }
  return values;
}

Scales resolve_scales(const Op& op, const Tensor& q, const Tensor& k, const Tensor& v) {
  return resolve_scales(op, std::span<const float>(q.data), std::span<const float>(k.data),
                        std::span<const float>(v.data));
}

Scales resolve_scales(const Op& op, std::span<const float> q, std::span<const float> k, std::span<const float> v) {
  Scales s;
  const bool integer = op.precision == Precision::i8 || op.precision == Precision::i4;
  auto pick = [&](const std::optional<double>& given, std::span<const float> t) {
    if (given) return static_cast<float>(*given);
    return integer ? absmax_scale(t, op.precision) : 1.0f;
  };
  s.q = pick(op.scale_q, q);
  s.k = pick(op.scale_k, k);
  s.v = pick(op.scale_v, v);
  return s;
}

Tensor apply_precision(const Tensor& t, Precision p, float scale) {
  Tensor out = t;
  switch (p) {
    case Precision::fp32: break;
    case Precision::bf16:
      for (float& x : out.data) x = bf16_to_float(float_to_bf16(x));
      break;
    case Precision::i8:
    case Precision::i4:
      for (float& x : out.data) x = static_cast<float>(quantize(x, scale, p)) * scale;
      break;
  }
  return out;
}

}  // namespace sattn
