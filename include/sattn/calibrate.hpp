// Calibration of symmetric i8/i4 scales from data (sattn-calibrate(1), DESIGN §2): the public
// part. The methods and their internals (magnitude distributions, clips) live in
// libsattn/calibrate/calibrate.hpp.
//
// A scale is clip / quant_max: values beyond the clip saturate, values inside are rounded to
// clip / quant_max steps. The methods differ only in how they pick the clip from the tensor's
// magnitudes:
//   absmax      the largest magnitude (nothing saturates; what the kernels do without scales);
//   percentile  the P-th percentile of |x| (linear interpolation between order statistics);
//   mse         the clip that minimizes the mean squared quantization error (exact, searched);
//   kl          TensorRT-style entropy calibration over a histogram of |x|.
// Every method is judged by the SQNR of each tensor and by the end-to-end attention error
// against the fp32 reference on the op's own layout.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sattn/attention.hpp"
#include "sattn/formats.hpp"
#include "sattn/op.hpp"
#include "sattn/select.hpp"
#include "sattn/tensor.hpp"

namespace sattn {

enum class CalibrationMethod { absmax, percentile, mse, kl };
inline constexpr CalibrationMethod kAllCalibrationMethods[] = {CalibrationMethod::absmax, CalibrationMethod::percentile,
                                                               CalibrationMethod::mse, CalibrationMethod::kl};
std::string_view to_string(CalibrationMethod);
std::optional<CalibrationMethod> parse_calibration_method(std::string_view);

// One scale per tensor (what the kernels take) or one per head (q: per query head; k, v: per
// KV head), pooled over batch, positions and samples.
enum class Granularity { tensor, head };
std::string_view to_string(Granularity);
std::optional<Granularity> parse_granularity(std::string_view);

struct MethodOptions {
  double percentile = 99.99;  // (0, 100]
  int kl_bins = 2048;         // histogram bins of |x| over [0, absmax]
};

// A tensor's calibration: one scale (per tensor) or one per head.
struct TensorCalibration {
  std::vector<double> clips;
  std::vector<float> scales;
  double sqnr_db = 0;  // over every sample, with these scales
};

struct MethodResult {
  CalibrationMethod method = CalibrationMethod::absmax;
  TensorCalibration q, k, v;
  // End-to-end: the op's layout on each sample, attention on the quantized-dequantized Q/K/V
  // against the fp32 reference on the original data (max-norm relative error, as sattn run).
  double max_rel_error = 0;   // worst sample
  double mean_rel_error = 0;  // mean over samples
  double max_abs_error = 0;   // worst sample
  bool best = false;
};

struct CalibrateOptions {
  Precision precision = Precision::i8;
  Granularity granularity = Granularity::tensor;
  std::vector<CalibrationMethod> methods{CalibrationMethod::mse};
  MethodOptions method_options;
  FastOptions fast;
};

struct CalibrationReport {
  Plan plan;
  Precision precision = Precision::i8;
  Granularity granularity = Granularity::tensor;
  MethodOptions method_options;
  size_t samples = 0;
  std::vector<MethodResult> methods;  // in the order asked
  size_t best = 0;                    // index into methods
};

// The recommendation rule: the lowest end-to-end error (worst sample) wins; errors within 1%
// of each other are a tie, broken by the highest mean SQNR over q, k and v.
size_t pick_best(const std::vector<MethodResult>&);

// Calibrates one op (its plan gives the shape, the spec and the layout) on `samples`, each of
// which must match the op's shape. Throws Error(invalid_input) for an all-zero tensor.
CalibrationReport calibrate(const Plan&, std::span<const QKV> samples, const CalibrateOptions&);

// The data sets named by --data: each argument is a directory, or a glob pattern (*, ?, [)
// expanded here when the shell did not; a pattern that matches nothing is Error(usage).
std::vector<std::string> expand_data_dirs(const std::vector<std::string>& args);
// One sample per directory (q.npy, k.npy, v.npy, checked as load_qkv() does: shape, NaN, Inf),
// or the synthetic sample of `seed` when `dirs` is empty. An all-zero tensor is
// Error(invalid_input) naming the file: no scale can be derived from it.
// `layout`: the axis order of the directories' arrays (--layout).
std::vector<QKV> load_calibration_samples(const Op&, const std::vector<std::string>& dirs, uint64_t seed,
                                          DataLayout layout = DataLayout::bhsd);

// Applies one tensor's scales: each head's values quantized and dequantized with its scale.
Tensor fake_quantize(const Tensor&, const TensorCalibration&, Precision);

// The report as a sattn.calibration/v1 document (one line of JSON, what sattn-calibrate writes);
// `data_json` is a JSON object describing the samples ({"source": ...}); `tool` the producer.
std::string calibration_report_json(const CalibrationReport&, std::string_view data_json, const std::string& tool);

// The plan with the op's precision and scale_q/k/v set from a per-tensor result.
// Error(usage) for per-head results: the kernels take one scale per tensor.
Plan apply_calibration(const Plan&, const MethodResult&, Precision, Granularity);

// Quantization schemes (sattn-quant(7)) compared end to end, as sattn-calibrate --schemes /
// --quant-scheme does: the candidates (and `quant_scheme` when it is not one of them) run by the
// CPU fast kernel at `precision` on every sample against the reference in double; one is
// recommended. The applied scheme is `quant_scheme` when given (a name or key=value list), else
// the recommended one; its fixed scale tables are calibrated from the samples.
struct SchemeCalibration {
  std::string report;  // sattn.calibration-schemes/v1, one line of JSON
  Plan plan;           // the plan at `precision` with op.quant_scheme = the applied scheme
  std::string scheme;  // the applied scheme, canonical form
  // Its fixed tables (sattn-quant(7) FIXED SCALES): name (scale_q, scale_k, scale_v, mean_q,
  // mean_k), row-major float32 values and shape; only those the scheme has.
  struct Table {
    std::string name;
    std::vector<float> values;
    std::vector<int64_t> shape;
  };
  std::vector<Table> tables;
};
// Error(usage) for a bad or per-tensor quant_scheme (per-tensor has no tables: its scales are the
// op's scale_q/k/v) or a non-integer precision; `data_json` describes the samples ({"source": ...}).
SchemeCalibration calibrate_schemes(const Plan&, std::span<const QKV> samples, Precision precision,
                                    const std::string& quant_scheme, const FastOptions&, std::string_view data_json,
                                    const std::string& tool);

}  // namespace sattn
