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
// BSR as 64 x 64 tiles with 4 x 4 masks of 16 x 16 sub-blocks, listed per query tile (tile_*:
// bit q_sub * 4 + k_sub) and per key tile (ttile_*: bit k_sub * 4 + q_sub); per layout n_qtiles + 1
// (n_ktiles + 1) absolute offsets.
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
  float* delta;              // scratch [batch, heads, seq_len]
  __nv_bfloat16* dout16;     // scratch [batch, heads, seq_len, head_dim]
  int64_t batch, heads, kv_heads, seq_len, kv_len;
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

}  // namespace sattn_cuda
