// Internal interface between the plan code (kernels.cu) and the tensor-core kernel
// (kernels_tc.cu). Not part of the C API.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

namespace sattn_cuda {

// Tiles of the tensor-core kernel: 128 query rows x 64 keys, masks in sub-blocks of 16 x 16.
constexpr int kTcQTile = 128;
constexpr int kTcKTile = 64;
constexpr int kTcSub = 16;

enum TcMode { kTcDense = 0, kTcTiles = 1, kTcWindow = 2 };

struct TcArgs {
  const void* q;  // bf16 [batch, heads, seq_len, head_dim]
  const void* k;  // bf16 [batch, kv_heads, kv_len, head_dim]
  const void* v;
  float* o;       // fp32 [batch, heads, seq_len, head_dim]
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

}  // namespace sattn_cuda
