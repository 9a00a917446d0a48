/* f32 block attention, RVV 1.0 intrinsics (clang-16). Scalar twin: f32-attn-block-scalar.c. */
#define SATTN_PREC SATTN_FP32
#define SATTN_KERNEL_NAME sattn_f32_attn_block_rvv
#include "attn-block-rvv.inc.h"
