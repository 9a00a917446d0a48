// sattn CUDA forward kernels: FlashAttention-style online softmax, one warp per (batch, head,
// query row). Keys are enumerated per row from the layout: dense, CSR row gather, BSR blocks
// (causal and bounds at element granularity, as layout.hpp says) or a dilated sliding window
// computed on the fly. fp32 or bf16 inputs, fp32 accumulation, GQA (head h reads kv head
// h / group), empty rows give 0.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "kernels_internal.h"
#include "sattn_cuda.h"

namespace {

constexpr int kMaxDimPerLane = 8;  // head_dim <= 256
constexpr int kWarps = 4;

template <class T> __device__ __forceinline__ float ld(const T* p, int64_t n);
template <> __device__ __forceinline__ float ld<float>(const float* p, int64_t n) { return __ldg(p + n); }
template <> __device__ __forceinline__ float ld<__nv_bfloat16>(const __nv_bfloat16* p, int64_t n) {
  return __bfloat162float(p[n]);
}

// Virtual key list of one row: count() entries, key(t) gives the key or -1 when not allowed.
template <int Mode> struct Keys;
template <> struct Keys<SATTN_CUDA_DENSE> {
  int64_t n, kv;
  __device__ Keys(const SattnCudaArgs& a, const int64_t*, int64_t i) {
    kv = a.kv_len;
    n = a.causal ? min(a.kv_len, i + a.causal_offset + 1) : a.kv_len;
    if (n < 0) n = 0;
  }
  __device__ int64_t count() const { return n; }
  __device__ int64_t key(int64_t t) const { return t; }
};
template <> struct Keys<SATTN_CUDA_CSR> {
  const int32_t* idx;
  int64_t n;
  __device__ Keys(const SattnCudaArgs& a, const int64_t* ptr, int64_t i) {
    idx = a.idx + ptr[i];
    n = ptr[i + 1] - ptr[i];
  }
  __device__ int64_t count() const { return n; }
  __device__ int64_t key(int64_t t) const { return idx[t]; }
};
template <> struct Keys<SATTN_CUDA_BSR> {
  const int32_t* idx;
  int64_t n, bs, i, kv, lim;
  __device__ Keys(const SattnCudaArgs& a, const int64_t* ptr, int64_t row) {
    const int64_t br = row / a.block_size;
    idx = a.idx + ptr[br];
    bs = a.block_size;
    n = (ptr[br + 1] - ptr[br]) * bs;
    i = row;
    kv = a.kv_len;
    lim = a.causal ? row + a.causal_offset : INT64_MAX;
  }
  __device__ int64_t count() const { return n; }
  __device__ int64_t key(int64_t t) const {
    const int64_t j = int64_t(idx[t / bs]) * bs + t % bs;
    return (j < kv && j <= lim) ? j : -1;
  }
};
template <> struct Keys<SATTN_CUDA_WINDOW> {
  int64_t n, p, w, d, kv, lim;
  __device__ Keys(const SattnCudaArgs& a, const int64_t*, int64_t i) {
    w = a.window;
    d = a.dilation;
    p = i + a.causal_offset;
    n = a.causal ? w + 1 : 2 * w + 1;
    kv = a.kv_len;
    lim = a.causal ? p : INT64_MAX;
  }
  __device__ int64_t count() const { return n; }
  __device__ int64_t key(int64_t t) const {
    const int64_t j = p + (t - w) * d;
    return (j >= 0 && j < kv && j <= lim) ? j : -1;
  }
};

template <int Mode, class T>
__global__ void __launch_bounds__(kWarps * 32) attention_rows(SattnCudaArgs a) {
  const int lane = threadIdx.x & 31;
  const int64_t row = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);  // over batch*heads*seq_len
  if (row >= a.batch * a.heads * a.seq_len) return;
  const int64_t i = row % a.seq_len;
  const int64_t bh = row / a.seq_len;
  const int64_t h = bh % a.heads, b = bh / a.heads;
  const int64_t kvh = h / (a.heads / a.kv_heads);
  const int64_t D = a.head_dim;
  const T* q = static_cast<const T*>(a.q) + row * D;
  const T* k = static_cast<const T*>(a.k) + (b * a.kv_heads + kvh) * a.kv_len * D;
  const T* v = static_cast<const T*>(a.v) + (b * a.kv_heads + kvh) * a.kv_len * D;
  __shared__ float sq[kWarps][kMaxDimPerLane * 32];
  float* myq = sq[threadIdx.x >> 5];
  for (int64_t c = lane; c < D; c += 32) myq[c] = ld(q, c) * a.scale;
  __syncwarp();

  int64_t layout_rows = Mode == SATTN_CUDA_BSR ? (a.seq_len + a.block_size - 1) / a.block_size : a.seq_len;
  const int64_t* ptr = a.ptr ? a.ptr + (a.shared ? 0 : (b * a.kv_heads + kvh) * (layout_rows + 1)) : nullptr;
  const Keys<Mode> keys(a, ptr, i);

  float acc[kMaxDimPerLane];
#pragma unroll
  for (int r = 0; r < kMaxDimPerLane; ++r) acc[r] = 0.f;
  float m = -INFINITY, l = 0.f;
  const int64_t n = keys.count();
  for (int64_t t0 = 0; t0 < n; t0 += 32) {
    const int64_t t = t0 + lane;
    const int64_t j = t < n ? keys.key(t) : -1;
    float s = -INFINITY;
    if (j >= 0) {
      const T* kr = k + j * D;
      float dot = 0.f;
      for (int64_t c = 0; c < D; ++c) dot += myq[c] * ld(kr, c);
      s = dot;
    }
    float cm = s;
#pragma unroll
    for (int off = 16; off; off >>= 1) cm = fmaxf(cm, __shfl_xor_sync(0xffffffffu, cm, off));
    if (cm == -INFINITY) continue;  // no allowed key in this chunk
    const float mn = fmaxf(m, cm);
    const float alpha = __expf(m - mn);  // m = -inf: 0
    const float p = j >= 0 ? __expf(s - mn) : 0.f;
    float ps = p;
#pragma unroll
    for (int off = 16; off; off >>= 1) ps += __shfl_xor_sync(0xffffffffu, ps, off);
    l = l * alpha + ps;
    m = mn;
#pragma unroll
    for (int r = 0; r < kMaxDimPerLane; ++r) acc[r] *= alpha;
    for (int src = 0; src < 32; ++src) {
      const float pj = __shfl_sync(0xffffffffu, p, src);
      const int64_t jj = __shfl_sync(0xffffffffu, j, src);
      if (jj < 0) continue;  // uniform across the warp
      const T* vr = v + jj * D;
#pragma unroll
      for (int r = 0; r < kMaxDimPerLane; ++r) {
        const int64_t c = lane + 32 * r;
        if (c < D) acc[r] += pj * ld(vr, c);
      }
    }
  }
  float* o = a.o + row * D;
  const float inv = l > 0.f ? 1.f / l : 0.f;  // empty row: 0
#pragma unroll
  for (int r = 0; r < kMaxDimPerLane; ++r) {
    const int64_t c = lane + 32 * r;
    if (c < D) o[c] = acc[r] * inv;
  }
}

template <int Mode>
cudaError_t launch(const SattnCudaArgs& a) {
  const int64_t rows = a.batch * a.heads * a.seq_len;
  const dim3 grid(unsigned((rows + kWarps - 1) / kWarps));
  if (a.bf16)
    attention_rows<Mode, __nv_bfloat16><<<grid, kWarps * 32>>>(a);
  else
    attention_rows<Mode, float><<<grid, kWarps * 32>>>(a);
  return cudaGetLastError();
}

void set_msg(char* msg, const char* text) {
  if (msg) snprintf(msg, 256, "%s", text);
}

}  // namespace

extern "C" int sattn_cuda_device_count(char* msg) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    set_msg(msg, cudaGetErrorString(e));
    return 0;
  }
  if (n == 0) set_msg(msg, "no CUDA device");
  return n;
}

extern "C" int sattn_cuda_forward(const SattnCudaArgs* a, char* msg) {
  if (a->head_dim > kMaxDimPerLane * 32 || a->head_dim < 1) {
    set_msg(msg, "head_dim must be 1..256 on the cuda backend");
    return int(cudaErrorInvalidValue);
  }
  if (a->batch * a->heads * a->seq_len == 0) return 0;
  cudaError_t e;
  switch (a->mode) {
    case SATTN_CUDA_DENSE: e = launch<SATTN_CUDA_DENSE>(*a); break;
    case SATTN_CUDA_CSR: e = launch<SATTN_CUDA_CSR>(*a); break;
    case SATTN_CUDA_BSR: e = launch<SATTN_CUDA_BSR>(*a); break;
    case SATTN_CUDA_WINDOW: e = launch<SATTN_CUDA_WINDOW>(*a); break;
    default: set_msg(msg, "unknown mode"); return int(cudaErrorInvalidValue);
  }
  if (e != cudaSuccess) set_msg(msg, cudaGetErrorString(e));
  return int(e);
}

// ---- Plans ------------------------------------------------------------------------------------

struct SattnCudaPlan {
  SattnCudaArgs a{};  // ptr/idx: device copies (SIMT)
  bool tc = false;
  sattn_cuda::TcArgs t{};
  std::vector<void*> owned;  // device buffers
};

namespace {

template <class T>
cudaError_t upload(SattnCudaPlan* p, const std::vector<T>& host, const T** dev) {
  void* d = nullptr;
  const cudaError_t e = cudaMalloc(&d, std::max<size_t>(1, host.size()) * sizeof(T));
  if (e != cudaSuccess) return e;
  p->owned.push_back(d);
  *dev = static_cast<const T*>(d);
  return host.empty() ? cudaSuccess : cudaMemcpy(d, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice);
}

// BSR (block size a multiple of 16) -> per 128-row query tile, the 64-key tiles it touches with
// an 8 x 4 mask of the 16 x 16 sub-blocks the layout allows.
void bsr_to_tiles(const SattnCudaArgs& a, int64_t n_layouts, std::vector<int64_t>& tptr, std::vector<int32_t>& tcol,
                  std::vector<uint32_t>& tmask) {
  using sattn_cuda::kTcSub;
  using sattn_cuda::kTcKTile;
  using sattn_cuda::kTcQTile;
  const int64_t bs = a.block_size, brows = (a.seq_len + bs - 1) / bs;
  const int64_t n_qt = (a.seq_len + kTcQTile - 1) / kTcQTile;
  constexpr int kSubPerKTile = kTcKTile / kTcSub;
  const int64_t sub_per_block = bs / kTcSub;
  std::vector<std::pair<int32_t, uint32_t>> items;
  for (int64_t l = 0; l < n_layouts; ++l) {
    const int64_t* ptr = a.ptr + l * (brows + 1);
    for (int64_t qt = 0; qt < n_qt; ++qt) {
      tptr.push_back(int64_t(tcol.size()));
      items.clear();
      for (int r = 0; r < kTcQTile / kTcSub; ++r) {
        const int64_t row = qt * kTcQTile + r * kTcSub;
        if (row >= a.seq_len) break;
        const int64_t br = row / bs;
        for (int64_t t = ptr[br]; t < ptr[br + 1]; ++t)
          for (int64_t s = 0; s < sub_per_block; ++s) {
            const int64_t sub = int64_t(a.idx[t]) * sub_per_block + s;  // 16-key sub-block
            if (sub * kTcSub >= a.kv_len) break;
            if (a.causal && sub * kTcSub > row + kTcSub - 1 + a.causal_offset) break;  // all in the future
            items.emplace_back(int32_t(sub / kSubPerKTile), 1u << (r * kSubPerKTile + sub % kSubPerKTile));
          }
      }
      std::sort(items.begin(), items.end());
      for (size_t x = 0; x < items.size();) {
        uint32_t m = 0;
        size_t y = x;
        for (; y < items.size() && items[y].first == items[x].first; ++y) m |= items[y].second;
        tcol.push_back(items[x].first);
        tmask.push_back(m);
        x = y;
      }
    }
    tptr.push_back(int64_t(tcol.size()));
  }
}

}  // namespace

extern "C" int sattn_cuda_device_name(char* name) {
  cudaDeviceProp prop;
  const cudaError_t e = cudaGetDeviceProperties(&prop, 0);
  if (e != cudaSuccess) {
    set_msg(name, cudaGetErrorString(e));
    return int(e);
  }
  set_msg(name, prop.name);
  return 0;
}

extern "C" int sattn_cuda_plan_create(const SattnCudaArgs* in, int allow_tc, SattnCudaPlan** out, char* msg) {
  *out = nullptr;
  const SattnCudaArgs& a = *in;
  if (a.head_dim > kMaxDimPerLane * 32 || a.head_dim < 1) {
    set_msg(msg, "head_dim must be 1..256 on the cuda backend");
    return int(cudaErrorInvalidValue);
  }
  if (a.kv_heads < 1 || a.heads % a.kv_heads != 0) {
    set_msg(msg, "heads must be a multiple of kv_heads");
    return int(cudaErrorInvalidValue);
  }
  auto* p = new SattnCudaPlan;
  p->a = a;
  p->a.q = p->a.k = p->a.v = nullptr;
  p->a.o = nullptr;
  const bool block = a.mode == SATTN_CUDA_BSR, rows = a.mode == SATTN_CUDA_CSR;
  const int64_t n_layouts = (block || rows) ? (a.shared ? 1 : a.batch * a.kv_heads) : 0;
  p->tc = allow_tc && a.bf16 && (a.head_dim == 64 || a.head_dim == 128) &&
          (a.mode == SATTN_CUDA_DENSE || a.mode == SATTN_CUDA_WINDOW ||
           (block && a.block_size % sattn_cuda::kTcSub == 0));
  cudaError_t e = cudaSuccess;
  if (p->tc) {
    sattn_cuda::TcArgs& t = p->t;
    t.batch = a.batch;
    t.heads = a.heads;
    t.kv_heads = a.kv_heads;
    t.seq_len = a.seq_len;
    t.kv_len = a.kv_len;
    t.head_dim = int(a.head_dim);
    t.causal = a.causal;
    t.causal_offset = a.causal_offset;
    t.scale_log2 = a.scale * 1.4426950408889634f;
    t.shared = a.shared;
    t.n_qtiles = (a.seq_len + sattn_cuda::kTcQTile - 1) / sattn_cuda::kTcQTile;
    t.window = a.window;
    t.dilation = a.dilation;
    t.mode = a.mode == SATTN_CUDA_DENSE ? sattn_cuda::kTcDense
             : a.mode == SATTN_CUDA_WINDOW ? sattn_cuda::kTcWindow
                                          : sattn_cuda::kTcTiles;
    if (block) {
      std::vector<int64_t> tptr;
      std::vector<int32_t> tcol;
      std::vector<uint32_t> tmask;
      bsr_to_tiles(a, n_layouts, tptr, tcol, tmask);
      if (e == cudaSuccess) e = upload(p, tptr, &t.tile_ptr);
      if (e == cudaSuccess) e = upload(p, tcol, &t.tile_col);
      if (e == cudaSuccess) e = upload(p, tmask, &t.tile_mask);
    }
  } else if (block || rows) {
    const int64_t lrows = block ? (a.seq_len + a.block_size - 1) / a.block_size : a.seq_len;
    const std::vector<int64_t> ptr(a.ptr, a.ptr + n_layouts * (lrows + 1));
    const int64_t nnz = ptr.empty() ? 0 : ptr.back();
    const std::vector<int32_t> idx(a.idx, a.idx + nnz);
    e = upload(p, ptr, &p->a.ptr);
    if (e == cudaSuccess) e = upload(p, idx, &p->a.idx);
  }
  if (e != cudaSuccess) {
    set_msg(msg, cudaGetErrorString(e));
    sattn_cuda_plan_destroy(p);
    return int(e);
  }
  *out = p;
  return 0;
}

extern "C" int sattn_cuda_plan_run(const SattnCudaPlan* p, const void* q, const void* k, const void* v, float* o,
                                   char* msg) {
  cudaError_t e;
  const bool aligned = ((reinterpret_cast<uintptr_t>(q) | reinterpret_cast<uintptr_t>(k) |
                         reinterpret_cast<uintptr_t>(v) | reinterpret_cast<uintptr_t>(o)) & 15) == 0;
  if (p->tc && !aligned) {
    set_msg(msg, "the tensor-core kernel needs 16-byte aligned q, k, v and o");
    return int(cudaErrorMisalignedAddress);
  }
  if (p->tc) {
    sattn_cuda::TcArgs t = p->t;
    t.q = q;
    t.k = k;
    t.v = v;
    t.o = o;
    e = sattn_cuda::tc_launch(t);
  } else {
    SattnCudaArgs a = p->a;
    a.q = q;
    a.k = k;
    a.v = v;
    a.o = o;
    if (a.batch * a.heads * a.seq_len == 0) return 0;
    switch (a.mode) {
      case SATTN_CUDA_DENSE: e = launch<SATTN_CUDA_DENSE>(a); break;
      case SATTN_CUDA_CSR: e = launch<SATTN_CUDA_CSR>(a); break;
      case SATTN_CUDA_BSR: e = launch<SATTN_CUDA_BSR>(a); break;
      case SATTN_CUDA_WINDOW: e = launch<SATTN_CUDA_WINDOW>(a); break;
      default: set_msg(msg, "unknown mode"); return int(cudaErrorInvalidValue);
    }
  }
  if (e != cudaSuccess) set_msg(msg, cudaGetErrorString(e));
  return int(e);
}

extern "C" const char* sattn_cuda_plan_kernel(const SattnCudaPlan* p) { return p->tc ? "tensor-core" : "simt"; }

extern "C" void sattn_cuda_plan_destroy(SattnCudaPlan* p) {
  if (!p) return;
  for (void* d : p->owned) cudaFree(d);
  delete p;
}
