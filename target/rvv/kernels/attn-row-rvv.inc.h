/* Row (CSR) attention with RVV intrinsics: each query row's key list is processed in chunks of
 * VLMAX(e32, m{lmul}) keys whose K columns are gathered with vluxei32 (byte offsets = key *
 * row bytes, computed once per chunk and reused to address the V rows). Consecutive rows with
 * identical key lists (LSH buckets, landmarks, global rows), up to tile_rows of them, share
 * every gather. Included by PREC-attn-row-rvv.c with SATTN_PREC and SATTN_KERNEL_NAME set. */
#define SATTN_GATHER 1
#include "attn-rvv-common.inc.h"

/* Rows i, i+1, ... (up to max_rows) whose key lists equal row i's; the lists are compared with
 * vector loads, so the check costs a few instructions per VLMAX indices. */
static int64_t sattn_row_group(const int64_t *ptr, const int32_t *idx, int64_t i, int64_t rows, int max_rows) {
  const int64_t n = ptr[i + 1] - ptr[i];
  int64_t g = 1;
  while (g < max_rows && i + g < rows && ptr[i + g + 1] - ptr[i + g] == n) {
    const int32_t *a = idx + ptr[i], *b = idx + ptr[i + g];
    /* Most lists that differ differ at an end (sliding windows, top-k): two scalar compares
     * before the vector one. */
    if (n > 0 && (a[0] != b[0] || a[n - 1] != b[n - 1])) break;
    size_t vl;
    int same = 1;
    for (int64_t c = 0; c < n && same; c += (int64_t)vl) {
      vl = __riscv_vsetvl_e32m8((size_t)(n - c));
      const vbool4_t ne = __riscv_vmsne_vv_i32m8_b4(__riscv_vle32_v_i32m8(a + c, vl), __riscv_vle32_v_i32m8(b + c, vl), vl);
      same = __riscv_vfirst_m_b4(ne, vl) < 0;
    }
    if (!same) break;
    ++g;
  }
  return g;
}

/* The kernel body; scheme (compile-time constant at each call) selects the scheme tiles and the
 * scale tables (attn.h), so the per-tensor code has no test of it. */
static inline __attribute__((always_inline)) void SATTN_CAT(SATTN_KERNEL_NAME, _body)(const sattn_job *job, const int scheme) {
  sattn_tile_ctx c;
  (void)scheme;
  sattn_ctx_init(&c, job);
  const sattn_tile_table *const tiles = sattn_tiles_for(job->head_dim);
  const int R = job->tile_rows, L = job->lmul;
  const int64_t hd = job->head_dim, rows = job->seq_len, group = job->heads / job->kv_heads;
  const float v_scale = sattn_v_scale_of(job);
  for (int64_t b = 0; b < job->batch; ++b)
    for (int64_t h = 0; h < job->heads; ++h) {
      const int64_t kvh = h / group;
      const int64_t *ptr = job->ptr + sattn_layout_index(job, b, kvh) * (rows + 1);
      c.kbase = (const uint8_t *)job->k + (b * job->kv_heads + kvh) * job->kv_len * c.row_bytes;
      c.vbase = (const uint8_t *)job->v + (b * job->kv_heads + kvh) * job->kv_len * c.row_bytes;
#if SATTN_INT_PREC
      if (scheme) sattn_scheme_head(&c, job, b, kvh);
#endif
      const uint8_t *qbase = (const uint8_t *)job->q + (b * job->heads + h) * rows * c.row_bytes;
      float *obase = job->o + (b * job->heads + h) * rows * hd;
      for (int64_t i = 0; i < rows;) {
        const int64_t g = R > 1 ? sattn_row_group(ptr, job->idx, i, rows, R) : 1;
        const int64_t n = ptr[i + 1] - ptr[i];
        const int32_t *keys = job->idx + ptr[i];
        for (int64_t done = 0; done < g;) {
          const int t = sattn_call_rows(g - done, R);
          const int lmul = sattn_call_lmul(SATTN_PREC, t, L);
#if SATTN_INT_PREC
          const sattn_tile_fn fn = (scheme ? sattn_qtiles : *tiles)[sattn_log2(t)][sattn_log2(lmul)];
#else
          const sattn_tile_fn fn = (*tiles)[sattn_log2(t)][sattn_log2(lmul)];
#endif
          for (int r = 0; r < t; ++r) {
            sattn_row_begin(&c, r, qbase + (i + done + r) * c.row_bytes, INT64_MAX);
#if SATTN_INT_PREC
            if (scheme) sattn_scheme_row(&c, r, job, b, h, i + done + r);
#endif
          }
          size_t vl;
          for (int64_t c0 = 0; c0 < n; c0 += (int64_t)vl) {
            vl = sattn_chunk_vl(lmul, (size_t)(n - c0));
            /* vl == the rest: the last chunk (vl <= VLMAX) */
            fn(&c, 0, keys + c0, vl, sattn_dot_chunk(SATTN_PREC, n - c0, hd, (int64_t)vl));
          }
#if SATTN_INT_PREC
          if (scheme)
            for (int r = 0; r < t; ++r) sattn_row_end_scheme(&c, r, obase + (i + done + r) * hd);
          else
#endif
            for (int r = 0; r < t; ++r) sattn_row_end(&c, r, obase + (i + done + r) * hd, v_scale);
          done += t;
        }
        i += g;
      }
    }
}

void SATTN_KERNEL_NAME(const sattn_job *job) {
  if (job->scheme) SATTN_CAT(SATTN_KERNEL_NAME, _body)(job, 1);
  else SATTN_CAT(SATTN_KERNEL_NAME, _body)(job, 0);
}
