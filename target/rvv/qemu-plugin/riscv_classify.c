/* RISC-V instruction decoding into the classes and keys of riscv_classify.h. Written from the
 * RISC-V unprivileged ISA manual (base opcode map, C extension quadrants) and the RVV 1.0
 * specification (OP-V funct3/funct6 tables, vector load/store encodings). Valid C and C++: the
 * unit tests compile it to check single encodings. Names live in riscv_names.c. */
#include "riscv_classify.h"


enum {
  OPCODE_LOAD_FP = 0x07,
  OPCODE_STORE_FP = 0x27,
  OPCODE_OP = 0x33,
  OPCODE_OP_32 = 0x3b,
  OPCODE_OP_V = 0x57,
};

/* funct3 of OP-V */
enum { OPIVV, OPFVV, OPMVV, OPIVI, OPIVX, OPFVF, OPMVX, OPCFG };

/* Vector load/store width field (funct3) -> element width index, or -1 for a scalar FP access. */
static int vector_width_index(unsigned funct3) {
  switch (funct3) {
    case 0: return 0; /* 8-bit elements */
    case 5: return 1; /* 16 */
    case 6: return 2; /* 32 */
    case 7: return 3; /* 64 */
    default: return -1;
  }
}

static unsigned vmem_key(uint32_t w, int store, int width_index) {
  const unsigned mop = (w >> 26) & 3, nf = (w >> 29) & 7, lumop = (w >> 20) & 31;
  unsigned form = 0;
  if (mop == 0) {
    if (lumop == 8) form = 1;          /* whole register */
    else if (lumop == 11) form = 2;    /* mask: vlm.v / vsm.v */
    else if (lumop == 16) form = 3;    /* fault-only-first (loads) */
  }
  return KEY_VMEM + ((unsigned)store << 9 | mop << 7 | nf << 4 | form << 2 | (unsigned)width_index);
}

unsigned riscv_insn_key(uint32_t w, size_t size) {
  if (size == 2 || (w & 3) != 3) {
    const unsigned quadrant = w & 3, funct3 = (w >> 13) & 7;
    return KEY_COMPRESSED + quadrant * 8 + funct3;
  }
  if (size > 4 || (w & 0x1f) == 0x1f) return KEY_SCALAR_LONG;
  const unsigned opcode = w & 0x7f, funct3 = (w >> 12) & 7;
  switch (opcode) {
    case OPCODE_OP_V:
      if (funct3 == OPCFG) {
        unsigned form = 0;                         /* vsetvli: bit 31 = 0 */
        if ((w >> 30) == 3) form = 1;              /* vsetivli */
        else if ((w >> 31) == 1) form = 2;         /* vsetvl */
        return KEY_OPV + OPCFG * 64 + form;
      }
      return KEY_OPV + funct3 * 64 + ((w >> 26) & 63);
    case OPCODE_LOAD_FP:
    case OPCODE_STORE_FP: {
      const int wi = vector_width_index(funct3);
      if (wi >= 0) return vmem_key(w, opcode == OPCODE_STORE_FP, wi);
      break;
    }
    case OPCODE_OP:
    case OPCODE_OP_32:
      if ((w >> 25) == 1) return KEY_SCALAR_MULDIV;
      break;
    default:
      break;
  }
  return KEY_SCALAR_MAJOR + ((w >> 2) & 31);
}

static int is_reduction(unsigned funct3, unsigned funct6) {
  switch (funct3) {
    case OPMVV: return funct6 <= 7;                            /* vredsum .. vredmax */
    case OPIVV: return funct6 == 0x30 || funct6 == 0x31;       /* vwredsumu, vwredsum */
    case OPFVV:
      return funct6 == 0x01 || funct6 == 0x03 || funct6 == 0x05 || funct6 == 0x07 || /* vfred* */
             funct6 == 0x31 || funct6 == 0x33;                                       /* vfwred* */
    default: return 0;
  }
}

enum insn_class riscv_key_class(unsigned key) {
  if (key < KEY_OPV) return CLASS_SCALAR;
  if (key < KEY_VMEM) {
    const unsigned funct3 = (key - KEY_OPV) / 64, funct6 = (key - KEY_OPV) % 64;
    if (funct3 == OPCFG) return CLASS_VSETVL;
    return is_reduction(funct3, funct6) ? CLASS_VECTOR_REDUCTION : CLASS_VECTOR_ARITH;
  }
  const unsigned v = key - KEY_VMEM, store = (v >> 9) & 1, mop = (v >> 7) & 3;
  if (mop == 0) return store ? CLASS_VECTOR_STORE_UNIT : CLASS_VECTOR_LOAD_UNIT;
  if (mop == 2) return store ? CLASS_VECTOR_STORE_STRIDED : CLASS_VECTOR_LOAD_STRIDED;
  return store ? CLASS_VECTOR_STORE_INDEXED : CLASS_VECTOR_LOAD_INDEXED;
}

const char *riscv_class_name(enum insn_class c) {
  static const char *const names[CLASS_COUNT] = {
      "scalar",           "vector_arith",      "vector_load_unit",     "vector_store_unit",
      "vector_load_strided", "vector_store_strided", "vector_load_indexed", "vector_store_indexed",
      "vector_reduction", "vsetvl"};
  return (unsigned)c < (unsigned)CLASS_COUNT ? names[c] : "?";
}

unsigned riscv_vsetvl_lmul(uint32_t w, unsigned key) {
  if (key == (unsigned)KEY_OPV + OPCFG * 64 + 2) return LMUL_UNKNOWN; /* vsetvl: vtype in rs2 */
  const unsigned vlmul = (w >> 20) & 7;                              /* zimm[2:0] of both forms */
  return vlmul == 4 ? LMUL_UNKNOWN : vlmul;
}

static int log2_registers(unsigned n) {
  switch (n) {
    case 1: return 0;
    case 2: return 1;
    case 4: return 2;
    case 8: return 3;
    default: return -1;
  }
}

int riscv_fixed_lmul(uint32_t w, unsigned key) {
  if (key == (unsigned)KEY_OPV + OPIVI * 64 + 0x27) return log2_registers(((w >> 15) & 31) + 1); /* vmv<nr>r.v */
  if (key >= KEY_VMEM && key < KEY_COUNT) {
    const unsigned v = key - KEY_VMEM, mop = (v >> 7) & 3, form = (v >> 2) & 3, nf = (v >> 4) & 7;
    if (mop == 0 && form == 1) return log2_registers(nf + 1); /* vl<nf+1>r / vs<nf+1>r */
  }
  return -1;
}
