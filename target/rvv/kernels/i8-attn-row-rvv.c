/* i8 row attention, RVV 1.0 intrinsics (clang-16). Scalar twin: i8-attn-row-scalar.c. */
#define SATTN_PREC SATTN_I8
#define SATTN_KERNEL_NAME sattn_i8_attn_row_rvv
#include "attn-row-rvv.inc.h"
