// C API of the sattn CUDA kernels (libsattn/cuda/kernels.cu). Plain C types so that the sattn
// backend (C++) and the benchmark (Python ctypes) call the same entry point.
#pragma once
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

enum SattnCudaMode { SATTN_CUDA_DENSE = 0, SATTN_CUDA_CSR = 1, SATTN_CUDA_BSR = 2, SATTN_CUDA_WINDOW = 3 };

typedef struct {
  int mode;          // SattnCudaMode
  int bf16;          // 1: q/k/v are bf16 (uint16 bits), output fp32; 0: fp32
  int64_t batch, heads, kv_heads, seq_len, kv_len, head_dim;  // head_dim <= 256
  int causal;
  int64_t causal_offset;  // kv_len - seq_len
  float scale;
  // CSR: ptr has n_layouts * (seq_len + 1) entries (absolute offsets into idx);
  // BSR: n_layouts * (block_rows + 1). n_layouts == 1 when shared, else batch * kv_heads.
  const int64_t* ptr;
  const int32_t* idx;
  int shared;
  int64_t block_size;
  int64_t window, dilation;  // WINDOW (no wrap: wrapped windows go through CSR)
  const void* q;  // [batch, heads, seq_len, head_dim] device
  const void* k;  // [batch, kv_heads, kv_len, head_dim] device
  const void* v;
  float* o;       // [batch, heads, seq_len, head_dim] device
} SattnCudaArgs;

// A forward pass prepared once and run many times: the layout (a->ptr, a->idx given as HOST
// pointers here; a->q/k/v/o ignored) is copied to the device, converted for the tensor-core
// kernel when that kernel applies: bf16, head_dim 64 or 128, and dense, window, or BSR with a
// block size that is a multiple of 16. Everything else (fp32, CSR, other shapes) runs on the
// SIMT kernel. allow_tensor_cores = 0 forces the SIMT kernel.
typedef struct SattnCudaPlan SattnCudaPlan;
int sattn_cuda_plan_create(const SattnCudaArgs* a, int allow_tensor_cores, SattnCudaPlan** plan, char* msg);
// Launches the plan on the default stream with device tensors (q/k/v 16-byte aligned for the
// tensor-core kernel). Returns 0, else a CUDA error code (msg set).
int sattn_cuda_plan_run(const SattnCudaPlan* plan, const void* q, const void* k, const void* v, float* o, char* msg);
// As sattn_cuda_plan_run, and lse (device, fp32 [batch, heads, seq_len]; null: not written)
// receives each row's log-sum-exp of the scaled scores, natural log (-inf for a row with no
// allowed key): what the backward needs.
int sattn_cuda_plan_run_lse(const SattnCudaPlan* plan, const void* q, const void* k, const void* v, float* o,
                            float* lse, char* msg);
// The backward pass (FlashAttention-2 recomputation, no P stored; the tensor-core kernels for the
// plan's tensor-core shapes, a wgmma kernel on compute capability 9.0, else SIMT; the tensor-core
// ones add dq in a run-dependent order unless SATTN_CUDA_DETERMINISTIC is set):
// from q/k/v (the plan's dtype), the forward's o and lse and the output gradient dout (fp32),
// writes dq [batch, heads, seq_len, head_dim], dk and dv [batch, kv_heads, kv_len, head_dim]
// (fp32, overwritten; GQA sums the query heads of each KV head). Device pointers, default stream.
int sattn_cuda_plan_backward(const SattnCudaPlan* plan, const void* q, const void* k, const void* v, const float* o,
                             const float* dout, const float* lse, float* dq, float* dk, float* dv, char* msg);
// "tensor-core" or "simt".
const char* sattn_cuda_plan_kernel(const SattnCudaPlan* plan);
// The forward kernel a run of the plan would launch now on the current device: "wgmma-pipelined"
// or "wgmma" (the Hopper kernels, 128- or 64-key tiles: compute capability 9.0, built for sm_90a;
// head_dim 128 by default, SATTN_CUDA_HOPPER=0|1|2 chooses mma.sync|wgmma|wgmma-pipelined),
// "mma.sync" (the tensor-core kernel of other GPUs, and of head_dim 64 on Hopper) or "simt".
const char* sattn_cuda_plan_forward_path(const SattnCudaPlan* plan);
// 1 when the library holds the Hopper (sm_90a) forward kernel, else 0.
int sattn_cuda_hopper_built(void);
void sattn_cuda_plan_destroy(SattnCudaPlan* plan);
// The name of device 0 (256 bytes); 0 on success.
int sattn_cuda_device_name(char* name);

// Number of CUDA devices (0 when none or no driver); msg (may be null, 256 bytes) gets the reason.
int sattn_cuda_device_count(char* msg);
// Launches the forward kernel on the default stream. Returns 0, else a CUDA error code (msg set).
int sattn_cuda_forward(const SattnCudaArgs* args, char* msg);

#ifdef __cplusplus
}
#endif
