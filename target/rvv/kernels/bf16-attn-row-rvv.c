/* bf16 row attention, RVV 1.0 intrinsics (clang-16). Scalar twin: bf16-attn-row-scalar.c. */
#define SATTN_PREC SATTN_BF16
#define SATTN_KERNEL_NAME sattn_bf16_attn_row_rvv
#include "attn-row-rvv.inc.h"
