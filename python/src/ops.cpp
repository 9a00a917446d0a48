// Ops, specs and selection: sattn.Op, sattn.select and the plan (op.hpp, formats.hpp, select.hpp).
#include <pybind11/stl.h>

#include <variant>

#include "common.hpp"

namespace sattn::python {

namespace {

OpFormat format_named(const std::string& name) {
  if (name == "auto") return OpFormat::automatic;
  if (name == "mlir") return OpFormat::mlir;
  if (name == "json") return OpFormat::json;
  if (name == "yaml") return OpFormat::yaml;
  throw Error(ErrorKind::usage, "format must be auto, mlir, json or yaml (got '" + name + "')");
}

Spec spec_named(const std::string& name) {
  auto s = parse_spec(name);
  if (!s)
    throw Error(ErrorKind::invalid_input, "unknown pattern '" + name +
                                              "' (sattn specs: dense, sliding_window, bsr, block_local_global, "
                                              "nm_structured, topk_per_query, lsh, landmark, quest; prototype names: "
                                              "block_topk, sliding_global, blg, sw, nm, topk)");
  return *s;
}

// The attributes the op states (shape, numerics, pattern attributes given) as a dict, in the
// vocabulary of sattn.op/v1.
py::dict op_to_dict(const Op& op) {
  py::dict d;
  d["name"] = op.name;
  d["batch"] = op.shape.batch;
  d["heads"] = op.shape.heads;
  d["kv_heads"] = op.shape.kv_heads;
  d["seq_len"] = op.shape.seq_len;
  d["kv_len"] = op.shape.kv_len;
  d["head_dim"] = op.shape.head_dim;
  d["causal"] = op.causal;
  if (op.scale) d["scale"] = *op.scale;
  if (op.softcap) d["softcap"] = *op.softcap;
  d["precision"] = std::string(to_string(op.precision));
  if (op.scale_q) d["scale_q"] = *op.scale_q;
  if (op.scale_k) d["scale_k"] = *op.scale_k;
  if (op.scale_v) d["scale_v"] = *op.scale_v;
  if (op.forced_spec) d["spec"] = std::string(to_string(*op.forced_spec));
  if (op.quant_scheme) d["quant_scheme"] = to_string(*op.quant_scheme);
  const PatternAttrs& a = op.attrs;
  auto put = [&](const char* key, const auto& v) {
    if (v) d[key] = *v;
  };
  put("window_size", a.window_size);
  put("dilation", a.dilation);
  put("wrap", a.wrap);
  put("block_size", a.block_size);
  put("comp_block_size", a.comp_block_size);
  put("window_blocks", a.window_blocks);
  put("global_tokens", a.global_tokens);
  put("keep_ratio", a.keep_ratio);
  put("nm_n", a.nm_n);
  put("nm_m", a.nm_m);
  put("topk_k", a.topk_k);
  put("lsh_buckets", a.lsh_buckets);
  put("lsh_rounds", a.lsh_rounds);
  put("seed", a.seed);
  put("num_landmarks", a.num_landmarks);
  put("landmark_iters", a.landmark_iters);
  put("page_size", a.page_size);
  put("top_pages", a.top_pages);
  put("tile_M", a.tile_M);
  put("tile_S", a.tile_S);
  put("tile_D", a.tile_D);
  put("tile_rows", a.tile_rows);
  return d;
}

struct ParamsToDict {
  py::dict operator()(const DenseParams&) const { return py::dict(); }
  py::dict operator()(const SlidingWindowParams& p) const {
    return py::dict(py::arg("window_size") = p.window_size, py::arg("dilation") = p.dilation, py::arg("wrap") = p.wrap);
  }
  py::dict operator()(const BsrParams& p) const {
    return py::dict(py::arg("block_size") = p.block_size, py::arg("keep_ratio") = p.keep_ratio,
                    py::arg("comp_block_size") = p.comp_block_size, py::arg("global_tokens") = p.global_tokens);
  }
  py::dict operator()(const BlockLocalGlobalParams& p) const {
    return py::dict(py::arg("block_size") = p.block_size, py::arg("window_blocks") = p.window_blocks,
                    py::arg("global_tokens") = p.global_tokens);
  }
  py::dict operator()(const NmParams& p) const { return py::dict(py::arg("nm_n") = p.nm_n, py::arg("nm_m") = p.nm_m); }
  py::dict operator()(const TopkParams& p) const { return py::dict(py::arg("topk_k") = p.topk_k); }
  py::dict operator()(const LshParams& p) const {
    return py::dict(py::arg("lsh_buckets") = p.lsh_buckets, py::arg("lsh_rounds") = p.lsh_rounds,
                    py::arg("seed") = p.seed);
  }
  py::dict operator()(const LandmarkParams& p) const {
    return py::dict(py::arg("num_landmarks") = p.num_landmarks, py::arg("landmark_iters") = p.landmark_iters);
  }
  py::dict operator()(const QuestParams& p) const {
    return py::dict(py::arg("page_size") = p.page_size, py::arg("top_pages") = p.top_pages);
  }
};

// Parses ops; warnings (unknown attributes) come back beside them for the caller to judge.
py::tuple parse(const std::string& text, const std::string& filename, const std::string& format) {
  std::vector<std::string> warnings;
  std::vector<Op> ops = parse_ops(text, filename, format_named(format), &warnings);
  return py::make_tuple(ops, warnings);
}

py::tuple read(const std::string& path, const std::string& format) {
  std::vector<std::string> warnings;
  std::vector<Op> ops;
  {
    py::gil_scoped_release nogil;
    ops = read_ops(path, format_named(format), &warnings);
  }
  return py::make_tuple(ops, warnings);
}

// An op from a JSON object the package built from keyword arguments: the library's own reader
// (names, aliases, types, validation). Its messages are the library's; the location (a column in
// text the user never saw) is dropped.
Op op_from_json(const std::string& text) {
  std::vector<std::string> warnings;
  std::vector<Op> ops;
  try {
    ops = parse_ops(text, "", OpFormat::json, &warnings);
  } catch (const Error& e) {
    throw Error(e.kind(), e.message());
  }
  if (!warnings.empty()) {
    std::string w = warnings.front();
    // "LINE:COL: message" without a file: keep the message.
    const size_t at = w.find(": ");
    throw Error(ErrorKind::invalid_input, at == std::string::npos ? w : w.substr(at + 2));
  }
  if (ops.size() != 1) throw Error(ErrorKind::invalid_input, "expected one op");
  Op op = std::move(ops.front());
  op.loc = {};  // positions in text the user never saw: later messages name no location
  op.attr_loc.clear();
  return op;
}

// A calibration array as a Tensor (copied; input_view checks dtype, rank and layout).
Tensor sample_tensor(const py::array& a, const char* name) {
  const TensorView v = input_view(a, name);
  Tensor t;
  t.shape = v.shape;
  t.data.assign(v.data, v.data + v.size());
  return t;
}

Plan select_plan(const Op& op, const std::optional<std::string>& backend, const std::optional<std::string>& force,
                 const std::optional<std::vector<std::string>>& disable, std::optional<bool> prefer_bsr,
                 std::optional<bool> prefer_sw, std::optional<int64_t> l1_bytes,
                 const std::optional<std::string>& profile, std::optional<double> min_recall,
                 const std::vector<std::string>& data, const std::vector<py::tuple>& arrays,
                 std::optional<uint64_t> seed, std::optional<double> recall_confidence,
                 const std::optional<std::string>& recall_bound) {
  SelectRequest req;
  req.backend = backend;
  if (force) req.force = spec_option("force", *force);
  if (disable) {
    std::vector<Spec> specs;
    for (const std::string& s : *disable) specs.push_back(spec_option("disable", s));
    req.disable = specs;
  }
  req.prefer_bsr = prefer_bsr;
  req.prefer_sw = prefer_sw;
  req.l1_bytes = l1_bytes;
  req.profile = profile;
  req.min_recall = min_recall;
  req.data = data;
  req.seed = seed;
  req.recall_confidence = recall_confidence;
  if (recall_bound) {
    req.recall_bound = parse_recall_bound(*recall_bound);
    if (!req.recall_bound)
      throw Error(ErrorKind::usage, "--recall-bound must be window, mean or cv (got '" + *recall_bound + "')");
  }
  SelectOptions options = resolve_select_request(req);
  if (!arrays.empty()) {
    // In-memory calibration samples (copied, as float32 bhsd; the selector checks shapes and values).
    auto samples = std::make_shared<std::vector<QKV>>();
    for (const py::tuple& t : arrays) {
      if (t.size() != 3) throw Error(ErrorKind::usage, "data: each sample is a (q, k, v) tuple or a directory");
      QKV q;
      q.q = sample_tensor(t[0].cast<py::array>(), "q");
      q.k = sample_tensor(t[1].cast<py::array>(), "k");
      q.v = sample_tensor(t[2].cast<py::array>(), "v");
      samples->push_back(std::move(q));
    }
    options.calibration_samples = std::move(samples);
  }
  py::gil_scoped_release nogil;
  return select_spec(op, options);
}

}  // namespace

void bind_ops(py::module_& m) {
  py::class_<Op>(m, "Op", "An attention op (C++ sattn::Op); build one with sattn.Op(...).")
      .def_property_readonly("name", [](const Op& o) { return o.name; })
      .def_property_readonly("batch", [](const Op& o) { return o.shape.batch; })
      .def_property_readonly("heads", [](const Op& o) { return o.shape.heads; })
      .def_property_readonly("kv_heads", [](const Op& o) { return o.shape.kv_heads; })
      .def_property_readonly("seq_len", [](const Op& o) { return o.shape.seq_len; })
      .def_property_readonly("kv_len", [](const Op& o) { return o.shape.kv_len; })
      .def_property_readonly("head_dim", [](const Op& o) { return o.shape.head_dim; })
      .def_property_readonly("causal", [](const Op& o) { return o.causal; })
      .def_property_readonly("precision", [](const Op& o) { return std::string(to_string(o.precision)); })
      .def_property_readonly("quant_scheme",
                             [](const Op& o) -> py::object {
                               if (!o.quant_scheme) return py::none();
                               return py::str(to_string(*o.quant_scheme));
                             })
      .def_property_readonly("softmax_scale", &Op::softmax_scale)
      .def_property_readonly("softcap", [](const Op& o) { return o.softcap; })
      .def_property_readonly("location", [](const Op& o) { return o.loc.str(); })
      .def("to_dict", &op_to_dict);
  m.def("op_from_json", &op_from_json, py::arg("text"));
  m.def("parse_ops", &parse, py::arg("text"), py::arg("filename"), py::arg("format"));
  m.def("read_ops", &read, py::arg("path"), py::arg("format"));

  m.def("spec_names", [] {
    std::vector<std::string> names;
    for (Spec s : kAllSpecs) names.emplace_back(to_string(s));
    return names;
  });
  m.def("canonical_spec", [](const std::string& name) { return std::string(to_string(spec_named(name))); },
        py::arg("name"));
  m.def("is_data_dependent", [](const std::string& name) { return is_data_dependent(spec_named(name)); });
  m.def("is_block_spec", [](const std::string& name) { return is_block_spec(spec_named(name)); });
  m.def("resolve_params",
        [](const Op& op, const std::string& spec) { return std::visit(ParamsToDict{}, resolve_params(op, spec_named(spec))); },
        py::arg("op"), py::arg("spec"));

  py::class_<Candidate>(m, "Candidate")
      .def_property_readonly("spec", [](const Candidate& c) { return std::string(to_string(c.spec)); })
      .def_readonly("feasible", &Candidate::feasible)
      .def_readonly("why_not", &Candidate::why_not)
      .def_readonly("terms_json", &Candidate::terms)
      .def_readonly("cost", &Candidate::cost);
  py::class_<Plan>(m, "Plan")
      .def_readonly("op", &Plan::op)
      .def_property_readonly("spec", [](const Plan& p) { return std::string(to_string(p.spec)); })
      .def_property_readonly("params", [](const Plan& p) { return std::visit(ParamsToDict{}, p.params); })
      .def_property_readonly("backend", [](const Plan& p) { return std::string(to_string(p.backend)); })
      .def_property_readonly("kind", [](const Plan& p) { return p.selection.kind; })
      .def_property_readonly("reason", [](const Plan& p) { return p.selection.reason; })
      .def_property_readonly("candidates", [](const Plan& p) { return p.selection.candidates; });
  m.def("select", &select_plan, py::arg("op"), py::arg("backend"), py::arg("force"), py::arg("disable"),
        py::arg("prefer_bsr"), py::arg("prefer_sw"), py::arg("l1_bytes"), py::arg("profile"),
        py::arg("min_recall") = std::nullopt, py::arg("data") = std::vector<std::string>{},
        py::arg("arrays") = std::vector<py::tuple>{}, py::arg("seed") = std::nullopt,
        py::arg("recall_confidence") = std::nullopt, py::arg("recall_bound") = std::nullopt);
  // A plan for a spec the caller names (sparse_attention(pattern=...)): the op's params resolved.
  m.def(
      "plan_for",
      [](const Op& op, const std::string& spec) {
        Plan plan;
        plan.op = op;
        plan.spec = spec_named(spec);
        plan.params = resolve_params(op, plan.spec);
        plan.selection.kind = "override";
        plan.selection.reason = "pattern '" + spec + "' given by the caller";
        return plan;
      },
      py::arg("op"), py::arg("spec"));
}

}  // namespace sattn::python
