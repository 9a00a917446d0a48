/* Tiling decisions shared by the RVV kernels and the runner's exact element counts (which
 * replay them outside the measured region): how many query rows share one pass over a key
 * chunk, which LMUL the scores and the P.V accumulators use. */
#ifndef SATTN_TILING_H
#define SATTN_TILING_H
#include <stdint.h>

#include "attn.h"

#define SATTN_DEFAULT_TILE_ROWS 4
/* lmul = 0 asks for the largest score LMUL each call's row count allows. */
#define SATTN_DEFAULT_LMUL 8

/* Largest score LMUL that keeps R score groups, the K column and its conversion temporaries in
 * the 32 vector registers: LMUL 8 up to 2 rows (2 x 8 accumulators + the column; the integer
 * paths' e8/e16 column is a half or a quarter group), 4 at 4 rows, 2 at 8. */
static inline int sattn_max_lmul(int precision, int rows) {
  (void)precision;
  if (rows <= 2) return 8;
  if (rows <= 4) return 4;
  return 2;
}

/* The score LMUL of a call of `rows` rows: the requested one, lowered to the register budget.
 * More keys per chunk means fewer passes over head_dim, so larger is better for the
 * instruction count as long as the registers hold. */
static inline int sattn_call_lmul(int precision, int rows, int requested) {
  const int max = sattn_max_lmul(precision, rows);
  return requested < max ? requested : max;
}

/* LMUL of the head_dim accumulators in P.V: R accumulators plus one V row in registers. */
static inline int sattn_pv_lmul(int rows) { return rows <= 2 ? 8 : rows <= 4 ? 4 : 2; }

/* Per-tensor tiles of 4 rows whose head_dim needs more than one LMUL-4 slice (head_dim >
 * VLMAX(e32, m4) = vlenb) run P.V as two passes of two rows at LMUL 8 (the pair tiles,
 * attn-rvv-tile.inc.h): fewer instructions, p loaded once per LMUL-8 slice. */
static inline int sattn_pv_pairs(int rows, int64_t head_dim, int64_t vlenb, int scheme) {
  return rows == 4 && !scheme && head_dim > vlenb;
}
/* The P.V LMUL a full tile of `rows` rows really uses. */
static inline int sattn_pv_lmul_of(int rows, int64_t head_dim, int64_t vlenb, int scheme) {
  return sattn_pv_pairs(rows, head_dim, vlenb, scheme) ? 8 : sattn_pv_lmul(rows);
}

/* Row kernels, fp32 and bf16: a row's last key chunk of `keys` keys (keys <= VLMAX at the call's
 * LMUL, so the chunk is the whole rest) with keys * 8 <= head_dim gets its scores as dot products
 * along head_dim (each K row loaded unit-stride once for the tile's rows, multiplied by each Q
 * row and reduced) instead of one K column gather per head_dim element: such a chunk would
 * otherwise cost as many score steps as a full one (129 keys at 64 a chunk: 64 + 64 + 1). The
 * integer precisions keep the gathers (an integer form is easy, int16 products and a widening
 * sum, but the selector's rvv cost model charges a short last chunk as a whole visit: see
 * docs/decisions.md, issue 25 round 2). */
static inline int sattn_dot_chunk(int precision, int64_t keys, int64_t head_dim, int64_t vlmax) {
  return (precision == SATTN_FP32 || precision == SATTN_BF16) && keys > 0 && keys <= vlmax && keys * 8 <= head_dim;
}

/* A group of n rows (n <= R) is run as calls of the largest power of two <= the rest. */
static inline int sattn_call_rows(int64_t rest, int max_rows) {
  int t = 1;
  while (t * 2 <= max_rows && t * 2 <= rest) t *= 2;
  return t;
}

/* Row kernels: consecutive rows (up to R) with identical key lists form one group and share the
 * K gathers of every chunk. Returns the group size starting at row i (ptr is the layout's CSR). */
static inline int64_t sattn_row_group_scalar(const int64_t *ptr, const int32_t *idx, int64_t i, int64_t rows, int max_rows) {
  const int64_t n = ptr[i + 1] - ptr[i];
  int64_t g = 1;
  while (g < max_rows && i + g < rows && ptr[i + g + 1] - ptr[i + g] == n) {
    const int32_t *a = idx + ptr[i], *b = idx + ptr[i + g];
    int64_t c = 0;
    while (c < n && a[c] == b[c]) ++c;
    if (c != n) break;
    ++g;
  }
  return g;
}

/* Block kernels, per-tensor tiles: the K panel. A block row with at least two calls of
 * tile_rows rows first copies the K columns of its kept blocks (strided loads, once) into a
 * panel in scratch, chunk by chunk (cw keys, the full calls' VLMAX(e32, LMUL)): column d of a
 * chunk at d * kcol, its keys contiguous. Those calls then load each column unit-stride, so the
 * strided elements are paid once per block row instead of once per call (the core model charges
 * strided loads per element, unit-stride ones per beat). Calls of fewer rows (another LMUL, so
 * other chunks) and the scheme tiles keep the strided loads. */
static inline int sattn_kpanel_used(const sattn_job *job, int64_t block_row_rows) {
  return job->kind == SATTN_BLOCK && !job->scheme && block_row_rows / job->tile_rows >= 2;
}
/* Keys per panel chunk; vlmax_m1 = VLMAX(e32, m1) = VLEN / 32. */
static inline int64_t sattn_kpanel_cw(const sattn_job *job, int64_t vlmax_m1) {
  return vlmax_m1 * sattn_call_lmul(job->precision, job->tile_rows, job->lmul);
}
/* Bytes of one stored K element (i4: a packed byte) and K columns per key. */
static inline int64_t sattn_kpanel_eb(int precision) { return precision == SATTN_FP32 ? 4 : precision == SATTN_BF16 ? 2 : 1; }
static inline int64_t sattn_kpanel_cols(int precision, int64_t head_dim) { return precision == SATTN_I4 ? (head_dim + 1) / 2 : head_dim; }
/* Chunks per kept block. */
static inline int64_t sattn_kpanel_spb(const sattn_job *job, int64_t cw) {
  const int64_t keys = job->block_size < job->kv_len ? job->block_size : job->kv_len;
  return (keys + cw - 1) / cw;
}
/* Keys of kept block column jb the panel of block row [i0, i1) holds: [jb * bs, end). */
static inline int64_t sattn_kpanel_end(const sattn_job *job, int64_t jb, int64_t i1) {
  int64_t end = (jb + 1) * job->block_size < job->kv_len ? (jb + 1) * job->block_size : job->kv_len;
  if (job->causal && end > i1 + job->causal_offset) end = i1 + job->causal_offset;
  return end;
}
/* Scratch bytes of the panel: the most kept blocks of any block row. */
static inline size_t sattn_kpanel_bytes(const sattn_job *job, int64_t vlmax_m1) {
  if (job->kind != SATTN_BLOCK || job->scheme || job->tile_rows < 1) return 0;
  const int64_t rows = (job->seq_len + job->block_size - 1) / job->block_size;
  int64_t most = 0;
  for (int64_t l = 0; l < job->layouts; ++l)
    for (int64_t br = 0; br < rows; ++br) {
      const int64_t n = job->ptr[l * (rows + 1) + br + 1] - job->ptr[l * (rows + 1) + br];
      if (n > most) most = n;
    }
  const int64_t cw = sattn_kpanel_cw(job, vlmax_m1);
  return (size_t)(most * sattn_kpanel_spb(job, cw) * sattn_kpanel_cols(job->precision, job->head_dim) * cw *
                  sattn_kpanel_eb(job->precision)) + 64;
}

#endif
