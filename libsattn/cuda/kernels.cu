// sattn CUDA forward kernels: FlashAttention-style online softmax, one warp per (batch, head,
// query row). Keys are enumerated per row from the layout: dense, CSR row gather, BSR blocks
// (causal and bounds at element granularity, as layout.hpp says) or a dilated sliding window
// computed on the fly. fp32 or bf16 inputs, fp32 accumulation, GQA (head h reads kv head
// h / group), empty rows give 0.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>

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
