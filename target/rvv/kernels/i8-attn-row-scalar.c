/* i8 row attention, scalar twin (riscv64 GCC -O2; also the autovec baseline under clang -O3 -march=rv64gcv). */
#define SATTN_PREC SATTN_I8
#define SATTN_KERNEL_NAME sattn_i8_attn_row_scalar
#include "attn-row-scalar.inc.h"
