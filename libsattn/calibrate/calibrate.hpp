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

#include "sattn/quant.hpp"

namespace sattn {

// One quantization scheme (sattn-quant(7)) judged end to end on every sample: the op at the
// calibrated precision with this scheme, run by the CPU fast kernel, against the reference in
// double on the op's own layout (fp32 inputs). Worst sample: largest max_rel and rel_l1, smallest
// cosine.
struct SchemeResult {
  std::string name;  // as given (a name or key=value list)
  QuantScheme scheme;
  double max_rel = 0, rel_l1 = 0, cosine = 1;
  bool best = false;
};

// The candidates sattn-calibrate --schemes compares: per-tensor, each finer granularity without
// smoothing, smoothing of K and of Q and K, and the named schemes sage, smooth, smooth,block=4 and smooth,block=2
// (those that need rotate=1 only for a power-of-two head_dim).
std::vector<std::string> candidate_schemes(int64_t head_dim);
// The recommendation: the lowest rel_l1 (worst sample) among the schemes within the precision's
// max-norm tolerance (i8: 5e-2; i4 has none) when any is; within 1% of it, the earliest candidate.
std::vector<SchemeResult> compare_schemes(const Plan&, std::span<const QKV> samples, Precision,
                                          const std::vector<std::string>& schemes, const FastOptions&);
// Fixed tables for `scheme` from the samples: the means averaged over samples, then every
// group's scale the largest over samples of its absmax / Q_max on the smoothed data.
QuantTables calibrate_tables(const Op& op, const QuantScheme& scheme, std::span<const QKV> samples);

}  // namespace sattn
