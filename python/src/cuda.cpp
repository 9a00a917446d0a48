// CUDA tensors: the forward and the backward through libsattn's C API (include/sattn/sattn.h),
// whose sattn_forward / sattn_backward run DLPack tensors on the GPU when libsattn was built with
// the CUDA kernels (and fail with SATTN_EXTERNAL_TOOL, naming what is missing, otherwise). The C++ API has no device entry point;
// the C API is public too (R6).
#include <pybind11/stl.h>

#include <memory>

#include "common.hpp"
#include "sattn/sattn.h"

namespace sattn::python {

namespace {

void check(sattn_status s) {
  if (s == SATTN_OK) return;
  const ErrorKind kind = static_cast<ErrorKind>(static_cast<int>(s));
  throw Error(kind, sattn_last_error());
}

template <typename T, void (*Free)(T*)>
struct Handle {
  T* p = nullptr;
  ~Handle() { Free(p); }
};

DLTensor tensor(uintptr_t data, const std::array<int64_t, 4>& shape, int64_t* shape_store, DLDeviceType type,
                int device_id) {
  for (int i = 0; i < 4; ++i) shape_store[i] = shape[i];
  DLTensor t{};
  t.data = reinterpret_cast<void*>(data);
  t.device = DLDevice{type, device_id};
  t.ndim = 4;
  t.dtype = DLDataType{kDLFloat, 32, 1};
  t.shape = shape_store;
  t.strides = nullptr;
  t.byte_offset = 0;
  return t;
}

// The plan and layout of one call: op_json is the op (sattn.op/v1) with its `spec`; host_q/host_k
// are CPU copies for the data-dependent specs' layout (None for the others). Building is
// deterministic, so the backward rebuilds the forward's layout from the same copies.
struct PlanLayout {
  Handle<sattn_op, sattn_op_free> op;
  Handle<sattn_plan, sattn_plan_free> plan;
  Handle<sattn_layout, sattn_layout_free> layout;
};

std::unique_ptr<PlanLayout> plan_layout(const std::string& op_json, const std::string& spec,
                                        const py::object& host_q, const py::object& host_k) {
  auto pl = std::make_unique<PlanLayout>();
  check(sattn_op_parse(op_json.data(), op_json.size(), "<python>", SATTN_FORMAT_JSON, 0, &pl->op.p, nullptr));
  sattn_select_options so;
  sattn_select_options_init(&so);
  so.force_spec = spec.c_str();
  check(sattn_select(pl->op.p, &so, &pl->plan.p));
  int64_t hq_shape[4], hk_shape[4];
  if (!host_q.is_none() && !host_k.is_none()) {
    const TensorView hq = input_view(host_q.cast<py::array>(), "q (host copy)");
    const TensorView hk = input_view(host_k.cast<py::array>(), "k (host copy)");
    DLTensor tq = tensor(reinterpret_cast<uintptr_t>(hq.data), hq.shape, hq_shape, kDLCPU, 0);
    DLTensor tk = tensor(reinterpret_cast<uintptr_t>(hk.data), hk.shape, hk_shape, kDLCPU, 0);
    py::gil_scoped_release nogil;
    check(sattn_layout_build(pl->plan.p, &tq, &tk, &pl->layout.p));
  } else {
    check(sattn_layout_build(pl->plan.p, nullptr, nullptr, &pl->layout.p));
  }
  return pl;
}

// q/k/v/out: device addresses of contiguous float32 tensors on CUDA device `device`; lse: 0, or
// a float32 [batch, heads, seq_len] tensor that receives each row's log-sum-exp (what
// backward_cuda needs).
void forward_cuda(const std::string& op_json, const std::string& spec, uintptr_t q, uintptr_t k, uintptr_t v,
                  uintptr_t out, std::array<int64_t, 4> q_shape, std::array<int64_t, 4> k_shape, int device,
                  const py::object& host_q, const py::object& host_k, uintptr_t lse) {
  if (!q || !k || !v || !out) throw Error(ErrorKind::invalid_input, "forward_cuda: null tensor address");
  const auto pl = plan_layout(op_json, spec, host_q, host_k);
  int64_t dq_shape[4], dk_shape[4], dv_shape[4], do_shape[4], dl_shape[4];
  DLTensor tq = tensor(q, q_shape, dq_shape, kDLCUDA, device);
  DLTensor tk = tensor(k, k_shape, dk_shape, kDLCUDA, device);
  DLTensor tv = tensor(v, k_shape, dv_shape, kDLCUDA, device);
  DLTensor to = tensor(out, q_shape, do_shape, kDLCUDA, device);
  DLTensor tl = tensor(lse, q_shape, dl_shape, kDLCUDA, device);
  tl.ndim = 3;
  py::gil_scoped_release nogil;
  check(sattn_forward(pl->plan.p, pl->layout.p, &tq, &tk, &tv, &to, lse ? &tl : nullptr, nullptr));
}

// The backward on the GPU (sattn_backward on CUDA tensors): out and lse from forward_cuda, dout
// the output gradient; writes dq (q's shape), dk and dv (k's shape). Every address a contiguous
// float32 tensor on `device`.
void backward_cuda(const std::string& op_json, const std::string& spec, uintptr_t q, uintptr_t k, uintptr_t v,
                   uintptr_t out, uintptr_t dout, uintptr_t lse, uintptr_t dq, uintptr_t dk, uintptr_t dv,
                   std::array<int64_t, 4> q_shape, std::array<int64_t, 4> k_shape, int device,
                   const py::object& host_q, const py::object& host_k) {
  if (!q || !k || !v || !out || !dout || !lse || !dq || !dk || !dv)
    throw Error(ErrorKind::invalid_input, "backward_cuda: null tensor address");
  const auto pl = plan_layout(op_json, spec, host_q, host_k);
  int64_t shapes[9][4];
  DLTensor tq = tensor(q, q_shape, shapes[0], kDLCUDA, device);
  DLTensor tk = tensor(k, k_shape, shapes[1], kDLCUDA, device);
  DLTensor tv = tensor(v, k_shape, shapes[2], kDLCUDA, device);
  DLTensor to = tensor(out, q_shape, shapes[3], kDLCUDA, device);
  DLTensor tg = tensor(dout, q_shape, shapes[4], kDLCUDA, device);
  DLTensor tl = tensor(lse, q_shape, shapes[5], kDLCUDA, device);
  tl.ndim = 3;
  DLTensor tdq = tensor(dq, q_shape, shapes[6], kDLCUDA, device);
  DLTensor tdk = tensor(dk, k_shape, shapes[7], kDLCUDA, device);
  DLTensor tdv = tensor(dv, k_shape, shapes[8], kDLCUDA, device);
  py::gil_scoped_release nogil;
  check(sattn_backward(pl->plan.p, pl->layout.p, &tq, &tk, &tv, &to, &tg, &tl, &tdq, &tdk, &tdv, nullptr));
}

}  // namespace

void bind_cuda(py::module_& m) {
  m.def("forward_cuda", &forward_cuda, py::arg("op_json"), py::arg("spec"), py::arg("q"), py::arg("k"),
        py::arg("v"), py::arg("out"), py::arg("q_shape"), py::arg("k_shape"), py::arg("device"), py::arg("host_q"),
        py::arg("host_k"), py::arg("lse") = uintptr_t(0));
  m.def("backward_cuda", &backward_cuda, py::arg("op_json"), py::arg("spec"), py::arg("q"), py::arg("k"),
        py::arg("v"), py::arg("out"), py::arg("dout"), py::arg("lse"), py::arg("dq"), py::arg("dk"), py::arg("dv"),
        py::arg("q_shape"), py::arg("k_shape"), py::arg("device"), py::arg("host_q"), py::arg("host_k"));
}

}  // namespace sattn::python
