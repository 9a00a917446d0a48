/* i4 row attention, RVV 1.0 intrinsics (clang-16). Scalar twin: i4-attn-row-scalar.c. */
#define SATTN_PREC SATTN_I4
#define SATTN_KERNEL_NAME sattn_i4_attn_row_rvv
#include "attn-row-rvv.inc.h"
