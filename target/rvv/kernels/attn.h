/* The contract between the riscv64 runner and the attention kernels (libsattn/rvv/README.md).
 * Plain C11: the same header is compiled by clang-16 (rvv, autovec) and riscv64 GCC 12 (scalar). */
#ifndef SATTN_RVV_ATTN_H
#define SATTN_RVV_ATTN_H
#include <stddef.h>
#include <stdint.h>

/* Macros, not enums: the kernel templates select code with #if SATTN_PREC == ... */
#define SATTN_FP32 0
#define SATTN_BF16 1
#define SATTN_I8 2
#define SATTN_I4 3
#define SATTN_ROW 0
#define SATTN_BLOCK 1

/* One kernel call: every batch and head of one op. Q, K, V are C-ordered [batch, heads or
 * kv_heads, len, head_dim] in the storage type of the precision: float, uint16_t bf16 bits,
 * int8_t, or packed int4 (uint8_t, two values per byte along head_dim, low nibble first, rows of
 * ceil(head_dim / 2) bytes). The layout is CSR (kind row: ptr has rows + 1 = seq_len + 1 entries
 * per layout) or BSR (kind block: ceil(seq_len / block_size) + 1 entries per layout); ptr values
 * are global offsets into idx (sattn-artifacts(7)). */
typedef struct sattn_job {
  int kind, precision;
  int64_t batch, heads, kv_heads, seq_len, kv_len, head_dim;
  int causal;
  int64_t causal_offset; /* query i is aligned with key i + causal_offset */
  int64_t block_size;    /* BSR block edge (kind block) */
  int64_t layouts;       /* 1 (shared) or batch * kv_heads */
  float softmax_scale, scale_q, scale_k, scale_v;
  int tile_rows, lmul;   /* resolved by sattn_resolve_tuning before the call */
  const void *q, *k, *v;
  const int64_t *ptr;
  const int32_t *idx;
  float *o;              /* [batch, heads, seq_len, head_dim] */
  void *scratch;         /* sattn_scratch_bytes(job) bytes, 64-byte aligned */
  /* Quantization scheme tables (i8, i4; sattn-quant(7)); scheme = 0: the per-tensor scales
   * above. scheme = 1: the host quantized Q, K and V with a scheme and passes, expanded per row:
   * q_scale [batch, heads, seq_len], k_scale [batch, kv_heads, kv_len], v_scale_ch [batch,
   * kv_heads, head_dim]; with Q smoothing also q_mean [batch, heads, ceil(seq_len / mean_block),
   * head_dim] and the smoothed K in fp32, k_smooth [batch, kv_heads, kv_len, head_dim], whose
   * product (the mean-Q . K bias) is added to every score in fp32. P is quantized to [0, p_max]
   * (0: P stays fp32) and V is stored with v_bits bits (16: int16; 8: int8; 4: packed int4). */
  int scheme, p_max, v_bits;
  int64_t mean_block;
  const float *q_scale, *k_scale, *v_scale_ch, *q_mean, *k_smooth;
} sattn_job;

typedef void (*sattn_kernel_fn)(const sattn_job *);

/* What one runner binary provides (kernels/table-*.c). */
typedef struct sattn_kernel_set {
  const char *name;                  /* "rvv", "scalar", "autovec" */
  sattn_kernel_fn row[4], block[4];  /* by precision */
  int vector;                        /* 1: tile_rows/lmul apply (RVV intrinsics) */
} sattn_kernel_set;
extern const sattn_kernel_set sattn_kernels;

/* Elements of one stored row of head_dim values (i4: packed bytes). */
static inline int64_t sattn_row_bytes(int precision, int64_t head_dim) {
  switch (precision) {
    case SATTN_FP32: return head_dim * 4;
    case SATTN_BF16: return head_dim * 2;
    case SATTN_I8: return head_dim;
    default: return (head_dim + 1) / 2;
  }
}

/* Bytes of one stored V row: as Q and K, or (scheme tables) at v_bits. */
static inline int64_t sattn_v_row_bytes(const sattn_job *job) {
  if (!job->scheme) return sattn_row_bytes(job->precision, job->head_dim);
  return job->v_bits == 16 ? 2 * job->head_dim : job->v_bits == 8 ? job->head_dim : (job->head_dim + 1) / 2;
}

/* Layout of one (batch, kv head). */
static inline int64_t sattn_layout_index(const sattn_job *job, int64_t b, int64_t kvh) {
  return job->layouts == 1 ? 0 : b * job->kv_heads + kvh;
}
static inline int64_t sattn_index_rows(const sattn_job *job) {
  return job->kind == SATTN_ROW ? job->seq_len : (job->seq_len + job->block_size - 1) / job->block_size;
}

/* Largest number of keys one kernel step handles (the scratch buffers are sized for it):
 * vector kernels use at most VLMAX(e32, m8) = VLEN/4 <= 256 keys for VLEN <= 1024. */
#define SATTN_MAX_CHUNK 256
#define SATTN_MAX_TILE 8
size_t sattn_scratch_bytes(const sattn_job *job);
/* The part every vector kernel uses (the rest: the block kernels' K panel, tiling.h). */
size_t sattn_scratch_base_bytes(const sattn_job *job);

#endif
