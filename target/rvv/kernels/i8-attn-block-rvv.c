/* i8 block attention, RVV 1.0 intrinsics (clang-16). Scalar twin: i8-attn-block-scalar.c. */
#define SATTN_PREC SATTN_I8
#define SATTN_KERNEL_NAME sattn_i8_attn_block_rvv
#include "attn-block-rvv.inc.h"
