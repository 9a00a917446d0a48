// Device helpers shared by the tensor-core forward (kernels_tc.cu) and backward
// (kernels_tc_bwd.cu) kernels: cp.async staging, ldmatrix, mma.sync m16n8k16 bf16, the swizzled
// shared-memory tile layout and its fragment addresses. Internal, not part of the C API.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "kernels_internal.h"

namespace sattn_cuda {
namespace tc {

// Backward: whether (query i, key j) is allowed, given the tile's sub-block mask bit (the mma.sync
// kernels in kernels_tc_bwd.cu and the wgmma one in kernels_hopper.cu).
template <int Mode>
__device__ __forceinline__ bool bwd_allowed(const TcBwdArgs& a, int64_t i, int64_t j, bool sub_ok) {
  bool ok = i < a.seq_len && j < a.kv_len && (!a.causal || j <= i + a.causal_offset);
  if (Mode == kTcTiles) ok = ok && sub_ok;
  if (Mode == kTcWindow) {
    const int64_t dlt = j - (i + a.causal_offset), span = a.window * a.dilation;
    ok = ok && dlt >= -span && dlt <= span && dlt % a.dilation == 0;
  }
  return ok;
}

// Forward: the key tiles of query tile qt (QT query rows): [t_begin, t_end) of the tile list, or
// of all key tiles the mode allows (the mma.sync kernel in kernels_tc.cu and the wgmma ones in
// kernels_hopper.cu).
template <int Mode, int QT>
__device__ __forceinline__ void tile_range(const TcArgs& a, int64_t b, int64_t kvh, int64_t qt, int64_t& t_begin,
                                           int64_t& t_end) {
  const int64_t q0 = qt * QT, off = a.causal_offset, qlast = q0 + QT - 1 + off;
  t_begin = t_end = 0;
  if (Mode == kTcTiles) {
    const int64_t* p = a.tile_ptr + (a.shared ? 0 : (b * a.kv_heads + kvh) * (a.n_qtiles + 1));
    t_begin = p[qt];
    t_end = p[qt + 1];
  } else {
    int64_t lo = 0, hi = a.causal ? min(a.kv_len, qlast + 1) : a.kv_len;
    if (Mode == kTcWindow) {
      const int64_t span = a.window * a.dilation;
      lo = max(int64_t(0), q0 + off - span);
      hi = min(a.kv_len, qlast + (a.causal ? 0 : span) + 1);
    }
    if (hi > lo) {
      t_begin = lo / kTcKTile;
      t_end = (hi - 1) / kTcKTile + 1;
    }
  }
}

constexpr int kThreads = 128;  // 4 warps x 16 query rows

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared; bytes = 0 writes zeros (rows past the end of the sequence).
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, int bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// d += a (16x16, row) * b (16x8, col); bf16 inputs, fp32 accumulators.
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// 2^x on the special-function unit (flush-to-zero; 2^-inf = +0).
__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 p = __floats2bfloat162_rn(lo, hi);  // .x (low half) = lo
  return *reinterpret_cast<const uint32_t*>(&p);
}

// Shared-memory tile of 64 rows x D bf16, in 16-byte chunks; chunk c of row r is stored at
// chunk c ^ (r & 7) so that the 8 rows an ldmatrix reads fall in 8 different bank groups.
template <int D>
__device__ __forceinline__ uint32_t chunk_addr(uint32_t base, int row, int chunk) {
  return base + uint32_t((row * (D / 8) + (chunk ^ (row & 7))) * 16);
}

// The ldmatrix address of one lane for 16-column step kk (chunks 2 kk and 2 kk + 1) at row
// `row + r`: the lane's part (row, which of the two chunks, the row's swizzle) is folded into a
// base and four offsets once, so the unrolled loops hold a few registers instead of one address
// per (row, step). (2 kk + c) ^ x = 2 kk ^ (x ^ c) since 2 kk and c share no bits.
template <int D>
struct Frag {
  uint32_t base, swz[4];
  __device__ __forceinline__ Frag(uint32_t tile, int row, int c) {
    base = tile + uint32_t(row * D * 2);
    const int x = (row & 7) ^ c;
#pragma unroll
    for (int j = 0; j < 4; ++j) swz[j] = uint32_t(((2 * j) ^ x) << 4);
  }
  __device__ __forceinline__ uint32_t at(int r, int kk, uint32_t extra = 0) const {
    return base + extra + uint32_t(r * D * 2 + (kk / 4) * 128) + swz[kk % 4];
  }
};

// Rows row0.. of a [len, D] matrix into a tile of R rows by NT threads; rows at or past len are
// zero-filled.
template <int D, int R, int NT = kThreads>
__device__ __forceinline__ void load_tile(uint32_t base, const __nv_bfloat16* g, int64_t row0, int64_t len) {
  constexpr int C = D / 8;
#pragma unroll
  for (int x = threadIdx.x; x < R * C; x += NT) {
    const int r = x / C, c = x % C;
    const int64_t gr = row0 + r;
    const bool ok = gr < len;
    cp_async16(chunk_addr<D>(base, r, c), g + (ok ? gr : 0) * D + c * 8, ok ? 16 : 0);
  }
}

}  // namespace tc
}  // namespace sattn_cuda
