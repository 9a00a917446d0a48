/* libsattn-insn-count.so: a QEMU TCG plugin (API v1, QEMU 7.2) that counts the exact dynamic
 * instruction mix of the kernel region of a riscv64 program.
 *
 *   qemu-riscv64 -plugin libsattn-insn-count.so,out=counts.json ./program
 *
 * The region is everything executed strictly between the marker instructions
 * `slti x0, x0, 0x5a1` (begin) and `slti x0, x0, 0x5a0` (end), summed over every
 * begin/end pair; the markers themselves are not counted.
 *
 * Speed: every instruction gets one inline counter increment (no helper call) into the
 * histogram slot of its key, decoded once at translation time. Only the two marker
 * instructions get an exec callback, which snapshots the histogram (begin) or adds the
 * difference to the region's totals (end). A kernel of 10^8 instructions therefore costs one
 * host add per guest instruction plus two snapshots. Vector loads and stores also get an inline
 * add per memory access (QEMU's vector helpers access memory once per active element), which
 * gives the exact number of elements each class moved: what gathers are charged by. Each
 * vsetvli/vsetvl gets an exec callback that attributes the vector instructions since the previous
 * one to the LMUL that was in force (vtype changes nowhere else), so the cycle model charges every
 * instruction for the register group it really used.
 *
 * Arguments: out=FILE (required): where to write the counts as JSON (sattn.insn-count/v1),
 * written to FILE.tmp and renamed, at guest exit. Diagnostics go to stderr directly:
 * qemu_plugin_outs() prints only under `-d plugin`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu_plugin_api.h"
#include "riscv_classify.h"

SATTN_QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

/* Every counter lives in one array so a region is one snapshot and one difference:
 *   [0, KEY_COUNT)            instructions by key
 *   SLOT_ELEMENTS + class     memory accesses (elements) of the vector loads/stores of a class
 *   SLOT_VCLASS + class       vector instructions of a class whose group follows vtype
 *   SLOT_BINS + bin*C + class those instructions by the LMUL they ran at (see flush_vtype) plus
 *                             the whole-register ones by their register count */
enum {
  SLOT_ELEMENTS = KEY_COUNT,
  SLOT_VCLASS = SLOT_ELEMENTS + CLASS_COUNT,
  SLOT_BINS = SLOT_VCLASS + CLASS_COUNT,
  SLOT_COUNT = SLOT_BINS + LMUL_BINS * CLASS_COUNT
};
static uint64_t counts[SLOT_COUNT];   /* everything executed but the markers */
static uint64_t at_begin[SLOT_COUNT]; /* counts at the open region's begin marker */
static uint64_t region[SLOT_COUNT];   /* summed over closed regions */
static uint64_t regions, stray_ends, nested_begins;
static int in_region;
/* vtype only changes at vsetvl instructions, so the vector instructions counted since the last
 * one all ran at the LMUL it set: each vsetvl (and each marker) attributes them to that bin. */
static uint64_t attributed[CLASS_COUNT];
static unsigned current_lmul = LMUL_UNKNOWN;
static char *out_path;

static void flush_vtype(void) {
  for (unsigned c = 0; c < CLASS_COUNT; ++c) {
    counts[SLOT_BINS + current_lmul * CLASS_COUNT + c] += counts[SLOT_VCLASS + c] - attributed[c];
    attributed[c] = counts[SLOT_VCLASS + c];
  }
}

static void on_vsetvl(unsigned int vcpu_index, void *userdata) {
  (void)vcpu_index;
  flush_vtype();
  current_lmul = (unsigned)(uintptr_t)userdata;
}

static void on_begin(unsigned int vcpu_index, void *userdata) {
  (void)vcpu_index;
  (void)userdata;
  flush_vtype();
  if (in_region) ++nested_begins; /* restart the region: the later begin wins */
  memcpy(at_begin, counts, sizeof counts);
  in_region = 1;
}

static void on_end(unsigned int vcpu_index, void *userdata) {
  (void)vcpu_index;
  (void)userdata;
  flush_vtype();
  if (!in_region) {
    ++stray_ends;
    return;
  }
  for (unsigned k = 0; k < SLOT_COUNT; ++k) region[k] += counts[k] - at_begin[k];
  ++regions;
  in_region = 0;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
  (void)id;
  const size_t n = qemu_plugin_tb_n_insns(tb);
  for (size_t i = 0; i < n; ++i) {
    struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
    const size_t size = qemu_plugin_insn_size(insn);
    uint32_t word = 0;
    memcpy(&word, qemu_plugin_insn_data(insn), size < sizeof word ? size : sizeof word);
    if (size == 2) word &= 0xffff;
    if (size == 4 && word == SATTN_MARKER_BEGIN) {
      qemu_plugin_register_vcpu_insn_exec_cb(insn, on_begin, QEMU_PLUGIN_CB_NO_REGS, NULL);
    } else if (size == 4 && word == SATTN_MARKER_END) {
      qemu_plugin_register_vcpu_insn_exec_cb(insn, on_end, QEMU_PLUGIN_CB_NO_REGS, NULL);
    } else {
      const unsigned key = riscv_insn_key(word, size);
      qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &counts[key], 1);
      const enum insn_class c = riscv_key_class(key);
      if (c >= CLASS_VECTOR_LOAD_UNIT && c <= CLASS_VECTOR_STORE_INDEXED)
        qemu_plugin_register_vcpu_mem_inline(insn, QEMU_PLUGIN_MEM_RW, QEMU_PLUGIN_INLINE_ADD_U64,
                                             &counts[SLOT_ELEMENTS + c], 1);
      if (c == CLASS_VSETVL) {
        qemu_plugin_register_vcpu_insn_exec_cb(insn, on_vsetvl, QEMU_PLUGIN_CB_NO_REGS,
                                               (void *)(uintptr_t)riscv_vsetvl_lmul(word, key));
      } else if (c != CLASS_SCALAR) {
        const int fixed = riscv_fixed_lmul(word, key);
        uint64_t *slot = fixed >= 0 ? &counts[SLOT_BINS + (unsigned)fixed * CLASS_COUNT + c] : &counts[SLOT_VCLASS + c];
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, slot, 1);
      }
    }
  }
}

static void write_counts(FILE *f) {
  uint64_t classes[CLASS_COUNT] = {0};
  uint64_t total = 0, program_total = 0;
  for (unsigned k = 0; k < KEY_COUNT; ++k) {
    classes[riscv_key_class(k)] += region[k];
    total += region[k];
    program_total += counts[k];
  }
  fprintf(f, "{\"schema\": \"sattn.insn-count/v1\",\n");
  fprintf(f, " \"regions\": %llu, \"open_region\": %s, \"stray_end_markers\": %llu, \"nested_begin_markers\": %llu,\n",
          (unsigned long long)regions, in_region ? "true" : "false", (unsigned long long)stray_ends,
          (unsigned long long)nested_begins);
  fprintf(f, " \"program_total\": %llu,\n", (unsigned long long)program_total);
  fprintf(f, " \"total\": %llu,\n \"classes\": {", (unsigned long long)total);
  for (int c = 0; c < CLASS_COUNT; ++c)
    fprintf(f, "%s\"%s\": %llu", c ? ", " : "", riscv_class_name((enum insn_class)c), (unsigned long long)classes[c]);
  fprintf(f, "},\n \"elements\": {");
  for (int c = CLASS_VECTOR_LOAD_UNIT; c <= CLASS_VECTOR_STORE_INDEXED; ++c)
    fprintf(f, "%s\"%s\": %llu", c != CLASS_VECTOR_LOAD_UNIT ? ", " : "", riscv_class_name((enum insn_class)c),
            (unsigned long long)region[SLOT_ELEMENTS + c]);
  fprintf(f, "},\n \"by_lmul\": {");
  static const char *const bin_names[LMUL_BINS] = {"m1", "m2", "m4", "m8", "reserved", "mf8", "mf4", "mf2", "unknown"};
  int first_bin = 1;
  for (unsigned b = 0; b < LMUL_BINS; ++b) {
    uint64_t any = 0;
    for (unsigned c = 0; c < CLASS_COUNT; ++c) any |= region[SLOT_BINS + b * CLASS_COUNT + c];
    if (!any) continue;
    fprintf(f, "%s\"%s\": {", first_bin ? "" : ", ", bin_names[b]);
    first_bin = 0;
    int first_class = 1;
    for (unsigned c = 0; c < CLASS_COUNT; ++c) {
      const uint64_t n = region[SLOT_BINS + b * CLASS_COUNT + c];
      if (!n) continue;
      fprintf(f, "%s\"%s\": %llu", first_class ? "" : ", ", riscv_class_name((enum insn_class)c), (unsigned long long)n);
      first_class = 0;
    }
    fprintf(f, "}");
  }
  fprintf(f, "},\n \"histogram\": {");
  int first = 1;
  for (unsigned k = 0; k < KEY_COUNT; ++k) {
    if (!region[k]) continue;
    char name[48];
    riscv_key_name(k, name, sizeof name);
    fprintf(f, "%s\n  \"%s\": {\"class\": \"%s\", \"count\": %llu}", first ? "" : ",", name,
            riscv_class_name(riscv_key_class(k)), (unsigned long long)region[k]);
    first = 0;
  }
  fprintf(f, "%s}}\n", first ? "" : "\n ");
}

static void on_exit_write(qemu_plugin_id_t id, void *userdata) {
  (void)id;
  (void)userdata;
  char msg[512];
  const size_t len = strlen(out_path);
  char *tmp = malloc(len + 5);
  if (!tmp) return;
  memcpy(tmp, out_path, len);
  memcpy(tmp + len, ".tmp", 5);
  FILE *f = fopen(tmp, "w");
  if (!f) {
    snprintf(msg, sizeof msg, "sattn-insn-count: cannot write %s: %s\n", tmp, strerror(errno));
    fputs(msg, stderr);
    free(tmp);
    return;
  }
  write_counts(f);
  if (fclose(f) != 0 || rename(tmp, out_path) != 0) {
    snprintf(msg, sizeof msg, "sattn-insn-count: cannot write %s: %s\n", out_path, strerror(errno));
    fputs(msg, stderr);
    remove(tmp);
  }
  free(tmp);
}

SATTN_QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                                 char **argv) {
  char msg[512];
  if (info && info->target_name && strcmp(info->target_name, "riscv64") != 0) {
    snprintf(msg, sizeof msg, "sattn-insn-count: target is %s; this plugin decodes riscv64 only\n", info->target_name);
    fputs(msg, stderr);
    return -1;
  }
  for (int i = 0; i < argc; ++i) {
    if (strncmp(argv[i], "out=", 4) == 0 && argv[i][4]) {
      free(out_path);
      out_path = strdup(argv[i] + 4);
    } else {
      snprintf(msg, sizeof msg, "sattn-insn-count: unknown argument '%s' (expected out=FILE)\n", argv[i]);
      fputs(msg, stderr);
      return -1;
    }
  }
  if (!out_path) {
    fputs("sattn-insn-count: missing argument out=FILE\n", stderr);
    return -1;
  }
  qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
  qemu_plugin_register_atexit_cb(id, on_exit_write, NULL);
  return 0;
}
