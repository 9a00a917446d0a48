// sattn CUDA backward kernels (SIMT), FlashAttention-2's recomputation scheme: P is never
// stored; each kernel recomputes the scores it needs from q, k and the forward's log-sum-exp.
//   delta_i = dO_i . O_i                                     (one warp per query row)
//   dQ_i    = scale * sum_j P_ij (dO_i . V_j - delta_i) K_j   (one warp per query row, the
//                                                            forward's key enumeration)
//   dV_j    = sum_i P_ij dO_i,  dK_j = scale * sum_i dS_ij Q_i (one warp per key, over the rows
//                                                            that may see it: the transposed
//                                                            layout; GQA sums the query heads of
//                                                            the key's KV head in the warp)
// No atomics, so the result is deterministic. fp32 or bf16 q/k/v, fp32 everything else. A row
// with no allowed key (lse = -inf) gets dQ = 0 and adds nothing to dK/dV.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>

#include "kernels_internal.h"
#include "keys.cuh"

namespace sattn_cuda {

namespace {

// Virtual list of the query rows that may attend key j: count() entries, row(t) gives the row
// or -1. The inverse of Keys<Mode> (keys.cuh) under the same causal and bounds rules.
template <int Mode> struct Rows;
template <> struct Rows<SATTN_CUDA_DENSE> {
  int64_t lo, n;
  __device__ Rows(const SattnCudaArgs& a, const int64_t*, const int32_t*, int64_t j) {
    lo = a.causal ? max(int64_t(0), j - a.causal_offset) : 0;
    n = max(int64_t(0), a.seq_len - lo);
  }
  __device__ int64_t count() const { return n; }
  __device__ int64_t row(int64_t t) const { return lo + t; }
};
template <> struct Rows<SATTN_CUDA_CSR> {  // the transposed CSR holds exactly the allowed rows
  const int32_t* idx;
  int64_t n;
  __device__ Rows(const SattnCudaArgs&, const int64_t* tptr, const int32_t* tidx, int64_t j) {
    idx = tidx + tptr[j];
    n = tptr[j + 1] - tptr[j];
  }
  __device__ int64_t count() const { return n; }
  __device__ int64_t row(int64_t t) const { return idx[t]; }
};
template <> struct Rows<SATTN_CUDA_BSR> {
  const int32_t* idx;
  int64_t n, bs, j, s, off;
  int causal;
  __device__ Rows(const SattnCudaArgs& a, const int64_t* tptr, const int32_t* tidx, int64_t key) {
    const int64_t bc = key / a.block_size;
    idx = tidx + tptr[bc];
    bs = a.block_size;
    n = (tptr[bc + 1] - tptr[bc]) * bs;
    j = key;
    s = a.seq_len;
    off = a.causal_offset;
    causal = a.causal;
  }
  __device__ int64_t count() const { return n; }
  __device__ int64_t row(int64_t t) const {
    const int64_t i = int64_t(idx[t / bs]) * bs + t % bs;
    return (i < s && (!causal || j <= i + off)) ? i : -1;
  }
};
template <> struct Rows<SATTN_CUDA_WINDOW> {
  int64_t n, base, w, d, s;
  __device__ Rows(const SattnCudaArgs& a, const int64_t*, const int32_t*, int64_t j) {
    w = a.window;
    d = a.dilation;
    n = a.causal ? w + 1 : 2 * w + 1;
    base = j - a.causal_offset;  // key j = i + off + (t - w) d  <=>  i = base - (t - w) d
    s = a.seq_len;
  }
  __device__ int64_t count() const { return n; }
  __device__ int64_t row(int64_t t) const {
    const int64_t i = base - (t - w) * d;
    return (i >= 0 && i < s) ? i : -1;
  }
};

__global__ void __launch_bounds__(kWarps * 32) delta_rows(int64_t rows, int64_t D, const float* o, const float* dout,
                                                          float* delta) {
  const int lane = threadIdx.x & 31;
  const int64_t row = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (row >= rows) return;
  float acc = 0.f;
  for (int64_t c = lane; c < D; c += 32) acc += o[row * D + c] * dout[row * D + c];
#pragma unroll
  for (int off = 16; off; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  if (lane == 0) delta[row] = acc;
}

template <int Mode, class T>
__global__ void __launch_bounds__(kWarps * 32) dq_rows(SattnCudaArgs a, BwdArgs g) {
  const int lane = threadIdx.x & 31;
  const int64_t row = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);  // over batch*heads*seq_len
  if (row >= a.batch * a.heads * a.seq_len) return;
  const int64_t i = row % a.seq_len, bh = row / a.seq_len;
  const int64_t h = bh % a.heads, b = bh / a.heads;
  const int64_t kvh = h / (a.heads / a.kv_heads);
  const int64_t D = a.head_dim;
  const T* q = static_cast<const T*>(g.q) + row * D;
  const T* k = static_cast<const T*>(g.k) + (b * a.kv_heads + kvh) * a.kv_len * D;
  const T* v = static_cast<const T*>(g.v) + (b * a.kv_heads + kvh) * a.kv_len * D;
  __shared__ float sq[kWarps][kMaxDimPerLane * 32], sdo[kWarps][kMaxDimPerLane * 32];
  float* myq = sq[threadIdx.x >> 5];
  float* mydo = sdo[threadIdx.x >> 5];
  for (int64_t c = lane; c < D; c += 32) {
    myq[c] = ld(q, c) * a.scale;
    mydo[c] = g.dout[row * D + c];
  }
  __syncwarp();
  const float lse = g.lse[row], delta = g.delta[row];
  float acc[kMaxDimPerLane];
#pragma unroll
  for (int r = 0; r < kMaxDimPerLane; ++r) acc[r] = 0.f;
  if (lse != -INFINITY) {
    const int64_t layout_rows = Mode == SATTN_CUDA_BSR ? (a.seq_len + a.block_size - 1) / a.block_size : a.seq_len;
    const int64_t* ptr = a.ptr ? a.ptr + (a.shared ? 0 : (b * a.kv_heads + kvh) * (layout_rows + 1)) : nullptr;
    const Keys<Mode> keys(a, ptr, i);
    const int64_t n = keys.count();
    for (int64_t t0 = 0; t0 < n; t0 += 32) {
      const int64_t t = t0 + lane;
      const int64_t j = t < n ? keys.key(t) : -1;
      float ds = 0.f;
      if (j >= 0) {
        const T* kr = k + j * D;
        const T* vr = v + j * D;
        float s = 0.f, dp = 0.f;
        for (int64_t c = 0; c < D; ++c) {
          s += myq[c] * ld(kr, c);
          dp += mydo[c] * ld(vr, c);
        }
        ds = __expf(s - lse) * (dp - delta);
      }
      for (int src = 0; src < 32; ++src) {
        const float dsj = __shfl_sync(0xffffffffu, ds, src);
        const int64_t jj = __shfl_sync(0xffffffffu, j, src);
        if (jj < 0) continue;  // uniform across the warp
        const T* kr = k + jj * D;
#pragma unroll
        for (int r = 0; r < kMaxDimPerLane; ++r) {
          const int64_t c = lane + 32 * r;
          if (c < D) acc[r] += dsj * ld(kr, c);
        }
      }
    }
  }
  float* dq = g.dq + row * D;
#pragma unroll
  for (int r = 0; r < kMaxDimPerLane; ++r) {
    const int64_t c = lane + 32 * r;
    if (c < D) dq[c] = acc[r] * a.scale;
  }
}

template <int Mode, class T>
__global__ void __launch_bounds__(kWarps * 32) dkdv_keys(SattnCudaArgs a, BwdArgs g) {
  const int lane = threadIdx.x & 31;
  const int64_t key = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);  // over batch*kv_heads*kv_len
  if (key >= a.batch * a.kv_heads * a.kv_len) return;
  const int64_t j = key % a.kv_len, bk = key / a.kv_len;
  const int64_t kvh = bk % a.kv_heads, b = bk / a.kv_heads;
  const int64_t D = a.head_dim, group = a.heads / a.kv_heads;
  __shared__ float sk[kWarps][kMaxDimPerLane * 32], sv[kWarps][kMaxDimPerLane * 32];
  float* myk = sk[threadIdx.x >> 5];
  float* myv = sv[threadIdx.x >> 5];
  const T* kr = static_cast<const T*>(g.k) + key * D;
  const T* vr = static_cast<const T*>(g.v) + key * D;
  for (int64_t c = lane; c < D; c += 32) {
    myk[c] = ld(kr, c) * a.scale;
    myv[c] = ld(vr, c);
  }
  __syncwarp();
  const int64_t tcols = Mode == SATTN_CUDA_BSR ? (a.kv_len + a.block_size - 1) / a.block_size : a.kv_len;
  const int64_t* tptr = g.tptr ? g.tptr + (a.shared ? 0 : (b * a.kv_heads + kvh) * (tcols + 1)) : nullptr;
  const Rows<Mode> rows(a, tptr, g.tidx, j);
  const int64_t n = rows.count();
  float dk[kMaxDimPerLane], dv[kMaxDimPerLane];
#pragma unroll
  for (int r = 0; r < kMaxDimPerLane; ++r) dk[r] = dv[r] = 0.f;
  for (int64_t hq = 0; hq < group; ++hq) {
    const int64_t bh = b * a.heads + kvh * group + hq;
    const T* q = static_cast<const T*>(g.q) + bh * a.seq_len * D;
    const float* dout = g.dout + bh * a.seq_len * D;
    const float* lse = g.lse + bh * a.seq_len;
    const float* delta = g.delta + bh * a.seq_len;
    for (int64_t t0 = 0; t0 < n; t0 += 32) {
      const int64_t t = t0 + lane;
      int64_t i = t < n ? rows.row(t) : -1;
      float p = 0.f, ds = 0.f;
      if (i >= 0 && lse[i] != -INFINITY) {
        const T* qr = q + i * D;
        const float* dor = dout + i * D;
        float s = 0.f, dp = 0.f;
        for (int64_t c = 0; c < D; ++c) {
          s += myk[c] * ld(qr, c);
          dp += myv[c] * dor[c];
        }
        p = __expf(s - lse[i]);
        ds = p * (dp - delta[i]);
      } else {
        i = -1;
      }
      for (int src = 0; src < 32; ++src) {
        const float pi = __shfl_sync(0xffffffffu, p, src);
        const float dsi = __shfl_sync(0xffffffffu, ds, src);
        const int64_t ii = __shfl_sync(0xffffffffu, i, src);
        if (ii < 0) continue;  // uniform across the warp
        const T* qr = q + ii * D;
        const float* dor = dout + ii * D;
#pragma unroll
        for (int r = 0; r < kMaxDimPerLane; ++r) {
          const int64_t c = lane + 32 * r;
          if (c < D) {
            dv[r] += pi * dor[c];
            dk[r] += dsi * ld(qr, c);
          }
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kMaxDimPerLane; ++r) {
    const int64_t c = lane + 32 * r;
    if (c < D) {
      g.dk[key * D + c] = dk[r] * a.scale;
      g.dv[key * D + c] = dv[r];
    }
  }
}

template <int Mode, class T>
cudaError_t launch_bwd(const SattnCudaArgs& a, const BwdArgs& g) {
  const int64_t rows = a.batch * a.heads * a.seq_len, keys = a.batch * a.kv_heads * a.kv_len;
  if (rows > 0) {
    delta_rows<<<unsigned((rows + kWarps - 1) / kWarps), kWarps * 32>>>(rows, a.head_dim, g.o, g.dout, g.delta);
    dq_rows<Mode, T><<<unsigned((rows + kWarps - 1) / kWarps), kWarps * 32>>>(a, g);
  }
  if (keys > 0) dkdv_keys<Mode, T><<<unsigned((keys + kWarps - 1) / kWarps), kWarps * 32>>>(a, g);
  return cudaGetLastError();
}

template <int Mode>
cudaError_t launch_bwd_mode(const SattnCudaArgs& a, const BwdArgs& g) {
  return a.bf16 ? launch_bwd<Mode, __nv_bfloat16>(a, g) : launch_bwd<Mode, float>(a, g);
}

}  // namespace

cudaError_t bwd_launch(const SattnCudaArgs& a, const BwdArgs& g) {
  switch (a.mode) {
    case SATTN_CUDA_DENSE: return launch_bwd_mode<SATTN_CUDA_DENSE>(a, g);
    case SATTN_CUDA_CSR: return launch_bwd_mode<SATTN_CUDA_CSR>(a, g);
    case SATTN_CUDA_BSR: return launch_bwd_mode<SATTN_CUDA_BSR>(a, g);
    case SATTN_CUDA_WINDOW: return launch_bwd_mode<SATTN_CUDA_WINDOW>(a, g);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace sattn_cuda
