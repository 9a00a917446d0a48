/* The kernels of the scalar and autovec runners (the same scalar source, two compilers). */
#include "attn.h"

#define DECLARE(n) void sattn_##n##_attn_row_scalar(const sattn_job *); void sattn_##n##_attn_block_scalar(const sattn_job *);
DECLARE(f32) DECLARE(bf16) DECLARE(i8) DECLARE(i4)

const sattn_kernel_set sattn_kernels = {
#ifdef SATTN_AUTOVEC
    "autovec",
#else
    "scalar",
#endif
    {sattn_f32_attn_row_scalar, sattn_bf16_attn_row_scalar, sattn_i8_attn_row_scalar, sattn_i4_attn_row_scalar},
    {sattn_f32_attn_block_scalar, sattn_bf16_attn_block_scalar, sattn_i8_attn_block_scalar, sattn_i4_attn_block_scalar},
    0};

size_t sattn_scratch_bytes(const sattn_job *job) {
  /* acc[hd] (padded), s[64], q[hd] */
  return (size_t)(((job->head_dim + 15) & ~15) + 64 + job->head_dim) * 4 + 64;
}
