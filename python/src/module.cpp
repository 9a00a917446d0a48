// sattn._sattn: the C++ half of the sattn Python package. Errors cross as the package's exception
// classes (sattn._errors: one per ErrorKind, the exit codes of DESIGN §7) with the library's
// message and location.
#include <pybind11/stl.h>

#include <cstring>

#include "common.hpp"

namespace sattn::python {

namespace {

const char* kind_class(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::ok: break;
    case ErrorKind::runtime: return "RuntimeFailure";
    case ErrorKind::usage: return "Usage";
    case ErrorKind::invalid_input: return "InvalidInput";
    case ErrorKind::external_tool: return "ExternalToolFailed";
    case ErrorKind::check_failed: return "CheckFailed";
  }
  return "Error";
}

void raise_sattn_error(const Error& e) {
  py::object errors = py::module_::import("sattn._errors");
  py::object cls = errors.attr(kind_class(e.kind()));
  py::object exc = cls(py::str(e.what()), py::str(e.message()), py::str(e.loc().str()));
  PyErr_SetObject(cls.ptr(), exc.ptr());
}

}  // namespace

TensorView input_view(const py::array& a, const char* what) {
  if (!a.dtype().is(py::dtype::of<float>()))
    throw Error(ErrorKind::invalid_input,
                std::string(what) + ": dtype " + std::string(py::str(a.dtype())) + ", expected float32");
  if (a.ndim() != 4)
    throw Error(ErrorKind::invalid_input, std::string(what) + ": " + std::to_string(a.ndim()) +
                                              "-D array, expected 4-D [batch, heads, len, head_dim]");
  if (!(a.flags() & py::array::c_style))
    throw Error(ErrorKind::invalid_input, std::string(what) + ": not C-contiguous");
  std::array<int64_t, 4> shape{};
  for (int i = 0; i < 4; ++i) shape[i] = static_cast<int64_t>(a.shape(i));
  return TensorView(static_cast<const float*>(a.data()), shape);
}

MutableTensorView output_view(const py::array& a, const char* what) {
  TensorView v = input_view(a, what);
  if (!a.writeable()) throw Error(ErrorKind::invalid_input, std::string(what) + ": read-only array");
  return MutableTensorView(const_cast<float*>(v.data), v.shape);
}

float* lse_pointer(const py::object& o, int64_t count, const char* what) {
  if (o.is_none()) return nullptr;
  const std::string expected = std::string(what) + ": expected a writeable C-contiguous float32 array of " +
                               std::to_string(count) + " elements";
  if (!py::isinstance<py::array>(o)) throw Error(ErrorKind::invalid_input, expected);
  py::array a = py::reinterpret_borrow<py::array>(o);
  if (!a.dtype().is(py::dtype::of<float>()) || !(a.flags() & py::array::c_style) ||
      !a.writeable() || a.size() != count)
    throw Error(ErrorKind::invalid_input, expected);
  return static_cast<float*>(a.mutable_data());
}

}  // namespace sattn::python

PYBIND11_MODULE(_sattn, m) {
  namespace py = pybind11;
  using namespace sattn;
  m.doc() = "The C++ half of the sattn package (libsattn's public API); use the `sattn` package instead.";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      python::raise_sattn_error(e);
    }
  });
  m.def("version", [] { return std::string(sattn::version()); }, "libsattn's version, MAJOR.MINOR.PATCH.");
  python::bind_ops(m);
  python::bind_attention(m);
  python::bind_calibrate(m);
  python::bind_cuda(m);
}
