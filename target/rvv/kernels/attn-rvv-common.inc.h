/* Shared part of the RVV attention kernels: the per-tile state, the tile functions for every
 * (rows, LMUL) the register budget allows (attn-rvv-tile.inc.h), and the row begin / end steps.
 * Included by attn-{row,block}-rvv.inc.h with SATTN_PREC and SATTN_GATHER set. */
#include <math.h>
#include <riscv_vector.h>
#include <stdint.h>

#include "attn.h"
#include "exp-scalar-rr2-p6.h"
#include "i4-unpack-rvv.h"
#include "tiling.h"
#include "vexp-rvv-rr2-p6.h"

typedef struct sattn_tile_ctx {
  const uint8_t *kbase, *vbase; /* K and V of this (batch, kv head) */
  int64_t row_bytes, hd;
  float scale;                  /* raw score -> softmax argument */
  const void *q[SATTN_MAX_TILE];  /* Q rows in compute form: float (fp32, bf16) or int8 (i8, i4) */
  float *acc[SATTN_MAX_TILE];     /* running P.V, head_dim floats */
  float m[SATTN_MAX_TILE], l[SATTN_MAX_TILE], corr[SATTN_MAX_TILE];
  int64_t lim[SATTN_MAX_TILE];    /* keys >= lim are masked (causal); INT64_MAX when none */
  float *p;                       /* SATTN_MAX_TILE x SATTN_MAX_CHUNK probabilities */
  uint32_t *off;                  /* gather byte offsets of the chunk's keys (row kernels) */
  float *qbuf[SATTN_MAX_TILE];    /* room for converted Q rows */
  /* Quantization scheme tables (job->scheme, i8/i4 only; attn.h): the scheme tiles (sattn_qtiles)
   * read these; the per-tensor tiles never touch them. */
  float p_max;                    /* P rounded to [0, p_max]; 0: P stays fp32 */
  int v_bits;                     /* V storage: 16, 8 or 4 bits */
  int64_t v_row_bytes;
  const float *kscale;            /* this (batch, kv head)'s key scales */
  const float *kf;                /* its smoothed K in fp32 (Q smoothing), or NULL */
  const float *vscale;            /* its per-channel V scales */
  float qs[SATTN_MAX_TILE];       /* each tile row's Q scale */
  const float *mean[SATTN_MAX_TILE]; /* each tile row's Q mean, or NULL */
  const float *ksp;               /* the chunk's key scales (block: into kscale; row: ks) */
  const float *biasp[SATTN_MAX_TILE]; /* the chunk's mean-Q . K bias per row, or NULL */
  float *ks, *bias;               /* SATTN_MAX_CHUNK and SATTN_MAX_TILE x SATTN_MAX_CHUNK floats */
  uint32_t *voff;                 /* V byte offsets of the chunk's keys (row kernels) */
  const uint8_t **vrow;           /* V row addresses of the chunk's keys, one P.V slice (row kernels) */
  float *vpanel;                  /* the pair tiles' converted V rows, one P.V slice: SATTN_MAX_CHUNK x head_dim floats */
  /* Block kernels, per-tensor tiles: the block row's K panel (tiling.h, attn-block-rvv.inc.h). kpanel: the
   * call's chunk in it (its K column d at kpanel + d * kcol), or NULL: strided K columns. Set by
   * the block kernel's per-tensor body only (the scheme tiles never read them). */
  const uint8_t *kpanel;
  int64_t kcol;
  uint8_t *kpanel_buf;
} sattn_tile_ctx;

/* (ctx, first key (block kernels), key list (row kernels), vl, dot: scores by dot products,
 * sattn_dot_chunk; row kernels, fp32/bf16 only) */
typedef void (*sattn_tile_fn)(sattn_tile_ctx *, int64_t, const int32_t *, size_t, int);

#define SATTN_INT_PREC (SATTN_PREC == SATTN_I8 || SATTN_PREC == SATTN_I4)

/* The per-tensor tiles: R = 1, 2, 4, 8 rows, score LMUL up to sattn_max_lmul(precision, R). */
#define SATTN_SCHEME 0
#define SATTN_TILE_PREFIX sattn_tile_r
#include "attn-rvv-tile-set.inc.h"

/* [log2 rows][log2 lmul]; NULL where the register budget does not allow it. */
static const sattn_tile_fn sattn_tiles[4][4] = {
    {sattn_tile_r1_l1, sattn_tile_r1_l2, sattn_tile_r1_l4, sattn_tile_r1_l8},
    {sattn_tile_r2_l1, sattn_tile_r2_l2, sattn_tile_r2_l4, sattn_tile_r2_l8},
    {sattn_tile_r4_l1, sattn_tile_r4_l2, sattn_tile_r4_l4, 0},
    {sattn_tile_r8_l1, sattn_tile_r8_l2, 0, 0},
};
/* The same with the four-row pair tiles (P.V in two passes of two rows at LMUL 8): what the
 * kernels use when head_dim needs more than one LMUL-4 slice (sattn_tiles_for). */
static const sattn_tile_fn sattn_tiles_pv8[4][4] = {
    {sattn_tile_r1_l1, sattn_tile_r1_l2, sattn_tile_r1_l4, sattn_tile_r1_l8},
    {sattn_tile_r2_l1, sattn_tile_r2_l2, sattn_tile_r2_l4, sattn_tile_r2_l8},
    {sattn_tile_r4_l1_p, sattn_tile_r4_l2_p, sattn_tile_r4_l4_p, 0},
    {sattn_tile_r8_l1, sattn_tile_r8_l2, 0, 0},
};
/* The per-tensor tile table of a job, chosen once per kernel call: four rows at P.V LMUL 4 take
 * ceil(head_dim / VLMAX(e32, m4)) slices per key, each loading the four rows' p again; with more
 * than one such slice the pair tiles issue fewer instructions (attn-rvv-tile.inc.h, 3. P.V). */
typedef sattn_tile_fn sattn_tile_table[4][4];
static inline const sattn_tile_table *sattn_tiles_for(int64_t head_dim) {
  return sattn_pv_pairs(4, head_dim, (int64_t)__riscv_vsetvlmax_e32m4(), 0) ? &sattn_tiles_pv8 : &sattn_tiles;
}

#undef SATTN_SCHEME
#undef SATTN_TILE_PREFIX

#if SATTN_INT_PREC
/* The scheme tiles' per-chunk preparation: the chunk's key scales (row kernels: gathered into
 * ks), the V byte offsets of its keys (row kernels), and for each tile row with a Q mean the
 * mean-Q . K bias of every key in fp32 (one column pass over the smoothed K, shared by the rows
 * of one mean block). vl <= VLMAX(e32, m8), so one m8 strip covers the chunk. */
static void sattn_scheme_prep(sattn_tile_ctx *c, int rows, int64_t j0, const int32_t *keys, size_t vl) {
  const int64_t hd = c->hd;
#if SATTN_GATHER
  (void)j0;
  const vuint32m8_t kv = __riscv_vle32_v_u32m8((const uint32_t *)keys, vl);
  __riscv_vse32_v_f32m8(c->ks, __riscv_vluxei32_v_f32m8(c->kscale, __riscv_vsll_vx_u32m8(kv, 2, vl), vl), vl);
  __riscv_vse32_v_u32m8(c->voff, __riscv_vmul_vx_u32m8(kv, (uint32_t)c->v_row_bytes, vl), vl);
  c->ksp = c->ks;
#else
  (void)keys;
  c->ksp = c->kscale + j0;
#endif
  for (int r = 0; r < rows; ++r) {
    c->biasp[r] = 0;
    if (!c->mean[r]) continue;
    if (r > 0 && c->mean[r] == c->mean[r - 1]) {
      c->biasp[r] = c->biasp[r - 1];
      continue;
    }
    const float *mean = c->mean[r];
    vfloat32m8_t acc = __riscv_vfmv_v_f_f32m8(0.0f, vl);
#if SATTN_GATHER
    const vuint32m8_t foff = __riscv_vmul_vx_u32m8(kv, (uint32_t)(hd * 4), vl);
    for (int64_t d = 0; d < hd; ++d) acc = __riscv_vfmacc_vf_f32m8(acc, mean[d], __riscv_vluxei32_v_f32m8(c->kf + d, foff, vl), vl);
#else
    const float *kf = c->kf + j0 * hd;
    for (int64_t d = 0; d < hd; ++d) acc = __riscv_vfmacc_vf_f32m8(acc, mean[d], __riscv_vlse32_v_f32m8(kf + d, hd * 4, vl), vl);
#endif
    float *b = c->bias + r * SATTN_MAX_CHUNK;
    __riscv_vse32_v_f32m8(b, acc, vl);
    c->biasp[r] = b;
  }
}

#define SATTN_SCHEME 1
#define SATTN_TILE_PREFIX sattn_qtile_r
#include "attn-rvv-tile-set.inc.h"
#undef SATTN_SCHEME
#undef SATTN_TILE_PREFIX

/* The scheme tiles, [log2 rows][log2 lmul] as sattn_tiles. */
static const sattn_tile_fn sattn_qtiles[4][4] = {
    {sattn_qtile_r1_l1, sattn_qtile_r1_l2, sattn_qtile_r1_l4, sattn_qtile_r1_l8},
    {sattn_qtile_r2_l1, sattn_qtile_r2_l2, sattn_qtile_r2_l4, sattn_qtile_r2_l8},
    {sattn_qtile_r4_l1, sattn_qtile_r4_l2, sattn_qtile_r4_l4, 0},
    {sattn_qtile_r8_l1, sattn_qtile_r8_l2, 0, 0},
};

/* Scheme tables of one (batch, kv head) and of tile row r (query i of head h). */
static void sattn_scheme_head(sattn_tile_ctx *c, const sattn_job *job, int64_t b, int64_t kvh) {
  const int64_t hd = job->head_dim;
  c->kscale = job->k_scale + (b * job->kv_heads + kvh) * job->kv_len;
  c->kf = job->k_smooth ? job->k_smooth + (b * job->kv_heads + kvh) * job->kv_len * hd : 0;
  c->vscale = job->v_scale_ch + (b * job->kv_heads + kvh) * hd;
  c->vbase = (const uint8_t *)job->v + (b * job->kv_heads + kvh) * job->kv_len * c->v_row_bytes;
}
static void sattn_scheme_row(sattn_tile_ctx *c, int r, const sattn_job *job, int64_t b, int64_t h, int64_t i) {
  c->qs[r] = job->q_scale[(b * job->heads + h) * job->seq_len + i];
  c->mean[r] = 0;
  if (job->q_mean) {
    const int64_t blocks = (job->seq_len + job->mean_block - 1) / job->mean_block;
    c->mean[r] = job->q_mean + ((b * job->heads + h) * blocks + i / job->mean_block) * job->head_dim;
  }
}
/* out = acc * v_scale[d] / l, or 0 for a row that saw no key. */
static void sattn_row_end_scheme(const sattn_tile_ctx *c, int r, float *out) {
  const float f = c->l[r] > 0.0f ? 1.0f / c->l[r] : 0.0f;
  const float *acc = c->acc[r];
  for (size_t d = 0, vl; d < (size_t)c->hd; d += vl) {
    vl = __riscv_vsetvl_e32m8((size_t)c->hd - d);
    const vfloat32m8_t a = __riscv_vfmul_vv_f32m8(__riscv_vle32_v_f32m8(acc + d, vl), __riscv_vle32_v_f32m8(c->vscale + d, vl), vl);
    __riscv_vse32_v_f32m8(out + d, __riscv_vfmul_vf_f32m8(a, f, vl), vl);
  }
}
#endif

static inline int sattn_log2(int x) { return x >= 8 ? 3 : x >= 4 ? 2 : x >= 2 ? 1 : 0; }

/* Keys per chunk: vsetvl for e32 at the score LMUL. */
static inline size_t sattn_chunk_vl(int lmul, size_t n) {
  switch (lmul) {
    case 1: return __riscv_vsetvl_e32m1(n);
    case 2: return __riscv_vsetvl_e32m2(n);
    case 4: return __riscv_vsetvl_e32m4(n);
    default: return __riscv_vsetvl_e32m8(n);
  }
}

static void sattn_ctx_init(sattn_tile_ctx *c, const sattn_job *job) {
  const int64_t hd = job->head_dim, stride = (hd + 15) & ~(int64_t)15;
  float *base = (float *)job->scratch;
  for (int r = 0; r < SATTN_MAX_TILE; ++r) {
    c->acc[r] = base + r * stride;
    c->qbuf[r] = base + (SATTN_MAX_TILE + r) * stride;
  }
  c->p = base + 2 * SATTN_MAX_TILE * stride;
  c->off = (uint32_t *)(c->p + SATTN_MAX_TILE * SATTN_MAX_CHUNK);
  c->hd = hd;
  c->row_bytes = sattn_row_bytes(SATTN_PREC, hd);
  c->ks = (float *)(c->off + SATTN_MAX_CHUNK);
  c->bias = c->ks + SATTN_MAX_CHUNK;
  c->voff = (uint32_t *)(c->bias + SATTN_MAX_TILE * SATTN_MAX_CHUNK);
  c->vrow = (const uint8_t **)(c->voff + SATTN_MAX_CHUNK); /* 8-byte aligned: the buffers before are multiples of 1 KiB */
  c->vpanel = (float *)(c->vrow + SATTN_MAX_CHUNK);
  c->p_max = (float)job->p_max;
  c->v_bits = job->v_bits;
  c->v_row_bytes = sattn_v_row_bytes(job);
#if SATTN_INT_PREC
  /* scheme tables: the Q and K scales are applied to the scores (sattn_qtiles) */
  c->scale = job->scheme ? job->softmax_scale : job->scale_q * job->scale_k * job->softmax_scale;
#else
  c->scale = job->softmax_scale;
#endif
}

/* Row r of the tile: Q row into compute form, fresh softmax state. */
static void sattn_row_begin(sattn_tile_ctx *c, int r, const uint8_t *qrow, int64_t lim) {
  const int64_t hd = c->hd;
#if SATTN_PREC == SATTN_FP32 || SATTN_PREC == SATTN_I8
  c->q[r] = qrow;
#elif SATTN_PREC == SATTN_BF16
  float *qf = c->qbuf[r];
  for (size_t d = 0, vl; d < (size_t)hd; d += vl) {
    vl = __riscv_vsetvl_e32m8((size_t)hd - d);
    const vuint32m8_t w = __riscv_vsll_vx_u32m8(__riscv_vzext_vf2_u32m8(__riscv_vle16_v_u16m4((const uint16_t *)qrow + d, vl), vl), 16, vl);
    __riscv_vse32_v_f32m8(qf + d, __riscv_vreinterpret_v_u32m8_f32m8(w), vl);
  }
  c->q[r] = qf;
#else /* i4: unpack to int8 */
  int8_t *qi = (int8_t *)c->qbuf[r];
  for (size_t d = 0, vl; d < (size_t)hd; d += vl) {
    vl = __riscv_vsetvl_e32m8((size_t)hd - d); /* even except at the end, so d / 2 is exact */
    __riscv_vse8_v_i8m2(qi + d, sattn_i4_row_i8_m2(qrow + d / 2, vl), vl);
  }
  c->q[r] = qi;
#endif
  float *acc = c->acc[r];
  for (size_t d = 0, vl; d < (size_t)hd; d += vl) {
    vl = __riscv_vsetvl_e32m8((size_t)hd - d);
    __riscv_vse32_v_f32m8(acc + d, __riscv_vfmv_v_f_f32m8(0.0f, vl), vl);
  }
  c->m[r] = -INFINITY;
  c->l[r] = 0.0f;
  c->lim[r] = lim;
}

/* out = acc * v_scale / l, or 0 for a row that saw no key. */
static void sattn_row_end(const sattn_tile_ctx *c, int r, float *out, float v_scale) {
  const float f = c->l[r] > 0.0f ? v_scale / c->l[r] : 0.0f;
  const float *acc = c->acc[r];
  for (size_t d = 0, vl; d < (size_t)c->hd; d += vl) {
    vl = __riscv_vsetvl_e32m8((size_t)c->hd - d);
    __riscv_vse32_v_f32m8(out + d, __riscv_vfmul_vf_f32m8(__riscv_vle32_v_f32m8(acc + d, vl), f, vl), vl);
  }
}

static inline float sattn_v_scale_of(const sattn_job *job) {
#if SATTN_INT_PREC
  return job->scale_v;
#else
  (void)job;
  return 1.0f;
#endif
}
