// The C API (sattn.h): DLPack tensors, layouts, artifacts, forward and backward.
#include <cstddef>
#include <cstring>
#include <string>

#include "backends/cuda/run_cuda.hpp"
#include "capi/capi_internal.hpp"
#include "formats/emit.hpp"
#include "sattn/attention.hpp"

namespace sattn::capi {

namespace {

std::string dims_of(const DLTensor* t) {
  std::string s = "[";
  for (int d = 0; d < t->ndim; ++d) s += (d ? ", " : "") + std::to_string(t->shape[d]);
  return s + "]";
}

const float* checked_data(const DLTensor* t, const char* fn, const char* name, int ndim, Device* device,
                          std::array<int64_t, 4>& shape) {
  const std::string who = std::string(fn) + ": " + name;
  if (!t) throw Error(ErrorKind::usage, who + " is NULL");
  if (t->dtype.code != kDLFloat || t->dtype.bits != 32 || t->dtype.lanes != 1)
    throw Error(ErrorKind::invalid_input, who + " must be float32 (DLPack code " + std::to_string(kDLFloat) +
                                              ", 32 bits, 1 lane); got code " + std::to_string(t->dtype.code) +
                                              ", " + std::to_string(t->dtype.bits) + " bits, " +
                                              std::to_string(t->dtype.lanes) + " lanes");
  if (t->ndim != ndim)
    throw Error(ErrorKind::invalid_input, who + " must have " + std::to_string(ndim) + " dimensions, it has " +
                                              std::to_string(t->ndim));
  if (!t->shape) throw Error(ErrorKind::invalid_input, who + " has no shape");
  int64_t size = 1;
  for (int d = 0; d < ndim; ++d) {
    if (t->shape[d] < 0) throw Error(ErrorKind::invalid_input, who + " has a negative extent " + dims_of(t));
    size *= t->shape[d];
  }
  // C order: stride[d] = product of the later extents; an extent of 1 (or an empty tensor) lets
  // any stride through, as DLPack producers are free to write anything there.
  if (t->strides && size > 0) {
    int64_t expect = 1;
    for (int d = ndim - 1; d >= 0; --d) {
      if (t->shape[d] != 1 && t->strides[d] != expect)
        throw Error(ErrorKind::invalid_input, who + " is not C-contiguous (shape " + dims_of(t) + ", stride " +
                                                  std::to_string(t->strides[d]) + " in dimension " +
                                                  std::to_string(d) + ", expected " + std::to_string(expect) +
                                                  "); pass a contiguous copy");
      expect *= t->shape[d];
    }
  }
  switch (t->device.device_type) {
    case kDLCPU:
    case kDLCUDAHost: *device = Device::cpu; break;
    case kDLCUDA: *device = Device::cuda; break;
    default:
      throw Error(ErrorKind::invalid_input, who + " is on DLPack device type " +
                                                std::to_string(int(t->device.device_type)) +
                                                "; sattn takes CPU (1) and CUDA (2) tensors");
  }
  const auto* data = reinterpret_cast<const float*>(static_cast<const char*>(t->data) + t->byte_offset);
  if (size > 0 && !t->data) throw Error(ErrorKind::invalid_input, who + " has no data");
  if (reinterpret_cast<uintptr_t>(data) % alignof(float) != 0)
    throw Error(ErrorKind::invalid_input, who + " is not aligned to 4 bytes");
  shape = {1, 1, 1, 1};
  for (int d = 0; d < ndim; ++d) shape[d] = t->shape[d];
  return data;
}

Device same_device(const char* fn, std::initializer_list<Device> devices) {
  const Device first = *devices.begin();
  for (Device d : devices)
    if (d != first) throw Error(ErrorKind::invalid_input, std::string(fn) + ": the tensors are on different devices");
  return first;
}

FastOptions fast_options(const sattn_run_options* o) {
  FastOptions f;
  if (!o) return f;
  if (o->struct_size < sizeof(size_t))
    throw Error(ErrorKind::usage, "sattn_run_options: struct_size is not set (call sattn_run_options_init)");
  if (offsetof(sattn_run_options, threads) + sizeof(o->threads) > o->struct_size) return f;  // an older header
  if (o->threads < 0) throw Error(ErrorKind::usage, "sattn_run_options: threads must be >= 0");
  f.threads = o->threads;
  return f;
}

// lse [batch, heads, seq_len] of the op, as a float pointer (null when t is null and optional).
const float* lse_of(const DLTensor* t, const Op& op, const char* fn, Device* device) {
  std::array<int64_t, 4> shape{};
  const float* data = checked_data(t, fn, "lse", 3, device, shape);
  const std::array<int64_t, 4> want{op.shape.batch, op.shape.heads, op.shape.seq_len, 1};
  if (shape != want)
    throw Error(ErrorKind::invalid_input, std::string(fn) + ": lse has shape " + dims_of(t) + ", the op needs [" +
                                              std::to_string(want[0]) + ", " + std::to_string(want[1]) + ", " +
                                              std::to_string(want[2]) + "]");
  return data;
}

}  // namespace

TensorView view_of(const DLTensor* t, const char* fn, const char* name, int ndim, Device* device) {
  std::array<int64_t, 4> shape{};
  const float* data = checked_data(t, fn, name, ndim, device, shape);
  return TensorView(data, shape);
}

MutableTensorView mutable_view_of(DLTensor* t, const char* fn, const char* name, int ndim, Device* device) {
  std::array<int64_t, 4> shape{};
  const float* data = checked_data(t, fn, name, ndim, device, shape);
  return MutableTensorView(const_cast<float*>(data), shape);
}

}  // namespace sattn::capi

using namespace sattn;
using sattn::capi::Device;
using sattn::capi::guarded;
using sattn::capi::require;

extern "C" {

sattn_status sattn_layout_build(const sattn_plan* plan, const DLTensor* q, const DLTensor* k, sattn_layout** layout) {
  constexpr const char* fn = "sattn_layout_build";
  return guarded(fn, [&] {
    require(plan, fn, "plan");
    require(layout, fn, "layout");
    *layout = nullptr;
    TensorView qv, kv;
    Device dq = Device::cpu, dk = Device::cpu;
    if (q) qv = capi::view_of(q, fn, "q", 4, &dq);
    if (k) kv = capi::view_of(k, fn, "k", 4, &dk);
    if ((q && dq != Device::cpu) || (k && dk != Device::cpu))
      throw Error(ErrorKind::invalid_input, std::string(fn) + ": layouts are built from CPU tensors (q/k on the host)");
    const Plan& p = plan->plan;
    *layout = new sattn_layout{build_layout(p.op, p.spec, p.params, qv, kv)};
  });
}

void sattn_layout_free(sattn_layout* layout) { delete layout; }

sattn_status sattn_layout_get_info(const sattn_layout* layout, sattn_layout_info* info) {
  constexpr const char* fn = "sattn_layout_get_info";
  return guarded(fn, [&] {
    require(layout, fn, "layout");
    require(info, fn, "info");
    const Layout& l = layout->layout;
    *info = sattn_layout_info{l.block ? 1 : 0,  l.shared ? 1 : 0, l.causal ? 1 : 0, l.rows,    l.cols,
                              l.block_size,     l.causal_offset,  l.batch,          l.kv_heads, 0,
                              l.density()};
    info->lists = l.block ? l.block_rows() : l.rows;
  });
}

sattn_status sattn_layout_arrays(const sattn_layout* layout, int64_t b, int64_t kvh, const int64_t** ptr,
                                 size_t* ptr_count, const int32_t** idx, size_t* idx_count) {
  constexpr const char* fn = "sattn_layout_arrays";
  return guarded(fn, [&] {
    require(layout, fn, "layout");
    require(ptr, fn, "ptr");
    require(idx, fn, "idx");
    const Layout& l = layout->layout;
    if (b < 0 || b >= l.batch || kvh < 0 || kvh >= l.kv_heads)
      throw Error(ErrorKind::usage, std::string(fn) + ": (batch " + std::to_string(b) + ", kv head " +
                                        std::to_string(kvh) + ") is outside the layout's " + std::to_string(l.batch) +
                                        " x " + std::to_string(l.kv_heads));
    const HeadLayout& h = l.head(b, kvh);
    *ptr = h.ptr.data();
    *idx = h.idx.data();
    if (ptr_count) *ptr_count = h.ptr.size();
    if (idx_count) *idx_count = h.idx.size();
  });
}

sattn_status sattn_layout_emit(const sattn_plan* plan, const char* out_dir, const char* data_dir, uint64_t seed,
                               int replace) {
  constexpr const char* fn = "sattn_layout_emit";
  return guarded(fn, [&] {
    require(plan, fn, "plan");
    require(out_dir, fn, "out_dir");
    EmitOptions options;
    options.out_dir = out_dir;
    if (data_dir) options.data.dir = data_dir;
    if (seed != 0) options.data.seed = seed;
    options.stage.force = replace != 0;
    emit_artifacts(plan->plan, options);
  });
}

void sattn_run_options_init(sattn_run_options* options) {
  if (!options) return;
  *options = sattn_run_options{};
  options->struct_size = sizeof(sattn_run_options);
}

sattn_status sattn_forward(const sattn_plan* plan, const sattn_layout* layout, const DLTensor* q, const DLTensor* k,
                           const DLTensor* v, DLTensor* out, DLTensor* lse, const sattn_run_options* options) {
  constexpr const char* fn = "sattn_forward";
  return guarded(fn, [&] {
    require(plan, fn, "plan");
    require(layout, fn, "layout");
    Device dq, dk, dv, dout, dlse;
    const TensorView qv = capi::view_of(q, fn, "q", 4, &dq), kv = capi::view_of(k, fn, "k", 4, &dk),
                     vv = capi::view_of(v, fn, "v", 4, &dv);
    const MutableTensorView ov = capi::mutable_view_of(out, fn, "out", 4, &dout);
    float* lse_data = lse ? const_cast<float*>(capi::lse_of(lse, plan->plan.op, fn, &dlse)) : nullptr;
    if (!lse) dlse = dq;  // no lse: nothing to agree with
    const Device device = capi::same_device(fn, {dq, dk, dv, dout, dlse});
    const FastOptions fo = capi::fast_options(options);
    if (device == Device::cpu) {
      fast_attention_into(plan->plan.op, layout->layout, qv, kv, vv, ov, lse_data, fo);
      return;
    }
    cuda_forward_device(plan->plan.op, layout->layout, qv, kv, vv, ov, lse_data);
  });
}

sattn_status sattn_backward(const sattn_plan* plan, const sattn_layout* layout, const DLTensor* q, const DLTensor* k,
                            const DLTensor* v, const DLTensor* out, const DLTensor* dout, const DLTensor* lse,
                            DLTensor* dq, DLTensor* dk, DLTensor* dv, const sattn_run_options* options) {
  constexpr const char* fn = "sattn_backward";
  return guarded(fn, [&] {
    require(plan, fn, "plan");
    require(layout, fn, "layout");
    Device d[9];
    const TensorView qv = capi::view_of(q, fn, "q", 4, &d[0]), kv = capi::view_of(k, fn, "k", 4, &d[1]),
                     vv = capi::view_of(v, fn, "v", 4, &d[2]), ov = capi::view_of(out, fn, "out", 4, &d[3]),
                     gv = capi::view_of(dout, fn, "dout", 4, &d[4]);
    const float* lse_data = capi::lse_of(lse, plan->plan.op, fn, &d[5]);
    const MutableTensorView dqv = capi::mutable_view_of(dq, fn, "dq", 4, &d[6]),
                            dkv = capi::mutable_view_of(dk, fn, "dk", 4, &d[7]),
                            dvv = capi::mutable_view_of(dv, fn, "dv", 4, &d[8]);
    const Device device = capi::same_device(fn, {d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8]});
    if (device != Device::cpu)
      throw Error(ErrorKind::external_tool, std::string(fn) + ": backward not built for cuda (CPU tensors only)");
    fast_attention_backward(plan->plan.op, layout->layout, qv, kv, vv, ov, gv, lse_data, dqv, dkv, dvv,
                            capi::fast_options(options));
  });
}

}  // extern "C"
