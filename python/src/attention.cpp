// Layouts and attention: sattn.layout, the forward and backward kernels, the double-precision
// reference (layout.hpp, attention.hpp). Arrays arrive as numpy arrays that the package checked
// and the checks here repeat (float32, C-contiguous, 4-D); they are read and written in place.
#include <pybind11/stl.h>

#include <memory>

#include "common.hpp"

namespace sattn::python {

namespace {

// A layout held by Python; the index arrays are handed out as numpy views that keep it alive.
using LayoutPtr = std::shared_ptr<Layout>;

void check_head(const Layout& l, int64_t b, int64_t kvh) {
  if (b < 0 || b >= l.batch || kvh < 0 || kvh >= l.kv_heads)
    throw Error(ErrorKind::usage, "layout head (" + std::to_string(b) + ", " + std::to_string(kvh) +
                                      ") out of range: batch " + std::to_string(l.batch) + ", kv_heads " +
                                      std::to_string(l.kv_heads));
}

template <typename T>
py::array view_of(const std::vector<T>& v, const py::object& owner) {
  // Read-only: the layout is shared by every call that uses it.
  py::array a(py::dtype::of<T>(), {static_cast<py::ssize_t>(v.size())}, {static_cast<py::ssize_t>(sizeof(T))},
              v.data(), owner);
  py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return a;
}

LayoutPtr layout_for(const Plan& plan, const py::object& q, const py::object& k) {
  TensorView qv, kv;
  if (!q.is_none()) qv = input_view(q.cast<py::array>(), "q");
  if (!k.is_none()) kv = input_view(k.cast<py::array>(), "k");
  py::gil_scoped_release nogil;
  return std::make_shared<Layout>(build_layout(plan.op, plan.spec, plan.params, qv, kv));
}

FastOptions fast_options(int threads) {
  FastOptions o;
  o.threads = threads;
  return o;
}

void forward(const Plan& plan, const Layout& layout, const py::array& q, const py::array& k, const py::array& v,
             const py::array& out, const py::object& lse, int threads) {
  const TensorView qv = input_view(q, "q"), kv = input_view(k, "k"), vv = input_view(v, "v");
  const MutableTensorView ov = output_view(out, "out");
  float* lp = lse_pointer(lse, qv.shape[0] * qv.shape[1] * qv.shape[2], "lse");
  py::gil_scoped_release nogil;
  fast_attention_into(plan.op, layout, qv, kv, vv, ov, lp, fast_options(threads));
}

void backward(const Plan& plan, const Layout& layout, const py::array& q, const py::array& k, const py::array& v,
              const py::array& out, const py::array& dout, const py::array& lse, const py::array& dq,
              const py::array& dk, const py::array& dv, int threads) {
  const TensorView qv = input_view(q, "q"), kv = input_view(k, "k"), vv = input_view(v, "v");
  const TensorView ov = input_view(out, "out"), gv = input_view(dout, "dout");
  const float* lp = lse_pointer(lse, qv.shape[0] * qv.shape[1] * qv.shape[2], "lse");
  if (!lp) throw Error(ErrorKind::invalid_input, "lse: required by the backward pass");
  const MutableTensorView dqv = output_view(dq, "dq"), dkv = output_view(dk, "dk"), dvv = output_view(dv, "dv");
  py::gil_scoped_release nogil;
  fast_attention_backward(plan.op, layout, qv, kv, vv, ov, gv, lp, dqv, dkv, dvv, fast_options(threads));
}

// The reference takes owning Tensors: a copy, which the reference (double accumulation, for
// checks) can afford.
Tensor copy_in(const py::array& a, const char* what) {
  const TensorView v = input_view(a, what);
  Tensor t;
  t.shape = v.shape;
  t.data.assign(v.data, v.data + v.size());
  return t;
}

void copy_out(const Tensor& t, const py::array& a, const char* what) {
  const MutableTensorView o = output_view(a, what);
  if (o.shape != t.shape) throw Error(ErrorKind::invalid_input, std::string(what) + ": shape does not match");
  std::copy(t.data.begin(), t.data.end(), o.data);
}

void check_same_shape(const TensorView& a, const TensorView& b, const char* what) {
  if (a.shape != b.shape) throw Error(ErrorKind::invalid_input, std::string(what) + ": shape does not match q's");
}

void reference_forward(const Plan& plan, const Layout& layout, const py::array& q, const py::array& k,
                       const py::array& v, const py::array& out, const py::object& lse, bool quantized) {
  const bool integer = plan.op.precision == Precision::i8 || plan.op.precision == Precision::i4;
  if (quantized && !integer)
    throw Error(ErrorKind::usage, "quantized=True needs an i8 or i4 op (this one is " +
                                      std::string(to_string(plan.op.precision)) + ")");
  if (quantized && !lse.is_none()) throw Error(ErrorKind::usage, "quantized=True gives no lse");
  Tensor qt = copy_in(q, "q"), kt = copy_in(k, "k"), vt = copy_in(v, "v");
  check_same_shape(qt, input_view(out, "out"), "out");
  float* lp = lse_pointer(lse, qt.shape[0] * qt.shape[1] * qt.shape[2], "lse");
  Tensor o;
  std::vector<double> l;
  {
    py::gil_scoped_release nogil;
    // The fast kernel validates shapes against the op and layout; the reference trusts them.
    check_same_shape(kt, vt, "v");
    if (qt.shape != std::array<int64_t, 4>{plan.op.shape.batch, plan.op.shape.heads, plan.op.shape.seq_len,
                                           plan.op.shape.head_dim} ||
        kt.shape != std::array<int64_t, 4>{plan.op.shape.batch, plan.op.shape.kv_heads, plan.op.shape.kv_len,
                                           plan.op.shape.head_dim})
      throw Error(ErrorKind::invalid_input, "q/k/v shapes do not match the op");
    // quantized: the double reference of the op's quantization scheme (its quant_scheme, else the
    // recommended one): the same codes, scales, means and P/V rounding as the kernels.
    o = quantized ? reference_attention_quantized(plan.op, layout, qt, kt, vt) : reference_attention(plan.op, layout, qt, kt, vt);
    if (lp) l = reference_lse(plan.op, layout, qt, kt);
  }
  copy_out(o, out, "out");
  for (size_t i = 0; i < l.size(); ++i) lp[i] = static_cast<float>(l[i]);
}

void reference_backward(const Plan& plan, const Layout& layout, const py::array& q, const py::array& k,
                        const py::array& v, const py::array& dout, const py::array& dq, const py::array& dk,
                        const py::array& dv) {
  Tensor qt = copy_in(q, "q"), kt = copy_in(k, "k"), vt = copy_in(v, "v"), gt = copy_in(dout, "dout");
  Gradients g;
  {
    py::gil_scoped_release nogil;
    check_same_shape(kt, vt, "v");
    check_same_shape(qt, gt, "dout");
    if (qt.shape != std::array<int64_t, 4>{plan.op.shape.batch, plan.op.shape.heads, plan.op.shape.seq_len,
                                           plan.op.shape.head_dim} ||
        kt.shape != std::array<int64_t, 4>{plan.op.shape.batch, plan.op.shape.kv_heads, plan.op.shape.kv_len,
                                           plan.op.shape.head_dim})
      throw Error(ErrorKind::invalid_input, "q/k/v shapes do not match the op");
    g = reference_attention_backward(plan.op, layout, qt, kt, vt, gt);
  }
  copy_out(g.dq, dq, "dq");
  copy_out(g.dk, dk, "dk");
  copy_out(g.dv, dv, "dv");
}

}  // namespace

void bind_attention(py::module_& m) {
  py::class_<Layout, LayoutPtr>(m, "Layout", "A CSR/BSR layout (C++ sattn::Layout).")
      .def_property_readonly("spec", [](const Layout& l) { return std::string(to_string(l.spec)); })
      .def_readonly("block", &Layout::block)
      .def_readonly("rows", &Layout::rows)
      .def_readonly("cols", &Layout::cols)
      .def_readonly("block_size", &Layout::block_size)
      .def_readonly("causal", &Layout::causal)
      .def_readonly("causal_offset", &Layout::causal_offset)
      .def_readonly("batch", &Layout::batch)
      .def_readonly("kv_heads", &Layout::kv_heads)
      .def_readonly("shared", &Layout::shared)
      .def_property_readonly("block_rows", &Layout::block_rows)
      .def_property_readonly("block_cols", &Layout::block_cols)
      .def_property_readonly("density", &Layout::density)
      .def_property_readonly("index_bytes", &Layout::index_bytes)
      .def("allowed_pairs",
           [](const Layout& l, int64_t b, int64_t kvh) {
             check_head(l, b, kvh);
             return l.allowed_pairs(b, kvh);
           })
      .def("ptr",
           [](py::object self, int64_t b, int64_t kvh) {
             const Layout& l = self.cast<const Layout&>();
             check_head(l, b, kvh);
             return view_of(l.head(b, kvh).ptr, self);
           })
      .def("idx",
           [](py::object self, int64_t b, int64_t kvh) {
             const Layout& l = self.cast<const Layout&>();
             check_head(l, b, kvh);
             return view_of(l.head(b, kvh).idx, self);
           })
      .def("mask", [](const Layout& l, int64_t b, int64_t kvh) {
        check_head(l, b, kvh);
        std::vector<uint8_t> mask = layout_mask(l, b, kvh);
        py::array_t<bool> a({l.rows, l.cols});
        std::copy(mask.begin(), mask.end(), a.mutable_data());
        return a;
      });
  m.def("build_layout", &layout_for, py::arg("plan"), py::arg("q"), py::arg("k"));
  m.def("forward", &forward, py::arg("plan"), py::arg("layout"), py::arg("q"), py::arg("k"), py::arg("v"),
        py::arg("out"), py::arg("lse"), py::arg("threads"));
  m.def("backward", &backward, py::arg("plan"), py::arg("layout"), py::arg("q"), py::arg("k"), py::arg("v"),
        py::arg("out"), py::arg("dout"), py::arg("lse"), py::arg("dq"), py::arg("dk"), py::arg("dv"),
        py::arg("threads"));
  m.def("reference_forward", &reference_forward, py::arg("plan"), py::arg("layout"), py::arg("q"), py::arg("k"),
        py::arg("v"), py::arg("out"), py::arg("lse"), py::arg("quantized") = false);
  m.def("reference_backward", &reference_backward, py::arg("plan"), py::arg("layout"), py::arg("q"), py::arg("k"),
        py::arg("v"), py::arg("dout"), py::arg("dq"), py::arg("dk"), py::arg("dv"));
  // Fails (ExternalToolFailed, with what to install) when a backend cannot run here.
  m.def("require_backend", [](const std::string& name) {
    const Backend* b = find_backend(name);
    if (!b) throw Error(ErrorKind::usage, "no backend named '" + name + "'");
    b->require_available(BackendRunOptions{});
  });
  m.def("tolerance", [](const std::string& p) {
    auto prec = parse_precision(p);
    if (!prec) throw Error(ErrorKind::invalid_input, "unknown precision '" + p + "' (fp32, bf16, i8, i4)");
    return tolerance(*prec);
  });
}

}  // namespace sattn::python
