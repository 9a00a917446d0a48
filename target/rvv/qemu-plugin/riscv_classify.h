/* RISC-V instruction classes for the instruction-mix plugin (RV64GC + RVV 1.0).
 *
 * Every instruction maps to one histogram key (roughly one mnemonic; vector instructions keep
 * their operand form, e.g. "vfmacc.vf") and every key to one class:
 *   scalar            everything that is not RVV: integer, M, A, F/D (scalar FP loads too), C,
 *                     branches, jumps, CSR and system instructions
 *   vector_arith      OP-V arithmetic of any element type, mask logic, compares, moves
 *                     (vmv.v.*, vmv.x.s, vfmv.f.s, vmv.s.x, vmv<nr>r.v), register permutes
 *                     (vslide*, vrgather*, vcompress), widening/narrowing and conversions
 *   vector_load_unit  unit-stride loads: vle*, segment, whole-register, mask (vlm.v), fault-first
 *   vector_store_unit unit-stride stores: vse*, segment, whole-register, mask (vsm.v)
 *   vector_load_strided / vector_store_strided   vlse* / vsse* (and their segment forms)
 *   vector_load_indexed / vector_store_indexed   vluxei* vloxei* / vsuxei* vsoxei* (gather/scatter)
 *   vector_reduction  vred*, vwred*, vfred*, vfwred*
 *   vsetvl            vsetvli, vsetivli, vsetvl
 * Valid C and C++ so that the unit tests can check single encodings. */
#ifndef SATTN_RISCV_CLASSIFY_H
#define SATTN_RISCV_CLASSIFY_H

#include <stddef.h>
#include <stdint.h>

enum insn_class {
  CLASS_SCALAR,
  CLASS_VECTOR_ARITH,
  CLASS_VECTOR_LOAD_UNIT,
  CLASS_VECTOR_STORE_UNIT,
  CLASS_VECTOR_LOAD_STRIDED,
  CLASS_VECTOR_STORE_STRIDED,
  CLASS_VECTOR_LOAD_INDEXED,
  CLASS_VECTOR_STORE_INDEXED,
  CLASS_VECTOR_REDUCTION,
  CLASS_VSETVL,
  CLASS_COUNT
};

/* Histogram key ranges. */
enum {
  KEY_SCALAR_MAJOR = 0,    /* + bits[6:2] of a 32-bit instruction */
  KEY_SCALAR_MULDIV = 32,  /* OP / OP-32 with funct7 = 1 (M extension) */
  KEY_SCALAR_LONG = 33,    /* 48-bit and longer encodings */
  KEY_COMPRESSED = 40,     /* + quadrant * 8 + funct3 */
  KEY_OPV = 64,            /* + funct3 * 64 + funct6 (funct3 7: vsetvl forms 0..2) */
  KEY_VMEM = 64 + 512,     /* + store << 9 | mop << 7 | nf << 4 | form << 2 | width index */
  KEY_COUNT = 64 + 512 + 1024
};

/* The marker instructions around the kernel region: slti x0, x0, 0x5a1 (begin) and
 * slti x0, x0, 0x5a0 (end); HINTs that execute as no-ops. */
#define SATTN_MARKER_BEGIN 0x5a102013u
#define SATTN_MARKER_END 0x5a002013u

/* LMUL bins: the vlmul field of vtype (0 m1, 1 m2, 2 m4, 3 m8, 5 mf8, 6 mf4, 7 mf2; 4 is
 * reserved) and LMUL_UNKNOWN for a vtype set from a register (vsetvl) or not set yet. */
#define LMUL_BINS 9
#define LMUL_UNKNOWN 8

/* The key of one instruction: `word` holds its bytes (little-endian; the low 16 bits for a
 * compressed instruction), `size` its length in bytes. */
unsigned riscv_insn_key(uint32_t word, size_t size);
enum insn_class riscv_key_class(unsigned key);
/* vsetvli / vsetivli: the vlmul of their immediate vtype (LMUL_UNKNOWN when reserved); vsetvl
 * (vtype from a register): LMUL_UNKNOWN. */
unsigned riscv_vsetvl_lmul(uint32_t word, unsigned key);
/* Whole-register loads, stores and moves (vl<n>r, vs<n>r, vmv<n>r) name their register count in
 * the encoding, whatever vtype says: its bin (1, 2, 4, 8 registers -> 0..3). -1 for the others. */
int riscv_fixed_lmul(uint32_t word, unsigned key);
/* Writes the key's name ("vfmacc.vf", "vle32.v", "scalar.branch", "c.addi") into buf. */
void riscv_key_name(unsigned key, char *buf, size_t size);
/* The JSON name of a class ("scalar", "vector_arith", ...). */
const char *riscv_class_name(enum insn_class c);

#endif
