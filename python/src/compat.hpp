// Interim: libsattn before the zero-copy views and the backward pass (issue 19, branch bwd).
// The forward copies through sattn::fast_attention; the backward is unavailable.
#pragma once
#include <array>
#include <cstdint>

#include "sattn/sattn.hpp"

#ifdef SATTN_PY_PRE_VIEWS
namespace sattn {
struct TensorView {
  std::array<int64_t, 4> shape{0, 0, 0, 0};
  const float* data = nullptr;
  TensorView() = default;
  TensorView(const Tensor& t) : shape(t.shape), data(t.data.data()) {}
  TensorView(const float* d, std::array<int64_t, 4> s) : shape(s), data(d) {}
  int64_t size() const { return shape[0] * shape[1] * shape[2] * shape[3]; }
};
struct MutableTensorView {
  std::array<int64_t, 4> shape{0, 0, 0, 0};
  float* data = nullptr;
  MutableTensorView() = default;
  MutableTensorView(float* d, std::array<int64_t, 4> s) : shape(s), data(d) {}
  operator TensorView() const { return TensorView(data, shape); }
};
struct Gradients {
  Tensor dq, dk, dv;
};
namespace python_compat {
inline Tensor own(TensorView v) {
  Tensor t;
  t.shape = v.shape;
  t.data.assign(v.data, v.data + v.size());
  return t;
}
}  // namespace python_compat
inline Layout build_layout(const Op& op, Spec spec, const SpecParams& params, TensorView q, TensorView k) {
  if (!q.data || !k.data) return build_layout(op, spec, params, nullptr, nullptr);
  Tensor qt = python_compat::own(q), kt = python_compat::own(k);
  return build_layout(op, spec, params, &qt, &kt);
}
inline void fast_attention_into(const Op& op, const Layout& l, TensorView q, TensorView k, TensorView v,
                                MutableTensorView out, float* lse, const FastOptions& o = {}) {
  if (lse) throw Error(ErrorKind::runtime, "this libsattn has no log-sum-exp output (fast_attention_into)");
  Tensor r = fast_attention(op, l, python_compat::own(q), python_compat::own(k), python_compat::own(v), o);
  std::copy(r.data.begin(), r.data.end(), out.data);
}
inline void fast_attention_backward(const Op&, const Layout&, TensorView, TensorView, TensorView, TensorView,
                                    TensorView, const float*, MutableTensorView, MutableTensorView,
                                    MutableTensorView, const FastOptions& = {}) {
  throw Error(ErrorKind::runtime, "this libsattn has no backward pass (fast_attention_backward)");
}
inline Gradients reference_attention_backward(const Op&, const Layout&, const Tensor&, const Tensor&, const Tensor&,
                                              const Tensor&) {
  throw Error(ErrorKind::runtime, "this libsattn has no reference backward");
}
inline std::vector<double> reference_lse(const Op&, const Layout&, const Tensor&, const Tensor&) {
  throw Error(ErrorKind::runtime, "this libsattn has no reference log-sum-exp");
}
}  // namespace sattn
#endif
