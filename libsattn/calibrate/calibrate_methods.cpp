// Calibration methods: how each one picks the clip of a symmetric quantizer from |x|, and the
// SQNR that judges the result.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "calibrate/calibrate.hpp"
#include "core/quant.hpp"
#include "support/process.hpp"

namespace sattn {

std::string_view to_string(CalibrationMethod m) {
  switch (m) {
    case CalibrationMethod::absmax: return "absmax";
    case CalibrationMethod::percentile: return "percentile";
    case CalibrationMethod::mse: return "mse";
    case CalibrationMethod::kl: return "kl";
  }
  return "?";
}

std::optional<CalibrationMethod> parse_calibration_method(std::string_view name) {
  for (CalibrationMethod m : kAllCalibrationMethods)
    if (to_string(m) == name) return m;
  return std::nullopt;
}

std::string_view to_string(Granularity g) { return g == Granularity::tensor ? "tensor" : "head"; }

std::optional<Granularity> parse_granularity(std::string_view name) {
  if (name == "tensor") return Granularity::tensor;
  if (name == "head") return Granularity::head;
  return std::nullopt;
}

// ---- MagnitudeDistribution --------------------------------------------------------------

MagnitudeDistribution::MagnitudeDistribution(std::span<const float> values) {
  sorted_.reserve(values.size());
  for (float x : values) sorted_.push_back(std::fabs(x));
  finish();
}

MagnitudeDistribution::MagnitudeDistribution(const std::vector<std::span<const float>>& parts) {
  size_t n = 0;
  for (auto p : parts) n += p.size();
  sorted_.reserve(n);
  for (auto p : parts)
    for (float x : p) sorted_.push_back(std::fabs(x));
  finish();
}

void MagnitudeDistribution::finish() {
  std::sort(sorted_.begin(), sorted_.end());
  sum_.assign(sorted_.size() + 1, 0.0);
  sum_sq_.assign(sorted_.size() + 1, 0.0);
  for (size_t i = 0; i < sorted_.size(); ++i) {
    const double x = sorted_[i];
    sum_[i + 1] = sum_[i] + x;
    sum_sq_[i + 1] = sum_sq_[i] + x * x;
  }
}

double MagnitudeDistribution::quantile(double fraction) const {
  if (sorted_.empty()) return 0.0;
  fraction = std::clamp(fraction, 0.0, 1.0);
  const double pos = fraction * double(sorted_.size() - 1);
  const auto lo = size_t(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted_.size() - 1);
  const double t = pos - double(lo);
  return double(sorted_[lo]) + t * (double(sorted_[hi]) - double(sorted_[lo]));
}

double MagnitudeDistribution::squared_error(size_t first, size_t last, double c) const {
  if (first >= last) return 0.0;
  const double n = double(last - first);
  const double s1 = sum_[last] - sum_[first];
  const double s2 = sum_sq_[last] - sum_sq_[first];
  // The expansion can cancel to a tiny negative number; the true value is >= 0.
  return std::max(0.0, s2 - 2.0 * c * s1 + n * c * c);
}

double MagnitudeDistribution::quantization_mse(double clip, Precision p) const {
  if (sorted_.empty()) return 0.0;
  const size_t n = sorted_.size();
  if (clip <= 0) return sum_sq_[n] / double(n);  // everything quantizes to 0
  const int32_t qmax = quant_max(p);
  const double step = clip / qmax;
  // Level l (0 <= l < qmax) takes |x| in [(l - 1/2) step, (l + 1/2) step); the top level takes
  // the rest, saturated values included, and represents them by clip.
  double total = 0.0;
  size_t first = 0;
  for (int32_t level = 0; level < qmax; ++level) {
    const double upper = (level + 0.5) * step;
    const size_t last = size_t(std::lower_bound(sorted_.begin() + first, sorted_.end(), upper) - sorted_.begin());
    total += squared_error(first, last, level * step);
    first = last;
  }
  total += squared_error(first, n, clip);
  return total / double(n);
}

std::vector<double> MagnitudeDistribution::histogram(int bins) const {
  std::vector<double> counts(size_t(std::max(bins, 1)), 0.0);
  const double top = absmax();
  if (top <= 0) {
    counts[0] = double(sorted_.size());
    return counts;
  }
  for (float x : sorted_) {
    auto b = size_t(double(x) / top * double(counts.size()));
    counts[std::min(b, counts.size() - 1)] += 1.0;
  }
  return counts;
}

// ---- Clip selection ---------------------------------------------------------------------

double absmax_clip(const MagnitudeDistribution& d) { return d.absmax(); }

double percentile_clip(const MagnitudeDistribution& d, double percentile) { return d.quantile(percentile / 100.0); }

double mse_clip(const MagnitudeDistribution& d, Precision p) {
  const double top = d.absmax();
  if (top <= 0) return 0.0;
  // The error is not unimodal in the clip (levels cross data clusters), so search a grid, then
  // refine around the best point. The grid is geometric: the best clip can be far below absmax
  // when outliers stretch the range, and a relative resolution is what matters there.
  constexpr int kGrid = 4096;
  constexpr double kLowest = 1e-5;  // of absmax
  const double ratio = std::pow(kLowest, 1.0 / (kGrid - 1));
  double best_clip = top, best_err = d.quantization_mse(top, p);
  int best_k = 0;
  double clip = top;
  for (int k = 1; k < kGrid; ++k) {
    poll_interrupt(k);
    clip *= ratio;
    const double err = d.quantization_mse(clip, p);
    if (err < best_err) best_err = err, best_clip = clip, best_k = k;
  }
  const double hi = top * std::pow(ratio, std::max(best_k - 1, 0));
  const double lo = top * std::pow(ratio, std::min(best_k + 1, kGrid - 1));
  constexpr int kRefine = 256;
  for (int k = 0; k <= kRefine; ++k) {
    const double c = lo + (hi - lo) * k / kRefine;
    const double err = d.quantization_mse(c, p);
    if (err < best_err) best_err = err, best_clip = c;
  }
  return best_clip;
}

double kl_clip(const MagnitudeDistribution& d, Precision p, int bins) {
  const double top = d.absmax();
  if (top <= 0) return 0.0;
  const int levels = quant_max(p) + 1;  // |x| maps to levels 0 .. quant_max
  bins = std::max(bins, levels);
  const std::vector<double> hist = d.histogram(bins);
  std::vector<double> tail(size_t(bins) + 1, 0.0);  // tail[i] = sum of hist[i..]
  for (int b = bins - 1; b >= 0; --b) tail[size_t(b)] = tail[size_t(b) + 1] + hist[size_t(b)];

  // For each candidate threshold (the upper edge of bin i-1): P is the histogram cut at i with
  // the cut-off tail folded into its last bin; Q is the unfolded cut histogram merged into
  // `levels` groups, each group's mass spread evenly over its non-empty bins. The threshold
  // with the smallest KL(P || Q) wins (the first one on ties).
  constexpr double kFloor = 1e-12;  // Q's floor where P has mass Q lacks (a heavy penalty)
  double best_kl = std::numeric_limits<double>::infinity();
  int best_i = bins;
  std::vector<double> q(static_cast<size_t>(bins), 0.0);
  for (int i = levels; i <= bins; ++i) {
    const double total = tail[0];
    for (int j = 0; j < levels; ++j) {
      const int start = int(int64_t(j) * i / levels), stop = int(int64_t(j + 1) * i / levels);
      double mass = 0;
      int nonzero = 0;
      for (int b = start; b < stop; ++b) {
        mass += hist[size_t(b)];
        nonzero += hist[size_t(b)] > 0;
      }
      for (int b = start; b < stop; ++b) q[size_t(b)] = hist[size_t(b)] > 0 ? mass / nonzero : 0.0;
    }
    const double q_total = total - tail[size_t(i)];  // Q has the unfolded mass only
    double kl = 0;
    for (int b = 0; b < i; ++b) {
      const double pb = (hist[size_t(b)] + (b == i - 1 ? tail[size_t(i)] : 0.0)) / total;
      if (pb <= 0) continue;
      const double qb = q_total > 0 ? std::max(q[size_t(b)] / q_total, kFloor) : kFloor;
      kl += pb * std::log(pb / qb);
    }
    if (kl < best_kl) best_kl = kl, best_i = i;
  }
  return top * double(best_i) / double(bins);
}

double choose_clip(const MagnitudeDistribution& d, CalibrationMethod m, Precision p, const MethodOptions& o) {
  switch (m) {
    case CalibrationMethod::absmax: return absmax_clip(d);
    case CalibrationMethod::percentile: return percentile_clip(d, o.percentile);
    case CalibrationMethod::mse: return mse_clip(d, p);
    case CalibrationMethod::kl: return kl_clip(d, p, o.kl_bins);
  }
  return absmax_clip(d);
}

float scale_from_clip(double clip, Precision p) {
  if (!(clip > 0)) return 1.0f;
  return float(clip / quant_max(p));
}

// ---- SQNR -------------------------------------------------------------------------------

double sqnr_db(const std::vector<std::pair<std::span<const float>, float>>& parts, Precision p) {
  double signal = 0, noise = 0;
  for (const auto& [values, scale] : parts)
    for (float x : values) {
      // Dequantized exactly as apply_precision() does (a float product).
      const double e = double(x) - double(float(quantize(x, scale, p)) * scale);
      signal += double(x) * double(x);
      noise += e * e;
    }
  if (noise == 0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(signal / noise);
}

double sqnr_db(std::span<const float> values, float scale, Precision p) { return sqnr_db({{values, scale}}, p); }

}  // namespace sattn
