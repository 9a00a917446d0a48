/* i8 block attention, scalar twin (riscv64 GCC -O2; also the autovec baseline under clang -O3 -march=rv64gcv). */
#define SATTN_PREC SATTN_I8
#define SATTN_KERNEL_NAME sattn_i8_attn_block_scalar
#include "attn-block-scalar.inc.h"
