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
#include "keys.cuh"
#include "sattn_cuda.h"

namespace {

using namespace sattn_cuda;

template <int Mode, class T>
__global__ void __launch_bounds__(kWarps * 32) attention_rows(SattnCudaArgs a, float* lse) {
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
  if (lse && lane == 0) lse[row] = l > 0.f ? m + logf(l) : -INFINITY;
#pragma unroll
  for (int r = 0; r < kMaxDimPerLane; ++r) {
    const int64_t c = lane + 32 * r;
    if (c < D) o[c] = acc[r] * inv;
  }
}

template <int Mode>
cudaError_t launch(const SattnCudaArgs& a, float* lse = nullptr) {
  const int64_t rows = a.batch * a.heads * a.seq_len;
  const dim3 grid(unsigned((rows + kWarps - 1) / kWarps));
  if (a.bf16)
    attention_rows<Mode, __nv_bfloat16><<<grid, kWarps * 32>>>(a, lse);
  else
    attention_rows<Mode, float><<<grid, kWarps * 32>>>(a, lse);
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
  const int64_t* tptr = nullptr;  // the transposed layout for the backward (CSR/BSR), device
  const int32_t* tidx = nullptr;
  // The tensor-core backward's BSR tiles (64 x 64, per query tile and per key tile), device.
  const int64_t *bq_ptr = nullptr, *bk_ptr = nullptr;
  const int32_t *bq_col = nullptr, *bk_col = nullptr;
  const uint32_t *bq_mask = nullptr, *bk_mask = nullptr;
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

// BSR (block size a multiple of 16) -> tiles of q_tile query rows x k_tile keys (multiples of 16,
// (q_tile / 16) (k_tile / 16) <= 32), each with a mask of its 16 x 16 sub-blocks that the layout
// allows (causal sub-blocks wholly in the future left out). Listed per query tile (by_key false;
// bit q_sub * (k_tile / 16) + k_sub: the forward, tc_qtile x 64, and the backward's dq,
// tc_bwd_dq_rows x 64) or per key tile (by_key true; bit k_sub * (q_tile / 16) + q_sub: the
// backward's dk/dv, 64 x tc_bwd_kv_rows); per layout n_outer + 1 absolute offsets.
void bsr_tiles(const SattnCudaArgs& a, int64_t n_layouts, int64_t q_tile, int64_t k_tile, bool by_key,
               std::vector<int64_t>& tptr, std::vector<int32_t>& tcol, std::vector<uint32_t>& tmask) {
  constexpr int64_t kSub = sattn_cuda::kTcSub;
  const int64_t q_subs = q_tile / kSub, kKSubs = k_tile / kSub;
  const int64_t bs = a.block_size, brows = (a.seq_len + bs - 1) / bs, spb = bs / kSub;
  const int64_t n_outer = by_key ? (a.kv_len + k_tile - 1) / k_tile : (a.seq_len + q_tile - 1) / q_tile;
  std::vector<std::vector<std::pair<int32_t, uint32_t>>> items(static_cast<size_t>(n_outer));
  for (int64_t l = 0; l < n_layouts; ++l) {
    const int64_t* ptr = a.ptr + l * (brows + 1);
    for (auto& it : items) it.clear();
    for (int64_t br = 0; br < brows; ++br)
      for (int64_t t = ptr[br]; t < ptr[br + 1]; ++t)
        for (int64_t qs = br * spb; qs < (br + 1) * spb && qs * kSub < a.seq_len; ++qs)
          for (int64_t ks = int64_t(a.idx[t]) * spb; ks < (int64_t(a.idx[t]) + 1) * spb && ks * kSub < a.kv_len; ++ks) {
            if (a.causal && ks * kSub > qs * kSub + kSub - 1 + a.causal_offset) break;  // all in the future
            if (by_key)
              items[size_t(ks / kKSubs)].emplace_back(int32_t(qs / q_subs), 1u << ((ks % kKSubs) * q_subs + qs % q_subs));
            else
              items[size_t(qs / q_subs)].emplace_back(int32_t(ks / kKSubs), 1u << ((qs % q_subs) * kKSubs + ks % kKSubs));
          }
    for (auto& it : items) {
      tptr.push_back(int64_t(tcol.size()));
      std::sort(it.begin(), it.end());
      for (size_t x = 0; x < it.size();) {
        uint32_t m = 0;
        size_t y = x;
        for (; y < it.size() && it[y].first == it[x].first; ++y) m |= it[y].second;
        tcol.push_back(it[x].first);
        tmask.push_back(m);
        x = y;
      }
    }
    tptr.push_back(int64_t(tcol.size()));
  }
}

// The transposed layout of n_layouts CSR (rows -> keys) or BSR (block rows -> block columns)
// layouts: per layout, cols + 1 absolute offsets and the rows in ascending order.
void transpose_layout(const int64_t* ptr, const int32_t* idx, int64_t n_layouts, int64_t rows, int64_t cols,
                      std::vector<int64_t>& tptr, std::vector<int32_t>& tidx) {
  tptr.assign(size_t(n_layouts * (cols + 1)), 0);
  tidx.resize(n_layouts ? size_t(ptr[n_layouts * (rows + 1) - 1]) : 0);
  int64_t base = 0;
  for (int64_t l = 0; l < n_layouts; ++l) {
    const int64_t* p = ptr + l * (rows + 1);
    int64_t* tp = tptr.data() + l * (cols + 1);
    for (int64_t t = p[0]; t < p[rows]; ++t) ++tp[idx[t] + 1];
    tp[0] = base;
    for (int64_t c = 0; c < cols; ++c) tp[c + 1] += tp[c];
    std::vector<int64_t> fill(tp, tp + cols);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t t = p[r]; t < p[r + 1]; ++t) tidx[size_t(fill[idx[t]]++)] = int32_t(r);
    base = tp[cols];
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
    t.n_qtiles = (a.seq_len + sattn_cuda::tc_qtile(int(a.head_dim)) - 1) / sattn_cuda::tc_qtile(int(a.head_dim));
    t.window = a.window;
    t.dilation = a.dilation;
    t.mode = a.mode == SATTN_CUDA_DENSE ? sattn_cuda::kTcDense
             : a.mode == SATTN_CUDA_WINDOW ? sattn_cuda::kTcWindow
                                          : sattn_cuda::kTcTiles;
    if (block) {
      std::vector<int64_t> tptr;
      std::vector<int32_t> tcol;
      std::vector<uint32_t> tmask;
      bsr_tiles(a, n_layouts, sattn_cuda::tc_qtile(int(a.head_dim)), sattn_cuda::kTcKTile, false, tptr, tcol, tmask);
      if (e == cudaSuccess) e = upload(p, tptr, &t.tile_ptr);
      if (e == cudaSuccess) e = upload(p, tcol, &t.tile_col);
      if (e == cudaSuccess) e = upload(p, tmask, &t.tile_mask);
      for (const bool by_key : {false, true}) {
        std::vector<int64_t> bptr;
        std::vector<int32_t> bcol;
        std::vector<uint32_t> bmask;
        const int64_t dim = a.head_dim;
        if (by_key)
          bsr_tiles(a, n_layouts, 64, sattn_cuda::tc_bwd_kv_rows(int(dim)), true, bptr, bcol, bmask);
        else
          bsr_tiles(a, n_layouts, sattn_cuda::tc_bwd_dq_rows(int(dim)), 64, false, bptr, bcol, bmask);
        if (e == cudaSuccess) e = upload(p, bptr, by_key ? &p->bk_ptr : &p->bq_ptr);
        if (e == cudaSuccess) e = upload(p, bcol, by_key ? &p->bk_col : &p->bq_col);
        if (e == cudaSuccess) e = upload(p, bmask, by_key ? &p->bk_mask : &p->bq_mask);
      }
    }
  }
  if (e == cudaSuccess && (block || rows)) {  // the SIMT forward and the backward walk these
    const int64_t lrows = block ? (a.seq_len + a.block_size - 1) / a.block_size : a.seq_len;
    const int64_t lcols = block ? (a.kv_len + a.block_size - 1) / a.block_size : a.kv_len;
    const std::vector<int64_t> ptr(a.ptr, a.ptr + n_layouts * (lrows + 1));
    const int64_t nnz = ptr.empty() ? 0 : ptr.back();
    const std::vector<int32_t> idx(a.idx, a.idx + nnz);
    e = upload(p, ptr, &p->a.ptr);
    if (e == cudaSuccess) e = upload(p, idx, &p->a.idx);
    std::vector<int64_t> tptr;
    std::vector<int32_t> tidx;
    transpose_layout(ptr.data(), idx.data(), n_layouts, lrows, lcols, tptr, tidx);
    if (e == cudaSuccess) e = upload(p, tptr, &p->tptr);
    if (e == cudaSuccess) e = upload(p, tidx, &p->tidx);
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
  return sattn_cuda_plan_run_lse(p, q, k, v, o, nullptr, msg);
}

extern "C" int sattn_cuda_plan_run_lse(const SattnCudaPlan* p, const void* q, const void* k, const void* v, float* o,
                                       float* lse, char* msg) {
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
    t.lse = lse;
    e = sattn_cuda::tc_launch(t);
  } else {
    SattnCudaArgs a = p->a;
    a.q = q;
    a.k = k;
    a.v = v;
    a.o = o;
    if (a.batch * a.heads * a.seq_len == 0) return 0;
    switch (a.mode) {
      case SATTN_CUDA_DENSE: e = launch<SATTN_CUDA_DENSE>(a, lse); break;
      case SATTN_CUDA_CSR: e = launch<SATTN_CUDA_CSR>(a, lse); break;
      case SATTN_CUDA_BSR: e = launch<SATTN_CUDA_BSR>(a, lse); break;
      case SATTN_CUDA_WINDOW: e = launch<SATTN_CUDA_WINDOW>(a, lse); break;
      default: set_msg(msg, "unknown mode"); return int(cudaErrorInvalidValue);
    }
  }
  if (e != cudaSuccess) set_msg(msg, cudaGetErrorString(e));
  return int(e);
}

extern "C" int sattn_cuda_plan_backward(const SattnCudaPlan* p, const void* q, const void* k, const void* v,
                                        const float* o, const float* dout, const float* lse, float* dq, float* dk,
                                        float* dv, char* msg) {
  const SattnCudaArgs& a = p->a;
  float* delta = nullptr;
  const size_t rows = size_t(a.batch * a.heads * a.seq_len);
  // SIMT: delta per row; tensor cores: delta and lse2 per padded row (tc_bwd_seq_pad).
  const size_t rows_pad = size_t(a.batch * a.heads * sattn_cuda::tc_bwd_seq_pad(a.seq_len));
  cudaError_t e = cudaMallocAsync(reinterpret_cast<void**>(&delta),
                                  std::max<size_t>(1, p->tc ? 2 * rows_pad : rows) * sizeof(float), 0);
  if (e == cudaSuccess && p->tc) {  // the tensor-core backward: dO in bf16 as its MMA operand
    __nv_bfloat16* dout16 = nullptr;
    e = cudaMallocAsync(reinterpret_cast<void**>(&dout16), std::max<size_t>(1, rows * size_t(a.head_dim)) * 2, 0);
    if (e == cudaSuccess) {
      const sattn_cuda::TcArgs& t = p->t;
      sattn_cuda::TcBwdArgs g{};
      g.q = q; g.k = k; g.v = v; g.o = o; g.dout = dout; g.lse = lse; g.dq = dq; g.dk = dk; g.dv = dv;
      g.delta = delta; g.lse2 = delta + rows_pad; g.dout16 = dout16;
      g.seq_pad = sattn_cuda::tc_bwd_seq_pad(a.seq_len);
      g.batch = a.batch; g.heads = a.heads; g.kv_heads = a.kv_heads; g.seq_len = a.seq_len; g.kv_len = a.kv_len;
      g.head_dim = int(a.head_dim); g.mode = t.mode; g.causal = a.causal; g.causal_offset = a.causal_offset;
      g.scale = a.scale; g.scale_log2 = t.scale_log2; g.shared = a.shared;
      g.tile_ptr = p->bq_ptr; g.tile_col = p->bq_col; g.tile_mask = p->bq_mask;
      g.n_qtiles = (a.seq_len + sattn_cuda::tc_bwd_dq_rows(g.head_dim) - 1) / sattn_cuda::tc_bwd_dq_rows(g.head_dim);
      g.ttile_ptr = p->bk_ptr; g.ttile_col = p->bk_col; g.ttile_mask = p->bk_mask;
      g.n_ktiles = (a.kv_len + sattn_cuda::tc_bwd_kv_rows(g.head_dim) - 1) / sattn_cuda::tc_bwd_kv_rows(g.head_dim);
      g.window = a.window; g.dilation = a.dilation;
      e = sattn_cuda::tc_bwd_launch(g);
      const cudaError_t f = cudaFreeAsync(dout16, 0);
      if (e == cudaSuccess) e = f;
    }
    const cudaError_t f = cudaFreeAsync(delta, 0);
    if (e == cudaSuccess) e = f;
  } else if (e == cudaSuccess) {
    const sattn_cuda::BwdArgs g{q, k, v, o, dout, lse, dq, dk, dv, delta, p->tptr, p->tidx};
    e = sattn_cuda::bwd_launch(a, g);
    const cudaError_t f = cudaFreeAsync(delta, 0);
    if (e == cudaSuccess) e = f;
  }
  if (e != cudaSuccess) set_msg(msg, cudaGetErrorString(e));
  return int(e);
}

extern "C" const char* sattn_cuda_plan_kernel(const SattnCudaPlan* p) { return p->tc ? "tensor-core" : "simt"; }

extern "C" const char* sattn_cuda_plan_forward_path(const SattnCudaPlan* p) {
  if (!p->tc) return "simt";
  return sattn_cuda::forward_path_name(sattn_cuda::hopper_variant(p->t));
}

extern "C" int sattn_cuda_hopper_built(void) {
#if SATTN_HOPPER
  return 1;
#else
  return 0;
#endif
}

extern "C" void sattn_cuda_plan_destroy(SattnCudaPlan* p) {
  if (!p) return;
  for (void* d : p->owned) cudaFree(d);
  delete p;
}
