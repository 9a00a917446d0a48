// Calibration of symmetric i8/i4 scales from data (sattn-calibrate, DESIGN §2): the internals.
// The public part (methods, options, reports, calibrate()) is include/sattn/calibrate.hpp; this
// header adds the magnitude distributions and clip searches the methods are made of, and the
// report's JSON form for the tool.
#pragma once
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "sattn/calibrate.hpp"
#include "core/synthetic.hpp"

namespace sattn {

// The magnitudes |x| of a set of values, sorted, with prefix sums of x and x^2, so that the
// exact quantization error of any clip costs O(quant_max * log n) instead of O(n).
class MagnitudeDistribution {
 public:
  MagnitudeDistribution() = default;
  explicit MagnitudeDistribution(std::span<const float> values);
  // Pools several spans (the same tensor's values over several samples or batch elements).
  explicit MagnitudeDistribution(const std::vector<std::span<const float>>& parts);

  size_t size() const { return sorted_.size(); }
  double absmax() const { return sorted_.empty() ? 0.0 : sorted_.back(); }
  // The `fraction`-quantile of |x| (fraction in [0, 1]), interpolating linearly between order
  // statistics (numpy's default "linear" method).
  double quantile(double fraction) const;
  // Mean of (x - dequantize(quantize(x)))^2 with scale clip / quant_max(p), computed exactly
  // from the sorted values (rounding to the nearest level; ties cost the same either way).
  double quantization_mse(double clip, Precision p) const;
  // Counts of |x| in `bins` equal bins over [0, absmax] (the last bin includes absmax).
  std::vector<double> histogram(int bins) const;

 private:
  void finish();
  // Sum of (x - c)^2 over sorted_[first, last).
  double squared_error(size_t first, size_t last, double c) const;
  std::vector<float> sorted_;
  std::vector<double> sum_, sum_sq_;  // prefix sums, size n + 1
};

// The clip each method chooses. 0 when every value is 0.
double absmax_clip(const MagnitudeDistribution&);
double percentile_clip(const MagnitudeDistribution&, double percentile);
double mse_clip(const MagnitudeDistribution&, Precision);
double kl_clip(const MagnitudeDistribution&, Precision, int bins);
double choose_clip(const MagnitudeDistribution&, CalibrationMethod, Precision, const MethodOptions&);
// clip / quant_max as the float the kernels use; 1 for a zero clip (as absmax_scale()).
float scale_from_clip(double clip, Precision);

// Signal-to-quantization-noise ratio in dB: 10 log10(sum x^2 / sum (x - x_hat)^2), x_hat being
// x quantized with `scale` by quantize() and dequantized. +inf when the error is 0.
double sqnr_db(std::span<const float> values, float scale, Precision);
// The same over several (values, scale) parts, e.g. the heads of a tensor with per-head scales.
double sqnr_db(const std::vector<std::pair<std::span<const float>, float>>& parts, Precision);

// sattn.calibration/v1; `data` describes the samples ({"source": ...}).
nlohmann::json calibration_to_json(const CalibrationReport&, const nlohmann::json& data, const std::string& tool);

}  // namespace sattn
