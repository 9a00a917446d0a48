/* The kernels of the rvv runner (RVV 1.0 intrinsics). */
#include <riscv_vector.h>

#include "attn.h"
#include "tiling.h"

#define DECLARE(n) void sattn_##n##_attn_row_rvv(const sattn_job *); void sattn_##n##_attn_block_rvv(const sattn_job *);
DECLARE(f32) DECLARE(bf16) DECLARE(i8) DECLARE(i4)

const sattn_kernel_set sattn_kernels = {
    "rvv",
    {sattn_f32_attn_row_rvv, sattn_bf16_attn_row_rvv, sattn_i8_attn_row_rvv, sattn_i4_attn_row_rvv},
    {sattn_f32_attn_block_rvv, sattn_bf16_attn_block_rvv, sattn_i8_attn_block_rvv, sattn_i4_attn_block_rvv},
    1};

size_t sattn_scratch_base_bytes(const sattn_job *job) {
  /* Per tile row: acc[hd] and q[hd] in compute form (4 bytes each), p[SATTN_MAX_CHUNK]; plus the
   * gather offsets of one chunk. Rows padded to 64 bytes. */
  const size_t hd = (size_t)((job->head_dim + 15) & ~15);
  /* Scheme tiles also: key scales and V offsets of one chunk, a bias row per tile row. Row
   * kernels: the V row addresses of one chunk (8 bytes each). */
  /* The pair tiles' V panel: one P.V slice (at most head_dim floats) of every key of a chunk. */
  return SATTN_MAX_TILE * (2 * hd + SATTN_MAX_CHUNK) * 4 + SATTN_MAX_CHUNK * 4 + 256 +
         (2 * SATTN_MAX_CHUNK + SATTN_MAX_TILE * SATTN_MAX_CHUNK) * 4 + SATTN_MAX_CHUNK * 8 + SATTN_MAX_CHUNK * hd * 4;
}

/* Block kernels: the K panel of one block row (sattn_kpanel_bytes), after the buffers above. */
size_t sattn_scratch_bytes(const sattn_job *job) {
  return sattn_scratch_base_bytes(job) + sattn_kpanel_bytes(job, (int64_t)__riscv_vsetvlmax_e32m1());
}
