/* i4 block attention, RVV 1.0 intrinsics (clang-16). Scalar twin: i4-attn-block-scalar.c. */
#define SATTN_PREC SATTN_I4
#define SATTN_KERNEL_NAME sattn_i4_attn_block_rvv
#include "attn-block-rvv.inc.h"
