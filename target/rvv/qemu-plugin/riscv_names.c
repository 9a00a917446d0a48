/* Histogram key names ("vfmacc.vf", "vle32.v", "scalar.branch", "c.addi") for the plugin's
 * report; mnemonics from the RVV 1.0 specification's funct6 tables. */
#include <stdio.h>

#include "riscv_classify.h"

enum { OPIVV, OPFVV, OPMVV, OPIVI, OPIVX, OPFVF, OPMVX, OPCFG };

/* By bits[6:2] of a 32-bit instruction. The longer-encoding slots (0x1f, 0x3f, 0x5f, 0x7f) and
 * OP-V never reach this table (riscv_insn_key sends them elsewhere); they keep unique names. */
static const char *const kScalarMajor[32] = {
    "scalar.load",  "scalar.fp_load", "scalar.custom0", "scalar.misc_mem", "scalar.alu_imm", "scalar.auipc",
    "scalar.alu_imm32", "scalar.op_1f", "scalar.store", "scalar.fp_store", "scalar.custom1", "scalar.amo",
    "scalar.alu", "scalar.lui", "scalar.alu32", "scalar.op_3f", "scalar.fmadd", "scalar.fmsub", "scalar.fnmsub",
    "scalar.fnmadd", "scalar.fp", "scalar.op_57", "scalar.custom2", "scalar.op_5f", "scalar.branch", "scalar.jalr",
    "scalar.reserved_6b", "scalar.jal", "scalar.system", "scalar.reserved_77", "scalar.custom3", "scalar.op_7f"};

static const char *const kCompressed[24] = {
    "c.addi4spn", "c.fld", "c.lw", "c.ld", "c.reserved", "c.fsd", "c.sw", "c.sd",
    "c.addi", "c.addiw", "c.li", "c.lui_addi16sp", "c.alu", "c.j", "c.beqz", "c.bnez",
    "c.slli", "c.fldsp", "c.lwsp", "c.ldsp", "c.jr_mv_add", "c.fsdsp", "c.swsp", "c.sdsp"};

/* OP-V funct6 names by category; NULL = reserved. */
static const char *const kOpi[64] = {
    [0x00] = "vadd", [0x02] = "vsub", [0x03] = "vrsub", [0x04] = "vminu", [0x05] = "vmin", [0x06] = "vmaxu",
    [0x07] = "vmax", [0x09] = "vand", [0x0a] = "vor", [0x0b] = "vxor", [0x0c] = "vrgather",
    [0x0e] = "vslideup", [0x0f] = "vslidedown", [0x10] = "vadc", [0x11] = "vmadc", [0x12] = "vsbc",
    [0x13] = "vmsbc", [0x17] = "vmerge", [0x18] = "vmseq", [0x19] = "vmsne", [0x1a] = "vmsltu", [0x1b] = "vmslt",
    [0x1c] = "vmsleu", [0x1d] = "vmsle", [0x1e] = "vmsgtu", [0x1f] = "vmsgt", [0x20] = "vsaddu", [0x21] = "vsadd",
    [0x22] = "vssubu", [0x23] = "vssub", [0x25] = "vsll", [0x27] = "vsmul", [0x28] = "vsrl", [0x29] = "vsra",
    [0x2a] = "vssrl", [0x2b] = "vssra", [0x2c] = "vnsrl", [0x2d] = "vnsra", [0x2e] = "vnclipu", [0x2f] = "vnclip",
    [0x30] = "vwredsumu", [0x31] = "vwredsum"};
static const char *const kOpm[64] = {
    [0x00] = "vredsum", [0x01] = "vredand", [0x02] = "vredor", [0x03] = "vredxor", [0x04] = "vredminu",
    [0x05] = "vredmin", [0x06] = "vredmaxu", [0x07] = "vredmax", [0x08] = "vaaddu", [0x09] = "vaadd",
    [0x0a] = "vasubu", [0x0b] = "vasub", [0x0e] = "vslide1up", [0x0f] = "vslide1down", [0x10] = "vmv_s_x_cpop",
    [0x12] = "vext", [0x14] = "vmunary", [0x17] = "vcompress", [0x18] = "vmandn", [0x19] = "vmand", [0x1a] = "vmor",
    [0x1b] = "vmxor", [0x1c] = "vmorn", [0x1d] = "vmnand", [0x1e] = "vmnor", [0x1f] = "vmxnor", [0x20] = "vdivu",
    [0x21] = "vdiv", [0x22] = "vremu", [0x23] = "vrem", [0x24] = "vmulhu", [0x25] = "vmul", [0x26] = "vmulhsu",
    [0x27] = "vmulh", [0x29] = "vmadd", [0x2b] = "vnmsub", [0x2d] = "vmacc", [0x2f] = "vnmsac", [0x30] = "vwaddu",
    [0x31] = "vwadd", [0x32] = "vwsubu", [0x33] = "vwsub", [0x34] = "vwaddu.w", [0x35] = "vwadd.w",
    [0x36] = "vwsubu.w", [0x37] = "vwsub.w", [0x38] = "vwmulu", [0x3a] = "vwmulsu", [0x3b] = "vwmul",
    [0x3c] = "vwmaccu", [0x3d] = "vwmacc", [0x3e] = "vwmaccus", [0x3f] = "vwmaccsu"};
static const char *const kOpf[64] = {
    [0x00] = "vfadd", [0x01] = "vfredusum", [0x02] = "vfsub", [0x03] = "vfredosum", [0x04] = "vfmin",
    [0x05] = "vfredmin", [0x06] = "vfmax", [0x07] = "vfredmax", [0x08] = "vfsgnj", [0x09] = "vfsgnjn",
    [0x0a] = "vfsgnjx", [0x0e] = "vfslide1up", [0x0f] = "vfslide1down", [0x10] = "vfmv_f_s_s_f",
    [0x12] = "vfcvt", [0x13] = "vfunary1", [0x17] = "vfmerge", [0x18] = "vmfeq", [0x19] = "vmfle",
    [0x1b] = "vmflt", [0x1c] = "vmfne", [0x1d] = "vmfgt", [0x1f] = "vmfge", [0x20] = "vfdiv", [0x21] = "vfrdiv",
    [0x24] = "vfmul", [0x27] = "vfrsub", [0x28] = "vfmadd", [0x29] = "vfnmadd", [0x2a] = "vfmsub",
    [0x2b] = "vfnmsub", [0x2c] = "vfmacc", [0x2d] = "vfnmacc", [0x2e] = "vfmsac", [0x2f] = "vfnmsac",
    [0x30] = "vfwadd", [0x31] = "vfwredusum", [0x32] = "vfwsub", [0x33] = "vfwredosum", [0x34] = "vfwadd.w",
    [0x36] = "vfwsub.w", [0x38] = "vfwmul", [0x3c] = "vfwmacc", [0x3d] = "vfwnmacc", [0x3e] = "vfwmsac",
    [0x3f] = "vfwnmsac"};

/* Names that the operand-form suffix cannot express: the unary groups (one funct6, the
 * operation chosen by vs1/rs1, which the key does not keep), reductions (.vs), mask logic (.mm). */
static const char *opv_full_name(unsigned funct3, unsigned funct6) {
  switch (funct3 * 64 + funct6) {
    case OPMVV * 64 + 0x10: return "vmv.x.s|vcpop.m|vfirst.m";
    case OPMVX * 64 + 0x10: return "vmv.s.x";
    case OPFVV * 64 + 0x10: return "vfmv.f.s";
    case OPFVF * 64 + 0x10: return "vfmv.s.f";
    case OPMVV * 64 + 0x12: return "vzext|vsext";
    case OPMVV * 64 + 0x14: return "vmsbf|vmsof|vmsif|viota|vid";
    case OPFVV * 64 + 0x12: return "vfcvt|vfwcvt|vfncvt";
    case OPFVV * 64 + 0x13: return "vfsqrt|vfrsqrt7|vfrec7|vfclass";
    case OPMVV * 64 + 0x17: return "vcompress.vm";
    case OPIVI * 64 + 0x27: return "vmv<nr>r.v"; /* shares vsmul's funct6 */
    case OPIVV * 64 + 0x17: return "vmerge|vmv.v.v";
    case OPIVX * 64 + 0x17: return "vmerge|vmv.v.x";
    case OPIVI * 64 + 0x17: return "vmerge|vmv.v.i";
    case OPFVF * 64 + 0x17: return "vfmerge|vfmv.v.f";
    case OPIVV * 64 + 0x0e: return "vrgatherei16.vv";
    default: return NULL;
  }
}

static void opv_name(unsigned funct3, unsigned funct6, char *buf, size_t size) {
  static const char *const form[8] = {".vv", ".vv", ".vv", ".vi", ".vx", ".vf", ".vx", ""};
  const char *full = opv_full_name(funct3, funct6);
  if (full) {
    snprintf(buf, size, "%s", full);
    return;
  }
  const char *base = NULL;
  switch (funct3) {
    case OPIVV: case OPIVI: case OPIVX: base = kOpi[funct6]; break;
    case OPMVV: case OPMVX: base = kOpm[funct6]; break;
    case OPFVV: case OPFVF: base = kOpf[funct6]; break;
    default: break;
  }
  const char *suffix = form[funct3];
  if (riscv_key_class((unsigned)KEY_OPV + funct3 * 64 + funct6) == CLASS_VECTOR_REDUCTION) suffix = ".vs";
  else if (funct3 == OPMVV && funct6 >= 0x18 && funct6 <= 0x1f) suffix = ".mm";
  if (base) snprintf(buf, size, "%s%s", base, suffix);
  else snprintf(buf, size, "opv.%u.%02x", funct3, funct6);
}

static void vmem_name(unsigned v, char *buf, size_t size) {
  const unsigned store = (v >> 9) & 1, mop = (v >> 7) & 3, nf = (v >> 4) & 7, form = (v >> 2) & 3;
  const unsigned eew = 8u << (v & 3);
  const char *op = store ? "vs" : "vl";
  char seg[16] = "";
  if (nf) snprintf(seg, sizeof seg, "seg%u", nf + 1);
  switch (mop) {
    case 0:
      if (form == 1) snprintf(buf, size, "%s%ure%u.v", op, nf + 1, eew);
      else if (form == 2) snprintf(buf, size, "%sm.v", op);
      else if (form == 3) snprintf(buf, size, "%s%se%uff.v", op, seg, eew);
      else snprintf(buf, size, "%s%se%u.v", op, seg, eew);
      break;
    case 2: snprintf(buf, size, "%ss%se%u.v", op, seg, eew); break;
    default: snprintf(buf, size, "%s%s%sei%u.v", op, mop == 1 ? "ux" : "ox", seg, eew); break;
  }
}

void riscv_key_name(unsigned key, char *buf, size_t size) {
  if (key < KEY_SCALAR_MULDIV) snprintf(buf, size, "%s", kScalarMajor[key - KEY_SCALAR_MAJOR]);
  else if (key == KEY_SCALAR_MULDIV) snprintf(buf, size, "scalar.mul_div");
  else if (key < KEY_COMPRESSED) snprintf(buf, size, "scalar.long");
  else if (key < KEY_OPV) snprintf(buf, size, "%s", kCompressed[(key - KEY_COMPRESSED) % 24]);
  else if (key < KEY_VMEM) {
    const unsigned funct3 = (key - KEY_OPV) / 64, funct6 = (key - KEY_OPV) % 64;
    if (funct3 == OPCFG) {
      static const char *const forms[3] = {"vsetvli", "vsetivli", "vsetvl"};
      snprintf(buf, size, "%s", funct6 < 3 ? forms[funct6] : "vsetvl?");
    } else {
      opv_name(funct3, funct6, buf, size);
    }
  } else if (key < KEY_COUNT) {
    vmem_name(key - KEY_VMEM, buf, size);
  } else {
    snprintf(buf, size, "?");
  }
}
