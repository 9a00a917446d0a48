// Per-row key enumeration shared by the SIMT forward (kernels.cu) and backward (kernels_bwd.cu)
// kernels: dense, CSR row gather, BSR blocks (causal and bounds at element granularity, as
// layout.hpp says) or a dilated sliding window computed on the fly. Internal, not part of the C API.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "sattn_cuda.h"

namespace sattn_cuda {

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

}  // namespace sattn_cuda
