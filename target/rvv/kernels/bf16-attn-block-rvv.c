/* bf16 block attention, RVV 1.0 intrinsics (clang-16). Scalar twin: bf16-attn-block-scalar.c. */
#define SATTN_PREC SATTN_BF16
#define SATTN_KERNEL_NAME sattn_bf16_attn_block_rvv
#include "attn-block-rvv.inc.h"
