// Shared pieces of the sattn Python extension (sattn._sattn): array checks and the error bridge.
// The extension binds the public C++ API only (include/sattn, ARCHITECTURE.md R6); the Python
// package (python/sattn) turns numpy arrays and torch tensors into the arrays checked here.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <array>
#include <cstdint>
#include <string>

#include "sattn/sattn.hpp"

namespace sattn::python {

namespace py = pybind11;

// A float32, C-contiguous, 4-D numpy array (no conversion, no copy): its data and shape.
// Anything else is Error(invalid_input) naming `what` ("q", "dout", ...).
TensorView input_view(const py::array& a, const char* what);
// The same for an array the call writes into (must also be writeable).
MutableTensorView output_view(const py::array& a, const char* what);
// A float32, C-contiguous array of exactly `count` writeable elements (the log-sum-exp), or None.
float* lse_pointer(const py::object& a, int64_t count, const char* what);

// Each binding part registers its functions and classes.
void bind_ops(py::module_& m);
void bind_attention(py::module_& m);
void bind_calibrate(py::module_& m);
void bind_cuda(py::module_& m);

}  // namespace sattn::python
