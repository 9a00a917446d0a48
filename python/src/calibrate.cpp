// Calibration: sattn.calibrate (calibrate.hpp), over arrays or .npy directories.
#include <pybind11/stl.h>

#include "common.hpp"
#include "sattn/calibrate.hpp"

namespace sattn::python {

namespace {

Tensor copy_tensor(const py::array& a, const char* what) {
  const TensorView v = input_view(a, what);
  Tensor t;
  t.shape = v.shape;
  t.data.assign(v.data, v.data + v.size());
  return t;
}

// The samples: arrays (copied), else the .npy directories, else the synthetic sample of `seed`;
// each checked against the op's shape. `data_json` describes them. Called with the GIL held.
std::vector<QKV> load_samples(const Plan& plan, const std::vector<py::tuple>& arrays, const std::vector<std::string>& dirs,
                              uint64_t seed, std::string& data_json) {
  std::vector<QKV> samples;
  if (!arrays.empty()) {
    for (const py::tuple& t : arrays) {
      if (t.size() != 3) throw Error(ErrorKind::usage, "each sample is a (q, k, v) tuple");
      QKV s;
      s.q = copy_tensor(t[0].cast<py::array>(), "q");
      s.k = copy_tensor(t[1].cast<py::array>(), "k");
      s.v = copy_tensor(t[2].cast<py::array>(), "v");
      samples.push_back(std::move(s));
    }
    data_json = "{\"source\": \"arrays\"}";
  } else {
    py::gil_scoped_release nogil;
    const std::vector<std::string> expanded = expand_data_dirs(dirs);
    samples = load_calibration_samples(plan.op, expanded, seed);
    if (expanded.empty()) {
      data_json = "{\"source\": \"synthetic\", \"seed\": " + std::to_string(seed) + "}";
    } else {
      data_json = "{\"source\": \"npy\", \"dirs\": [";
      for (size_t i = 0; i < expanded.size(); ++i) {
        std::string quoted;
        for (char c : expanded[i]) {
          if (c == '"' || c == '\\') quoted += '\\';
          quoted += c;
        }
        data_json += (i ? ", \"" : "\"") + quoted + "\"";
      }
      data_json += "]}";
    }
  }
  for (const QKV& s : samples) {
    const Shape& sh = plan.op.shape;
    if (s.q.shape != std::array<int64_t, 4>{sh.batch, sh.heads, sh.seq_len, sh.head_dim} ||
        s.k.shape != std::array<int64_t, 4>{sh.batch, sh.kv_heads, sh.kv_len, sh.head_dim} || s.v.shape != s.k.shape)
      throw Error(ErrorKind::invalid_input, "a sample's q/k/v shapes do not match the op");
  }
  return samples;
}

// samples: a list of (q, k, v) arrays (copied: calibration quantizes copies of them anyway), or
// none with `dirs` (directories or glob patterns of q.npy, k.npy, v.npy), or neither: the seeded
// synthetic sample, like sattn-calibrate without --data.
py::tuple run_calibration(const Plan& plan, const std::vector<py::tuple>& arrays, const std::vector<std::string>& dirs,
                          uint64_t seed, const std::string& precision, const std::string& granularity,
                          const std::vector<std::string>& methods, double percentile, int kl_bins, int threads) {
  CalibrateOptions o;
  auto p = parse_precision(precision);
  if (!p || (*p != Precision::i8 && *p != Precision::i4))
    throw Error(ErrorKind::usage, "precision must be i8 or i4 (got '" + precision + "')");
  o.precision = *p;
  auto g = parse_granularity(granularity);
  if (!g) throw Error(ErrorKind::usage, "granularity must be tensor or head (got '" + granularity + "')");
  o.granularity = *g;
  o.methods.clear();
  for (const std::string& name : methods) {
    auto m = parse_calibration_method(name);
    if (!m) throw Error(ErrorKind::usage, "unknown calibration method '" + name + "' (absmax, percentile, mse, kl)");
    o.methods.push_back(*m);
  }
  if (o.methods.empty()) throw Error(ErrorKind::usage, "methods: name at least one (absmax, percentile, mse, kl)");
  if (!(percentile > 0 && percentile <= 100))
    throw Error(ErrorKind::usage, "percentile must be in (0, 100] (got " + std::to_string(percentile) + ")");
  if (kl_bins < 16) throw Error(ErrorKind::usage, "kl_bins must be >= 16");
  o.method_options.percentile = percentile;
  o.method_options.kl_bins = kl_bins;
  o.fast.threads = threads;

  std::string data_json;
  const std::vector<QKV> samples = load_samples(plan, arrays, dirs, seed, data_json);
  std::string json;
  Plan applied;
  {
    py::gil_scoped_release nogil;
    CalibrationReport report = calibrate(plan, samples, o);
    json = calibration_report_json(report, data_json, "sattn-python");
    applied = o.granularity == Granularity::tensor
                             ? apply_calibration(plan, report.methods[report.best], o.precision, o.granularity)
                             : plan;
  }
  return py::make_tuple(json, applied);
}

// Quantization schemes compared end to end (calibrate_schemes); returns (report JSON, the plan with
// the applied scheme, {table name: (values, shape)}).
py::tuple run_scheme_calibration(const Plan& plan, const std::vector<py::tuple>& arrays,
                                 const std::vector<std::string>& dirs, uint64_t seed, const std::string& precision,
                                 const std::string& quant_scheme, int threads) {
  auto p = parse_precision(precision);
  if (!p || (*p != Precision::i8 && *p != Precision::i4))
    throw Error(ErrorKind::usage, "precision must be i8 or i4 (got '" + precision + "')");
  std::string data_json;
  const std::vector<QKV> samples = load_samples(plan, arrays, dirs, seed, data_json);
  FastOptions fast;
  fast.threads = threads;
  SchemeCalibration sc;
  {
    py::gil_scoped_release nogil;
    sc = calibrate_schemes(plan, samples, *p, quant_scheme, fast, data_json, "sattn-python");
  }
  py::dict tables;
  for (const SchemeCalibration::Table& t : sc.tables) tables[py::str(t.name)] = py::make_tuple(t.values, t.shape);
  return py::make_tuple(sc.report, sc.plan, tables);
}

}  // namespace

void bind_calibrate(py::module_& m) {
  m.def("calibrate_schemes", &run_scheme_calibration, py::arg("plan"), py::arg("arrays"), py::arg("dirs"),
        py::arg("seed"), py::arg("precision"), py::arg("quant_scheme"), py::arg("threads"));
  m.def("calibrate", &run_calibration, py::arg("plan"), py::arg("arrays"), py::arg("dirs"), py::arg("seed"),
        py::arg("precision"), py::arg("granularity"), py::arg("methods"), py::arg("percentile"),
        py::arg("kl_bins"), py::arg("threads"));
}

}  // namespace sattn::python
