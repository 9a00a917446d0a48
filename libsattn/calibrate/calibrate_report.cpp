// Calibration of one op: every method's scales, their SQNR and end-to-end attention error,
// the recommendation, the sattn.calibration/v1 document and the plan with the scales applied.
#include <cmath>
#include <limits>
#include <string>

#include "calibrate/calibrate.hpp"
#include "sattn/layout.hpp"
#include "formats/op_io.hpp"
#include "core/quant.hpp"
#include "formats/data.hpp"
#include "support/process.hpp"

namespace sattn {

namespace {

enum class Which { q, k, v };
const Tensor& tensor_of(const QKV& s, Which w) { return w == Which::q ? s.q : w == Which::k ? s.k : s.v; }

// The values of head h of a tensor, one span per (sample, batch element).
std::vector<std::span<const float>> head_values(std::span<const QKV> samples, Which w, int64_t h) {
  std::vector<std::span<const float>> parts;
  for (const QKV& s : samples) {
    const Tensor& t = tensor_of(s, w);
    for (int64_t b = 0; b < t.batch(); ++b) parts.emplace_back(t.row(b, h, 0), size_t(t.len() * t.dim()));
  }
  return parts;
}

std::vector<std::span<const float>> all_values(std::span<const QKV> samples, Which w) {
  std::vector<std::span<const float>> parts;
  for (const QKV& s : samples) parts.emplace_back(tensor_of(s, w).data);
  return parts;
}

// The magnitude distributions a tensor is calibrated on: one, or one per head.
std::vector<MagnitudeDistribution> distributions(std::span<const QKV> samples, Which w, Granularity g) {
  std::vector<MagnitudeDistribution> d;
  if (g == Granularity::tensor) {
    d.emplace_back(all_values(samples, w));
  } else {
    for (int64_t h = 0; h < tensor_of(samples[0], w).heads(); ++h) d.emplace_back(head_values(samples, w, h));
  }
  return d;
}

TensorCalibration calibrate_tensor(const std::vector<MagnitudeDistribution>& dists, std::span<const QKV> samples,
                                   Which w, CalibrationMethod m, const CalibrateOptions& o) {
  TensorCalibration t;
  for (const MagnitudeDistribution& d : dists) {
    const double clip = choose_clip(d, m, o.precision, o.method_options);
    t.clips.push_back(clip);
    t.scales.push_back(scale_from_clip(clip, o.precision));
  }
  std::vector<std::pair<std::span<const float>, float>> parts;
  for (const QKV& s : samples) {
    const Tensor& x = tensor_of(s, w);
    for (int64_t b = 0; b < x.batch(); ++b)
      for (int64_t h = 0; h < x.heads(); ++h)
        parts.emplace_back(std::span<const float>(x.row(b, h, 0), size_t(x.len() * x.dim())),
                           t.scales[t.scales.size() == 1 ? 0 : size_t(h)]);
  }
  t.sqnr_db = sqnr_db(parts, o.precision);
  return t;
}

double mean_sqnr(const MethodResult& r) { return (r.q.sqnr_db + r.k.sqnr_db + r.v.sqnr_db) / 3.0; }

// JSON has no infinity; like sattn.result/v1, a non-finite figure is the string "inf".
nlohmann::json number(double x) {
  if (std::isfinite(x)) return x;
  return x > 0 ? nlohmann::json("inf") : nlohmann::json("-inf");
}

nlohmann::json tensor_json(const TensorCalibration& t, Granularity g) {
  if (g == Granularity::tensor) return {{"clip", t.clips[0]}, {"scale", t.scales[0]}, {"sqnr_db", number(t.sqnr_db)}};
  nlohmann::json clips = nlohmann::json::array(), scales = nlohmann::json::array();
  for (double c : t.clips) clips.push_back(c);
  for (float s : t.scales) scales.push_back(s);
  return {{"clip", clips}, {"scale", scales}, {"sqnr_db", number(t.sqnr_db)}};
}

}  // namespace

Tensor fake_quantize(const Tensor& x, const TensorCalibration& t, Precision p) {
  if (t.scales.size() == 1) return apply_precision(x, p, t.scales[0]);
  Tensor out = x;
  for (int64_t b = 0; b < x.batch(); ++b)
    for (int64_t h = 0; h < x.heads(); ++h) {
      const float scale = t.scales[size_t(h)];
      float* row = out.row(b, h, 0);
      for (int64_t n = 0; n < x.len() * x.dim(); ++n) row[n] = float(quantize(row[n], scale, p)) * scale;
    }
  return out;
}

size_t pick_best(const std::vector<MethodResult>& results) {
  if (results.empty()) return 0;
  auto error = [](const MethodResult& r) {
    return std::isfinite(r.max_rel_error) ? r.max_rel_error : std::numeric_limits<double>::infinity();
  };
  double lowest = std::numeric_limits<double>::infinity();
  for (const MethodResult& r : results) lowest = std::min(lowest, error(r));
  // Within 1% of the lowest error counts as a tie: one data set does not resolve finer.
  size_t best = results.size();
  for (size_t i = 0; i < results.size(); ++i) {
    const double e = error(results[i]);
    const bool tied = std::isfinite(lowest) ? e <= lowest * 1.01 : true;
    if (!tied) continue;
    if (best == results.size() || mean_sqnr(results[i]) > mean_sqnr(results[best])) best = i;
  }
  return best;
}

CalibrationReport calibrate(const Plan& plan, std::span<const QKV> samples, const CalibrateOptions& o) {
  if (samples.empty()) throw_runtime_error("calibrate: no data samples");
  if (o.precision != Precision::i8 && o.precision != Precision::i4)
    throw Error(ExitCode::usage, "calibration is for i8 or i4, not " + std::string(to_string(o.precision)));
  CalibrationReport report;
  report.plan = plan;
  report.precision = o.precision;
  report.granularity = o.granularity;
  report.method_options = o.method_options;
  report.samples = samples.size();

  // What the kernels compute on fp32 inputs: the op as given, minus its quantization, so the
  // fast kernel sees exactly the fake-quantized values and adds only its fp32 rounding (~1e-6).
  Op fp32_op = plan.op;
  fp32_op.precision = Precision::fp32;
  fp32_op.scale_q = fp32_op.scale_k = fp32_op.scale_v = std::nullopt;
  std::vector<Layout> layouts;
  std::vector<Tensor> references;
  for (const QKV& s : samples) {
    layouts.push_back(build_layout(fp32_op, plan.spec, plan.params, &s.q, &s.k));
    references.push_back(reference_attention(fp32_op, layouts.back(), s.q, s.k, s.v));
  }

  const Which kAll[] = {Which::q, Which::k, Which::v};
  std::vector<MagnitudeDistribution> dists[3];
  for (Which w : kAll) dists[int(w)] = distributions(samples, w, o.granularity);

  for (CalibrationMethod m : o.methods) {
    throw_if_interrupted();  // between methods; the kernel and reference poll inside
    MethodResult r;
    r.method = m;
    r.q = calibrate_tensor(dists[0], samples, Which::q, m, o);
    r.k = calibrate_tensor(dists[1], samples, Which::k, m, o);
    r.v = calibrate_tensor(dists[2], samples, Which::v, m, o);
    double sum = 0;
    for (size_t n = 0; n < samples.size(); ++n) {
      const QKV& s = samples[n];
      const Tensor out = fast_attention(fp32_op, layouts[n], fake_quantize(s.q, r.q, o.precision),
                                        fake_quantize(s.k, r.k, o.precision), fake_quantize(s.v, r.v, o.precision), o.fast);
      const ErrorStats e = compare(out, references[n]);
      r.max_rel_error = std::max(r.max_rel_error, e.max_rel);
      r.max_abs_error = std::max(r.max_abs_error, e.max_abs);
      sum += e.max_rel;
    }
    r.mean_rel_error = sum / double(samples.size());
    report.methods.push_back(std::move(r));
  }
  report.best = pick_best(report.methods);
  report.methods[report.best].best = true;
  return report;
}

std::string calibration_report_json(const CalibrationReport& r, std::string_view data_json, const std::string& tool) {
  nlohmann::json data = nlohmann::json::parse(data_json, nullptr, false);
  if (data.is_discarded() || !data.is_object())
    throw Error(ErrorKind::usage, "calibration_report_json: the data description is not a JSON object");
  return calibration_to_json(r, data, tool).dump();
}

nlohmann::json calibration_to_json(const CalibrationReport& r, const nlohmann::json& data, const std::string& tool) {
  nlohmann::json j = envelope("calibration", tool);
  j["op"] = op_to_json(r.plan.op);
  j["spec"] = std::string(to_string(r.plan.spec));
  j["params"] = params_to_json(r.plan.params);
  j["precision"] = std::string(to_string(r.precision));
  j["granularity"] = std::string(to_string(r.granularity));
  j["quant_max"] = quant_max(r.precision);
  j["data"] = data;
  j["data"]["samples"] = r.samples;
  j["options"] = {{"percentile", r.method_options.percentile}, {"kl_bins", r.method_options.kl_bins}};
  j["reference"] =
      "fp32 reference (double accumulation) on the op's layout; error = max|o - r| / max|r| with o computed on "
      "the quantized-dequantized q, k, v";
  nlohmann::json methods = nlohmann::json::array();
  for (const MethodResult& m : r.methods) {
    methods.push_back({{"method", std::string(to_string(m.method))},
                       {"tensors",
                        {{"q", tensor_json(m.q, r.granularity)},
                         {"k", tensor_json(m.k, r.granularity)},
                         {"v", tensor_json(m.v, r.granularity)}}},
                       {"attention_error",
                        {{"max_rel", number(m.max_rel_error)},
                         {"mean_rel", number(m.mean_rel_error)},
                         {"max_abs", number(m.max_abs_error)}}},
                       {"best", m.best}});
  }
  j["methods"] = methods;
  j["recommended"] = std::string(to_string(r.methods[r.best].method));
  j["rule"] =
      "lowest end-to-end max relative error over the samples; errors within 1% of the lowest tie, and the highest "
      "mean SQNR of q, k, v breaks the tie";
  return j;
}

Plan apply_calibration(const Plan& plan, const MethodResult& m, Precision p, Granularity g) {
  if (g != Granularity::tensor || m.q.scales.size() != 1 || m.k.scales.size() != 1 || m.v.scales.size() != 1)
    throw Error(ExitCode::usage,
                "per-head scales cannot be applied: the op carries one scale per tensor (scale_q, scale_k, scale_v); "
                "use --granularity tensor with --apply");
  Plan out = plan;
  out.op.precision = p;
  out.op.scale_q = m.q.scales[0];
  out.op.scale_k = m.k.scales[0];
  out.op.scale_v = m.v.scales[0];
  return out;
}

}  // namespace sattn
