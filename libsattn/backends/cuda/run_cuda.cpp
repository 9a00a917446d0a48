// `sattn run --backend cuda` (run_cuda.hpp). Compiled into libsattn by cuda.cmake; the kernel
// calls exist only when SATTN_HAVE_CUDA (the CUDA kernels were built).
#include "run_cuda.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sattn/cuda.hpp"
#include "sattn/error.hpp"
#include "core/quant.hpp"

#ifdef SATTN_HAVE_CUDA
#include <cuda_runtime.h>

#include "sattn_cuda.h"
#endif

namespace sattn {

namespace {

// What the *_device entry points take (fp32 ops; q, k, v and out shaped like the op; the op's
// layout), checked the same way with or without the kernels.
void check_device_call(const char* who, const Op& op, const Layout& layout, const TensorView& q, const TensorView& k,
                       const TensorView& v, const std::array<int64_t, 4>& out_shape) {
  if (op.precision != Precision::fp32)
    throw Error(ExitCode::invalid_input, std::string(who) + ": CUDA tensors run fp32 ops; op '" + op.name + "' is " +
                                             std::string(to_string(op.precision)) + " (pass CPU tensors)");
  const Shape& s = op.shape;
  const std::array<int64_t, 4> qs{s.batch, s.heads, s.seq_len, s.head_dim}, ks{s.batch, s.kv_heads, s.kv_len, s.head_dim};
  if (q.shape != qs || out_shape != qs || k.shape != ks || v.shape != ks)
    throw Error(ExitCode::invalid_input, std::string(who) + ": a tensor's shape does not match the op");
  if (layout.rows != s.seq_len || layout.cols != s.kv_len || s.head_dim > 256)
    throw Error(ExitCode::invalid_input, std::string(who) + ": the layout or head_dim (<= 256) does not fit the op");
}

void check_device_backward(const char* who, const Op& op, const Layout& layout, const TensorView& q,
                           const TensorView& k, const TensorView& v, const TensorView& out, const TensorView& dout,
                           const MutableTensorView& dq, const MutableTensorView& dk, const MutableTensorView& dv) {
  if (dout.shape != out.shape || dq.shape != q.shape || dk.shape != k.shape || dv.shape != k.shape)
    throw Error(ExitCode::invalid_input, std::string(who) + ": a gradient's shape does not match the op");
  check_device_call(who, op, layout, q, k, v, out.shape);
}

constexpr const char* kForwardWho = "sattn_forward (cuda)";
constexpr const char* kBackwardWho = "sattn_backward (cuda)";

}  // namespace

#ifndef SATTN_HAVE_CUDA

void require_cuda_device() {
  throw Error(ExitCode::external_tool,
              "no CUDA device: this sattn was built without the CUDA kernels (nvcc was not found when it was "
              "configured; see SATTN_CUDA in README.md)");
}

CpuRun run_cuda(const Plan&, const Layout*, const QKV&, const nlohmann::json&, const std::string&, const CheckOptions&) {
  require_cuda_device();
  return {};
}

void cuda_forward_device(const Op& op, const Layout& layout, TensorView q, TensorView k, TensorView v,
                         MutableTensorView out, float*) {
  check_device_call(kForwardWho, op, layout, q, k, v, out.shape);
  require_cuda_device();
}

void cuda_backward_device(const Op& op, const Layout& layout, TensorView q, TensorView k, TensorView v, TensorView out,
                          TensorView dout, const float*, MutableTensorView dq, MutableTensorView dk,
                          MutableTensorView dv) {
  check_device_backward(kBackwardWho, op, layout, q, k, v, out, dout, dq, dk, dv);
  require_cuda_device();
}

CudaProbe probe_cuda() {
  return {"missing", "", "sattn was built without the CUDA kernels (nvcc was not found when it was configured)"};
}

bool cuda_built() { return false; }

struct CudaAttention::Impl {};
CudaAttention::CudaAttention(const Op&, Spec, const SpecParams&, const Layout&, bool) { require_cuda_device(); }
CudaAttention::~CudaAttention() = default;
std::string CudaAttention::kernel() const { return ""; }
void CudaAttention::forward(const void*, const void*, const void*, float*, float*) const { require_cuda_device(); }
void CudaAttention::backward(const void*, const void*, const void*, const float*, const float*, const float*, float*,
                             float*, float*) const {
  require_cuda_device();
}

#else

namespace {

[[noreturn]] void cuda_fail(const std::string& what, const std::string& msg) {
  throw Error(ExitCode::runtime, "cuda backend: " + what + ": " + msg);
}

void ck(cudaError_t e, const char* what) {
  if (e != cudaSuccess) cuda_fail(what, cudaGetErrorString(e));
}

// A device buffer, freed on scope exit.
struct DeviceBuffer {
  void* p = nullptr;
  explicit DeviceBuffer(size_t bytes) { ck(cudaMalloc(&p, std::max<size_t>(bytes, 16)), "cudaMalloc"); }
  ~DeviceBuffer() { cudaFree(p); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

struct PlanHandle {
  SattnCudaPlan* p = nullptr;
  ~PlanHandle() { sattn_cuda_plan_destroy(p); }
};

struct Event {
  cudaEvent_t e{};
  Event() { ck(cudaEventCreate(&e), "cudaEventCreate"); }
  ~Event() { cudaEventDestroy(e); }
};

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

double probe_one(bool bf16, std::string& why, std::string& kernel);  // below, near run_cuda

const char* mode_name(int mode) {
  switch (mode) {
    case SATTN_CUDA_DENSE: return "dense";
    case SATTN_CUDA_CSR: return "csr";
    case SATTN_CUDA_BSR: return "bsr";
    default: return "window";
  }
}

}  // namespace

CudaProbe probe_cuda() {
  char msg[256] = "";
  if (sattn_cuda_device_count(msg) <= 0) return {"missing", "", std::string("no CUDA device (") + msg + ")"};
  CudaProbe p{"ok", "", ""};
  char name[256] = "";
  sattn_cuda_device_name(name);
  int driver = 0;
  cudaDriverGetVersion(&driver);
  p.version = std::string(name) + ", CUDA driver " + std::to_string(driver / 1000) + "." + std::to_string(driver % 1000 / 10);
  for (const bool bf16 : {true, false}) {
    std::string why, kernel;
    double err = -1;
    try {
      err = probe_one(bf16, why, kernel);
    } catch (const Error& e) {  // a failed allocation
      why = e.what();
    }
    const double tol = bf16 ? 1e-2 : 1e-4;
    if (err < 0 || err > tol) {
      p.status = "broken";
      p.detail = std::string(bf16 ? "bf16" : "fp32") + " op: " +
                 (err < 0 ? why : "relative error " + std::to_string(err) + " > " + std::to_string(tol));
      return p;
    }
    p.detail += (p.detail.empty() ? "ran causal GQA ops: " : ", ") + std::string(bf16 ? "bf16 on " : "fp32 on ") + kernel;
  }
  p.detail += " (checked)";
  return p;
}

void require_cuda_device() {
  char msg[256] = "";
  if (sattn_cuda_device_count(msg) > 0) return;
  throw Error(ExitCode::external_tool, std::string("no CUDA device (") + msg + "); run --backend cpu instead");
}

namespace {

// The kernels' view of an op and its layout: a sliding window without wrap is computed on the fly;
// other row layouts go through CSR, block layouts through BSR (ptr/idx filled, offsets absolute).
SattnCudaArgs kernel_args(const Op& op, Spec spec, const SpecParams& params, const Layout& layout, bool bf16,
                          std::vector<int64_t>& ptr, std::vector<int32_t>& idx) {
  const Shape& s = op.shape;
  SattnCudaArgs a{};
  a.bf16 = bf16;
  a.batch = s.batch;
  a.heads = s.heads;
  a.kv_heads = s.kv_heads;
  a.seq_len = s.seq_len;
  a.kv_len = s.kv_len;
  a.head_dim = s.head_dim;
  a.causal = layout.causal;
  a.causal_offset = layout.causal_offset;
  a.scale = float(op.softmax_scale());
  a.shared = layout.shared;
  a.block_size = layout.block_size;
  a.dilation = 1;
  const auto* sw = std::get_if<SlidingWindowParams>(&params);
  if (spec == Spec::sliding_window && sw && !sw->wrap) {
    a.mode = SATTN_CUDA_WINDOW;
    a.window = sw->window_size;
    a.dilation = sw->dilation;
  } else {
    a.mode = layout.block ? SATTN_CUDA_BSR : SATTN_CUDA_CSR;
    for (const HeadLayout& h : layout.heads) {  // one list per layout, offsets made absolute
      const int64_t base = int64_t(idx.size());
      for (int64_t p : h.ptr) ptr.push_back(base + p);
      idx.insert(idx.end(), h.idx.begin(), h.idx.end());
    }
    a.ptr = ptr.data();
    a.idx = idx.data();
  }
  return a;
}

}  // namespace

bool cuda_built() { return true; }

struct CudaAttention::Impl {
  PlanHandle plan;
};

CudaAttention::CudaAttention(const Op& op, Spec spec, const SpecParams& params, const Layout& layout, bool bf16)
    : impl_(std::make_unique<Impl>()) {
  if (op.precision != Precision::fp32 && op.precision != Precision::bf16)
    throw_input_error(op.loc_of("precision"), "the cuda backend runs fp32 and bf16 ops; op '" + op.name + "' is " +
                                                  std::string(to_string(op.precision)));
  require_cuda_device();
  std::vector<int64_t> ptr;
  std::vector<int32_t> idx;
  const SattnCudaArgs a = kernel_args(op, spec, params, layout, bf16, ptr, idx);
  char msg[256] = "";
  if (sattn_cuda_plan_create(&a, 1, &impl_->plan.p, msg) != 0) {
    if (a.head_dim > 256) throw_input_error(op.loc_of("head_dim"), std::string("cuda backend: ") + msg);
    cuda_fail("plan", msg);
  }
}

CudaAttention::~CudaAttention() = default;

std::string CudaAttention::kernel() const { return sattn_cuda_plan_kernel(impl_->plan.p); }

void CudaAttention::forward(const void* q, const void* k, const void* v, float* o, float* lse) const {
  char msg[256] = "";
  if (sattn_cuda_plan_run_lse(impl_->plan.p, q, k, v, o, lse, msg) != 0) cuda_fail("forward", msg);
}

void CudaAttention::backward(const void* q, const void* k, const void* v, const float* o, const float* dout,
                             const float* lse, float* dq, float* dk, float* dv) const {
  char msg[256] = "";
  if (sattn_cuda_plan_backward(impl_->plan.p, q, k, v, o, dout, lse, dq, dk, dv, msg) != 0) cuda_fail("backward", msg);
}

namespace {

// One small causal GQA op on one kernel, against a double-precision softmax: the max-norm
// relative error, or a negative value with `why` set when CUDA failed.
double probe_one(bool bf16, std::string& why, std::string& kernel) {
  constexpr int64_t H = 2, KVH = 1, S = 100, D = 64;
  std::vector<float> q(H * S * D), k(KVH * S * D), v(KVH * S * D);
  uint32_t x = 12345;
  for (auto* t : {&q, &k, &v})
    for (float& f : *t) {
      x = x * 1664525u + 1013904223u;
      f = float(int(x >> 9) % 2001 - 1000) / 1000.0f;
      if (bf16) f = bf16_to_float(float_to_bf16(f));
    }
  SattnCudaArgs a{};
  a.mode = SATTN_CUDA_DENSE;
  a.bf16 = bf16;
  a.batch = 1, a.heads = H, a.kv_heads = KVH, a.seq_len = S, a.kv_len = S, a.head_dim = D;
  a.causal = 1;
  a.scale = 0.125f;
  a.dilation = 1;
  const size_t es = bf16 ? 2 : 4;
  DeviceBuffer dq(q.size() * es), dk(k.size() * es), dv(v.size() * es), dout(q.size() * 4);
  auto put = [&](const std::vector<float>& h, void* d) {
    if (!bf16) return cudaMemcpy(d, h.data(), h.size() * 4, cudaMemcpyHostToDevice);
    std::vector<uint16_t> b(h.size());
    std::transform(h.begin(), h.end(), b.begin(), float_to_bf16);
    return cudaMemcpy(d, b.data(), b.size() * 2, cudaMemcpyHostToDevice);
  };
  char msg[256] = "";
  PlanHandle ph;
  std::vector<float> out(q.size());
  if (put(q, dq.p) || put(k, dk.p) || put(v, dv.p) || sattn_cuda_plan_create(&a, 1, &ph.p, msg) ||
      sattn_cuda_plan_run(ph.p, dq.p, dk.p, dv.p, static_cast<float*>(dout.p), msg) || cudaDeviceSynchronize() ||
      cudaMemcpy(out.data(), dout.p, out.size() * 4, cudaMemcpyDeviceToHost)) {
    const cudaError_t e = cudaGetLastError();
    why = msg[0] ? msg : cudaGetErrorString(e);
    return -1;
  }
  kernel = sattn_cuda_plan_kernel(ph.p);
  double err = 0, top = 0;
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < S; ++i) {
      std::vector<double> p(size_t(i + 1));
      double m = -1e300, sum = 0;
      for (int64_t j = 0; j <= i; ++j) {
        double d = 0;
        for (int64_t c = 0; c < D; ++c) d += double(q[(h * S + i) * D + c]) * k[j * D + c];
        m = std::max(m, p[size_t(j)] = d * 0.125);
      }
      for (double& e : p) sum += (e = std::exp(e - m));
      for (int64_t c = 0; c < D; ++c) {
        double o = 0;
        for (int64_t j = 0; j <= i; ++j) o += p[size_t(j)] * v[j * D + c];
        o /= sum;
        err = std::max(err, std::abs(o - out[(h * S + i) * D + c]));
        top = std::max(top, std::abs(o));
      }
    }
  return err / std::max(top, 1e-30);
}

}  // namespace

CpuRun run_cuda(const Plan& plan, const Layout* given_layout, const QKV& data, const nlohmann::json& data_desc,
                const std::string& tool, const CheckOptions& check_options) {
  const Op& op = plan.op;
  if (op.precision != Precision::fp32 && op.precision != Precision::bf16)
    throw_input_error(op.loc_of("precision"), "the cuda backend runs fp32 and bf16 ops; op '" + op.name + "' is " +
                                                  std::string(to_string(op.precision)));
  require_cuda_device();
  CpuRun r;
  r.spec = plan.spec;
  r.params = plan.params;
  const Shape& s = op.shape;

  auto t0 = std::chrono::steady_clock::now();
  std::optional<Layout> built;
  if (!given_layout) built = build_layout(op, r.spec, r.params, &data.q, &data.k);
  const Layout& layout = given_layout ? *given_layout : *built;
  const double layout_ms = given_layout ? 0.0 : ms_since(t0);

  std::vector<int64_t> ptr;
  std::vector<int32_t> idx;
  const SattnCudaArgs a = kernel_args(op, plan.spec, plan.params, layout, op.precision == Precision::bf16, ptr, idx);

  t0 = std::chrono::steady_clock::now();
  const size_t es = a.bf16 ? 2 : 4;
  auto upload = [&](const Tensor& t) {
    auto buf = std::make_unique<DeviceBuffer>(t.data.size() * es);
    if (a.bf16) {
      std::vector<uint16_t> h(t.data.size());
      std::transform(t.data.begin(), t.data.end(), h.begin(), float_to_bf16);
      ck(cudaMemcpy(buf->p, h.data(), h.size() * 2, cudaMemcpyHostToDevice), "cudaMemcpy");
    } else {
      ck(cudaMemcpy(buf->p, t.data.data(), t.data.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy");
    }
    return buf;
  };
  const auto dq = upload(data.q), dk = upload(data.k), dv = upload(data.v);
  const size_t n_out = size_t(s.batch * s.heads * s.seq_len * s.head_dim);
  DeviceBuffer dout(n_out * 4);
  char msg[256] = "";
  PlanHandle ph;
  if (sattn_cuda_plan_create(&a, 1, &ph.p, msg) != 0) cuda_fail("plan", msg);
  ck(cudaDeviceSynchronize(), "upload");
  const double transfer_ms = ms_since(t0);

  // Kernel time: CUDA events around each launch; a warm-up, then the median of kRuns.
  constexpr int kRuns = 5;
  std::vector<double> times;
  Event e0, e1;
  for (int n = 0; n <= kRuns; ++n) {
    ck(cudaEventRecord(e0.e), "cudaEventRecord");
    if (sattn_cuda_plan_run(ph.p, dq->p, dk->p, dv->p, static_cast<float*>(dout.p), msg) != 0)
      cuda_fail("kernel launch", msg);
    ck(cudaEventRecord(e1.e), "cudaEventRecord");
    ck(cudaEventSynchronize(e1.e), "kernel");
    float ms = 0;
    ck(cudaEventElapsedTime(&ms, e0.e, e1.e), "cudaEventElapsedTime");
    if (n > 0) times.push_back(ms);
  }
  std::sort(times.begin(), times.end());
  const double kernel_ms = times[times.size() / 2];
  r.out = Tensor(s.batch, s.heads, s.seq_len, s.head_dim);
  ck(cudaMemcpy(r.out.data.data(), dout.p, n_out * 4, cudaMemcpyDeviceToHost), "cudaMemcpy");

  double reference_ms = 0;
  nlohmann::json check = check_against_reference(op, layout, data, r, reference_ms, check_options);
  char device[256] = "";
  sattn_cuda_device_name(device);
  nlohmann::json j = result_header(plan, op, op.precision, "cuda", data_desc, layout, tool);
  j["check"] = std::move(check);
  // forward_path names the kernel that ran: "wgmma-pipelined" or "wgmma" (Hopper), "mma.sync", "simt".
  j["cuda"] = {{"device", device},
               {"kernel", sattn_cuda_plan_kernel(ph.p)},
               {"forward_path", sattn_cuda_plan_forward_path(ph.p)},
               {"mode", mode_name(a.mode)}};
  // Wall time only here; kernel_ms is the CUDA-event median of kernel_runs launches.
  j["timing"] = {{"layout_ms", layout_ms},       {"transfer_ms", transfer_ms}, {"kernel_ms", kernel_ms},
                 {"kernel_runs", kRuns},         {"reference_ms", reference_ms}};
  r.result = std::move(j);
  return r;
}

namespace {

// The plan of the *_device entry points (their arguments checked): the layout's CSR/BSR lists,
// fp32 data.
void device_plan(const Op& op, const Layout& layout, PlanHandle& ph) {
  require_cuda_device();
  std::vector<int64_t> ptr;
  std::vector<int32_t> idx;
  const SattnCudaArgs a = kernel_args(op, Spec::dense, DenseParams{}, layout, false, ptr, idx);
  char msg[256] = "";
  if (sattn_cuda_plan_create(&a, 1, &ph.p, msg) != 0) cuda_fail("plan", msg);
}

}  // namespace

void cuda_forward_device(const Op& op, const Layout& layout, TensorView q, TensorView k, TensorView v,
                         MutableTensorView out, float* lse) {
  check_device_call(kForwardWho, op, layout, q, k, v, out.shape);
  PlanHandle ph;
  device_plan(op, layout, ph);
  char msg[256] = "";
  if (sattn_cuda_plan_run_lse(ph.p, q.data, k.data, v.data, out.data, lse, msg) != 0) cuda_fail("kernel launch", msg);
  ck(cudaDeviceSynchronize(), "kernel");
}

void cuda_backward_device(const Op& op, const Layout& layout, TensorView q, TensorView k, TensorView v, TensorView out,
                          TensorView dout, const float* lse, MutableTensorView dq, MutableTensorView dk,
                          MutableTensorView dv) {
  check_device_backward(kBackwardWho, op, layout, q, k, v, out, dout, dq, dk, dv);
  PlanHandle ph;
  device_plan(op, layout, ph);
  char msg[256] = "";
  if (sattn_cuda_plan_backward(ph.p, q.data, k.data, v.data, out.data, dout.data, lse, dq.data, dk.data, dv.data,
                               msg) != 0)
    cuda_fail("backward", msg);
  ck(cudaDeviceSynchronize(), "backward");
}

#endif

}  // namespace sattn
