/* f32 row attention, RVV 1.0 intrinsics (clang-16). Scalar twin: f32-attn-row-scalar.c. */
#define SATTN_PREC SATTN_FP32
#define SATTN_KERNEL_NAME sattn_f32_attn_row_rvv
#include "attn-row-rvv.inc.h"
