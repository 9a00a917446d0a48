// Internal interface between the plan code (kernels.cu) and the tensor-core kernel
// (kernels_tc.cu). Not part of the C API.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "sattn_cuda.h"

namespace sattn_cuda {

// Tiles of the tensor-core kernel: 128 query rows x 64 keys, masks in sub-blocks of 16 x 16.
// Query rows per CTA of the forward: 128 (4 warps x 32 rows: each K/V fragment feeds two MMAs).
// 64 rows at head_dim 128 removes that kernel's spills but measured slower at seq 16384 (0.54x
// Flex, docs/decisions.md), so both head dims keep 128; the tile lists follow this function.
__host__ __device__ constexpr int tc_qtile(int /*head_dim*/) { return 128; }
constexpr int kTcQTile = 128;  // the largest
constexpr int kTcKTile = 64;
constexpr int kTcSub = 16;

enum TcMode { kTcDense = 0, kTcTiles = 1, kTcWindow = 2 };

struct TcArgs {
  const void* q;  // bf16 [batch, heads, seq_len, head_dim]
  const void* k;  // bf16 [batch, kv_heads, kv_len, head_dim]
  const void* v;
  float* o;       // fp32 [batch, heads, seq_len, head_dim]
  float* lse;     // fp32 [batch, heads, seq_len] or null: each row's log-sum-exp (natural log)
  int64_t batch, heads, kv_heads, seq_len, kv_len;
  int head_dim;   // 64 or 128
  int mode;       // TcMode
  int causal;
  int64_t causal_offset;
  float scale_log2;  // scale * log2(e)
  // kTcTiles: per layout (shared: one; else batch * kv_heads) n_qtiles + 1 absolute offsets
  // into col/mask; col = key tile (64 keys), mask bit (r * 4 + c) = sub-block (query rows
  // r*16.. of the 128, keys c*16.. of the 64) allowed by the layout (causal and bounds apply
  // on top).
  const int64_t* tile_ptr;
  const int32_t* tile_col;
  const uint32_t* tile_mask;
  int shared;
  int64_t n_qtiles;
  int64_t window, dilation;  // kTcWindow
};

cudaError_t tc_launch(const TcArgs&);
// The Hopper forward (kernels_hopper.cu, built for sm_90a where nvcc supports it: SATTN_HOPPER=1):
// the same arguments and result as tc_launch, wgmma instead of mma.sync, in two variants:
// kHopperTiles64 (64-key tiles, S then softmax then P V in turn) and kHopperPipelined (128-key
// tiles, the next tile's S on the tensor cores while this tile's softmax runs).
enum HopperVariant { kHopperOff = 0, kHopperTiles64 = 1, kHopperPipelined = 2 };
// The defaults per head_dim on a compute capability 9.0 device (the measured faster kernel,
// bench/results/gpu.md): the pipelined kernel for both (at head_dim 64 the 64-key wgmma kernel was
// 0.85-1.09x of mma.sync, the pipelined one 1.4-1.6x of it).
#ifndef SATTN_HOPPER_DEFAULT_64
#define SATTN_HOPPER_DEFAULT_64 2
#endif
#ifndef SATTN_HOPPER_DEFAULT_128
#define SATTN_HOPPER_DEFAULT_128 2
#endif
cudaError_t hopper_launch(const TcArgs&, int variant);
// Which forward tc_launch takes for these arguments on the current device: kHopperOff (the
// mma.sync kernel) unless the device has compute capability 9.0, the library holds the Hopper
// kernels and head_dim is 64 or 128; then SATTN_CUDA_HOPPER (read at each launch, so that tests
// and benchmarks compare the kernels) picks: unset the default above, 0 mma.sync, 1 or 2 that
// variant for both head dims.
int hopper_variant(const TcArgs&);
// "mma.sync", "wgmma" (kHopperTiles64) or "wgmma-pipelined".
const char* forward_path_name(int variant);

// Backward (kernels_bwd.cu), FlashAttention-2 recomputation from the forward's log-sum-exp:
// a: the SIMT arguments with the DEVICE forward layout (ptr/idx, CSR/BSR); tptr/tidx: the
// transposed layout (per key for CSR, per block column for BSR; same n_layouts), device.
struct BwdArgs {
  const void* q;  // a.bf16 ? bf16 : fp32, [batch, heads, seq_len, head_dim]
  const void* k;  // [batch, kv_heads, kv_len, head_dim]
  const void* v;
  const float* o;     // fp32 forward output
  const float* dout;  // fp32 gradient of the output
  const float* lse;   // fp32 [batch, heads, seq_len]
  float* dq;          // fp32 [batch, heads, seq_len, head_dim] (written)
  float* dk;          // fp32 [batch, kv_heads, kv_len, head_dim] (written)
  float* dv;
  float* delta;       // scratch [batch, heads, seq_len]
  const int64_t* tptr;
  const int32_t* tidx;
};
cudaError_t bwd_launch(const SattnCudaArgs& a, const BwdArgs& g);

// The tensor-core backward (kernels_tc_bwd.cu): bf16 q/k/v, head_dim 64 or 128, dense, window or
// BSR. The dq kernel owns tc_bwd_dq_rows(D) query rows per CTA and streams 64-key tiles; the dk/dv
// kernel owns tc_bwd_kv_rows(D) keys and streams 64-query tiles (16 rows per warp in both). BSR
// tiles carry masks of 16 x 16 sub-blocks, listed per query tile (tile_*: dq rows x 64 keys, bit
// q_sub * 4 + k_sub) and per key tile (ttile_*: kv rows x 64 queries, bit k_sub * 4 + q_sub); per
// layout n_qtiles + 1 (n_ktiles + 1) absolute offsets. The macros pick other tile heights for
// measurements (bench/gpu/bwd_variants.sh); the defaults are the measured best
// (docs/decisions.md).
#ifndef SATTN_BWD_DQ_WARPS_64
#define SATTN_BWD_DQ_WARPS_64 4
#endif
#ifndef SATTN_BWD_DQ_WARPS_128
#define SATTN_BWD_DQ_WARPS_128 4
#endif
#ifndef SATTN_BWD_KV_WARPS_64
#define SATTN_BWD_KV_WARPS_64 4
#endif
#ifndef SATTN_BWD_KV_WARPS_128
#define SATTN_BWD_KV_WARPS_128 4
#endif
// Whether the dk/dv kernel also computes dQ (adding into the zeroed dq with vector reductions)
// instead of a separate dq kernel recomputing S and dP.
#ifndef SATTN_BWD_DQ_FUSED_64
#define SATTN_BWD_DQ_FUSED_64 1
#endif
#ifndef SATTN_BWD_DQ_FUSED_128
#define SATTN_BWD_DQ_FUSED_128 1
#endif
__host__ __device__ constexpr bool tc_bwd_dq_fused(int head_dim) {
  return (head_dim > 64 ? SATTN_BWD_DQ_FUSED_128 : SATTN_BWD_DQ_FUSED_64) != 0;
}
__host__ __device__ constexpr int tc_bwd_dq_rows(int head_dim) {
  return 16 * (head_dim > 64 ? SATTN_BWD_DQ_WARPS_128 : SATTN_BWD_DQ_WARPS_64);
}
__host__ __device__ constexpr int tc_bwd_kv_rows(int head_dim) {
  return 16 * (head_dim > 64 ? SATTN_BWD_KV_WARPS_128 : SATTN_BWD_KV_WARPS_64);
}
// Rows per (batch, head) of the delta/lse2 scratch: seq_len rounded up to a whole tile of either
// kernel, so that tiles read it with 16-byte copies and no bounds.
inline int64_t tc_bwd_seq_pad(int64_t seq_len) { return (seq_len + 127) / 128 * 128; }

struct TcBwdArgs {
  const void* q;  // bf16
  const void* k;
  const void* v;
  const float* o;
  const float* dout;
  const float* lse;
  float* dq;
  float* dk;
  float* dv;
  float* delta;              // scratch [batch, heads, seq_pad]: dO . O (0 past seq_len)
  float* lse2;               // scratch [batch, heads, seq_pad]: lse in log2 units; +inf past seq_len
                             // and for rows with no allowed key (their P is 0)
  __nv_bfloat16* dout16;     // scratch [batch, heads, seq_len, head_dim]
  int64_t batch, heads, kv_heads, seq_len, kv_len, seq_pad;
  int head_dim;
  int mode;  // TcMode
  int causal;
  int64_t causal_offset;
  float scale, scale_log2;
  int shared;
  const int64_t* tile_ptr;
  const int32_t* tile_col;
  const uint32_t* tile_mask;
  int64_t n_qtiles;
  const int64_t* ttile_ptr;
  const int32_t* ttile_col;
  const uint32_t* ttile_mask;
  int64_t n_ktiles;
  int64_t window, dilation;
};
cudaError_t tc_bwd_launch(const TcBwdArgs&);
// Whether the current device runs the Hopper (sm_90a) kernels: compute capability 9.0 and a library
// built with them (SATTN_HOPPER).
bool hopper_device();
// The Hopper backward (kernels_hopper.cu): one wgmma kernel for dK, dV and (by vector reductions
// into the zeroed dq) dQ, for what tc_bwd_launch runs after its prep kernel. tc_bwd_launch takes
// it on a Hopper device for head_dim 64 and 128 unless SATTN_CUDA_DETERMINISTIC is set (it adds
// into dq in a run-dependent order), SATTN_CUDA_HOPPER=0 or SATTN_CUDA_HOPPER_BWD=0.
// variant: kHopperBwd64 (bwd_dkdv_wgmma: one warpgroup per 64 keys, the step's Q/dO loaded by
// each CTA) or kHopperBwdWs (bwd_wgmma_ws, the default: two consumer warpgroups over 128 keys share
// each step's Q/dO, loaded by a producer warpgroup). SATTN_CUDA_HOPPER_BWD (read at each launch):
// unset or 2 kHopperBwdWs, 1 kHopperBwd64, 0 the mma.sync kernels.
enum HopperBwdVariant { kHopperBwd64 = 1, kHopperBwdWs = 2 };
#ifndef SATTN_HOPPER_BWD_DEFAULT
#define SATTN_HOPPER_BWD_DEFAULT 2
#endif
cudaError_t hopper_bwd_launch(const TcBwdArgs&, int variant);

}  // namespace sattn_cuda
