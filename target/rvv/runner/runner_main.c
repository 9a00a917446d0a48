/* sattn-rvv-runner-{rvv,scalar,autovec}: runs one attention kernel on the inputs of a work
 * directory (libsattn/rvv/README.md) and writes o.npy and runner.json. The kernel call, and
 * nothing else, is bracketed by the region markers the counting plugin looks for. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/attn.h"
#include "../kernels/tiling.h"
#include "runner_io.h"

/* Custom HINTs (writes to x0): no-ops that the QEMU plugin sees as region begin / end. */
#define SATTN_REGION_BEGIN() __asm__ volatile("slti x0, x0, 0x5a1" ::: "memory")
#define SATTN_REGION_END() __asm__ volatile("slti x0, x0, 0x5a0" ::: "memory")

static const char *const kPrecisionNames[] = {"fp32", "bf16", "i8", "i4"};
static const char *const kDescr[] = {"<f4", "<u2", "|i1", "|u1"};

static void check_shape(const char *path, const npy_array *a, const int64_t *want, int n) {
  for (int i = 0; i < n; ++i)
    if (a->shape[i] != want[i]) {
      char got[128] = "", exp[128] = "";
      for (int j = 0; j < n; ++j) {
        snprintf(got + strlen(got), sizeof got - strlen(got), j ? ", %lld" : "%lld", (long long)a->shape[j]);
        snprintf(exp + strlen(exp), sizeof exp - strlen(exp), j ? ", %lld" : "%lld", (long long)want[j]);
      }
      runner_fail(path, "shape [%s], expected [%s] (from job.txt)", got, exp);
    }
}

/* Pointers non-decreasing and contiguous across layouts, indices in range and strictly ascending
 * within each index row: the kernels rely on all of it. */
static void check_layout(const char *ptr_path, const char *idx_path, const sattn_job *job, int64_t nnz) {
  const int64_t rows = sattn_index_rows(job);
  const int64_t cols = job->kind == SATTN_ROW ? job->kv_len : (job->kv_len + job->block_size - 1) / job->block_size;
  const int64_t *ptr = job->ptr;
  if (ptr[0] != 0) runner_fail(ptr_path, "ptr[0, 0] = %lld, expected 0", (long long)ptr[0]);
  for (int64_t L = 0; L < job->layouts; ++L) {
    const int64_t *p = ptr + L * (rows + 1);
    if (L > 0 && p[0] != p[-1]) runner_fail(ptr_path, "layout %lld does not start where layout %lld ends", (long long)L, (long long)(L - 1));
    for (int64_t r = 0; r < rows; ++r) {
      if (p[r + 1] < p[r]) runner_fail(ptr_path, "ptr[%lld, %lld] decreases", (long long)L, (long long)(r + 1));
      if (p[r + 1] > nnz) runner_fail(ptr_path, "ptr[%lld, %lld] = %lld is past the %lld indices", (long long)L, (long long)(r + 1), (long long)p[r + 1], (long long)nnz);
      for (int64_t e = p[r]; e < p[r + 1]; ++e) {
        const int32_t c = job->idx[e];
        if (c < 0 || c >= cols) runner_fail(idx_path, "index %lld is %d, outside [0, %lld)", (long long)e, c, (long long)cols);
        if (e > p[r] && c <= job->idx[e - 1]) runner_fail(idx_path, "row %lld of layout %lld is not strictly ascending at index %lld", (long long)r, (long long)L, (long long)e);
      }
    }
  }
  if (ptr[job->layouts * (rows + 1) - 1] != nnz)
    runner_fail(ptr_path, "the last pointer is %lld, but %s holds %lld indices", (long long)ptr[job->layouts * (rows + 1) - 1], idx_path, (long long)nnz);
}

typedef struct counts {
  int64_t pairs, indexed, strided, dot; /* dot: K elements of short last chunks, loaded unit-stride */
} counts;

/* Allowed pairs, and the elements the RVV kernels move with indexed (row kernels: the K column
 * gathers) and strided (block kernels: the K column loads) vector loads, replaying their loops. */
static counts count_work(const sattn_job *job, int vector, unsigned long vlenb) {
  counts c = {0, 0, 0, 0};
  const int64_t rows = sattn_index_rows(job), group = job->heads / job->kv_heads;
  const int64_t cols_per_key = job->precision == SATTN_I4 ? (job->head_dim + 1) / 2 : job->head_dim;
  const int R = job->tile_rows;
  for (int64_t b = 0; b < job->batch; ++b)
    for (int64_t h = 0; h < job->heads; ++h) {
      const int64_t *ptr = job->ptr + sattn_layout_index(job, b, h / group) * (rows + 1);
      if (job->kind == SATTN_ROW) {
        c.pairs += ptr[rows] - ptr[0];
        if (!vector) continue;
        for (int64_t i = 0; i < rows;) {
          const int64_t g = sattn_row_group_scalar(ptr, job->idx, i, rows, R);
          const int64_t n = ptr[i + 1] - ptr[i];
          for (int64_t done = 0; done < g;) {
            /* the call's chunks: VLMAX keys each (vlenb * LMUL / 4), the last one the rest; a
             * short last chunk takes its K rows unit-stride (sattn_dot_chunk), not gathered */
            const int t = sattn_call_rows(g - done, R);
            const int64_t vlmax = (int64_t)vlenb * sattn_call_lmul(job->precision, t, job->lmul) / 4;
            const int64_t last = n > 0 ? n - (n - 1) / vlmax * vlmax : 0;
            const int64_t dot = sattn_dot_chunk(job->precision, last, job->head_dim, vlmax) ? last : 0;
            c.indexed += (n - dot) * cols_per_key;
            c.dot += dot * cols_per_key;
            done += t;
          }
          i += g;
        }
        continue;
      }
      const int64_t bs = job->block_size;
      for (int64_t br = 0; br < rows; ++br) {
        const int64_t i0 = br * bs, i1 = (br + 1) * bs < job->seq_len ? (br + 1) * bs : job->seq_len;
        for (int64_t e = ptr[br]; e < ptr[br + 1]; ++e) {
          const int64_t j0 = (int64_t)job->idx[e] * bs;
          const int64_t j1 = j0 + bs < job->kv_len ? j0 + bs : job->kv_len;
          for (int64_t i = i0; i < i1; ++i) {
            const int64_t lim = job->causal ? i + job->causal_offset + 1 : j1;
            const int64_t hi = lim < j1 ? lim : j1;
            if (hi > j0) c.pairs += hi - j0;
          }
          if (!vector) continue;
          /* the K panel: the kept block's columns once (sattn_kpanel_used), the full calls read it */
          const int panel = sattn_kpanel_used(job, i1 - i0);
          if (panel) {
            const int64_t end = sattn_kpanel_end(job, job->idx[e], i1);
            if (end > j0) c.strided += (end - j0) * cols_per_key;
          }
          for (int64_t i = i0; i < i1;) {
            const int t = sattn_call_rows(i1 - i, R);
            if (panel && t == R) {
              i += t;
              continue;
            }
            const int64_t last = i + t - 1;
            const int64_t lim = job->causal ? last + job->causal_offset + 1 : j1;
            const int64_t hi = lim < j1 ? lim : j1;
            if (hi > j0) c.strided += (hi - j0) * cols_per_key;
            i += t;
          }
        }
      }
    }
  return c;
}

/* A float32 table of the given shape whose values are finite (and > 0 for scales). */
static const float *read_table(const char *dir, const char *name, const int64_t *shape, int ndim, int positive) {
  const char *path = path_join(dir, name);
  npy_array a = npy_read(path, "<f4", ndim);
  check_shape(path, &a, shape, ndim);
  const float *x = (const float *)a.data;
  for (size_t e = 0; e < a.bytes / 4; ++e)
    if (!(x[e] - x[e] == 0.0f) || (positive && !(x[e] > 0.0f)))
      runner_fail(path, "element %zu is %g, expected a %s number", e, (double)x[e], positive ? "positive finite" : "finite");
  return x;
}

/* Quantization scheme tables (attn.h): q_scale, k_scale, v_scale; q_mean and k_smooth with a
 * mean_block (Q smoothing). */
static void read_scheme_tables(const char *dir, sattn_job *job) {
  const int64_t qs[3] = {job->batch, job->heads, job->seq_len}, ks[3] = {job->batch, job->kv_heads, job->kv_len};
  const int64_t vs[3] = {job->batch, job->kv_heads, job->head_dim};
  job->q_scale = read_table(dir, "q_scale.npy", qs, 3, 1);
  job->k_scale = read_table(dir, "k_scale.npy", ks, 3, 1);
  job->v_scale_ch = read_table(dir, "v_scale.npy", vs, 3, 1);
  if (job->mean_block > 0) {
    const int64_t ms[4] = {job->batch, job->heads, (job->seq_len + job->mean_block - 1) / job->mean_block, job->head_dim};
    const int64_t kf[4] = {job->batch, job->kv_heads, job->kv_len, job->head_dim};
    job->q_mean = read_table(dir, "q_mean.npy", ms, 4, 0);
    job->k_smooth = read_table(dir, "k_smooth.npy", kf, 4, 0);
  }
}

static unsigned long read_vlenb(void) {
  unsigned long v;
  __asm__ volatile("csrr %0, 0xc22" : "=r"(v)); /* vlenb */
  return v;
}

static void *alloc_aligned(size_t bytes) {
  void *p = NULL;
  if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) runner_io_fail("runner", "out of memory");
  memset(p, 0, bytes);
  return p;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s WORKDIR\n(see libsattn/rvv/README.md for the work directory)\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1];
  sattn_job job;
  job_read(path_join(dir, "job.txt"), &job);
  const sattn_kernel_set *ks = &sattn_kernels;

  /* Tuning: the vector kernels take tile_rows (1, 2, 4, 8) and the score LMUL (1, 2, 4, 8,
   * lowered to what the register budget allows); the scalar source has neither. */
  if (job.tile_rows != 0 && (job.tile_rows & (job.tile_rows - 1)))
    runner_fail(path_join(dir, "job.txt"), "tile_rows = %d, expected 0, 1, 2, 4 or 8", job.tile_rows);
  if (ks->vector) {
    if (job.tile_rows == 0) job.tile_rows = SATTN_DEFAULT_TILE_ROWS;
    if (job.lmul == 0) job.lmul = SATTN_DEFAULT_LMUL; /* the cap; each call lowers it to its budget */
  } else {
    job.tile_rows = 1;
    job.lmul = 0;
  }

  const int p = job.precision;
  const int64_t row_len = p == SATTN_I4 ? (job.head_dim + 1) / 2 : job.head_dim;
  const char *qp = path_join(dir, "q.npy"), *kp = path_join(dir, "k.npy"), *vp = path_join(dir, "v.npy");
  /* V: the op's storage type, or (scheme tables) int16 / int8 / packed int4 by v_bits. */
  const char *v_descr = !job.scheme ? kDescr[p] : job.v_bits == 16 ? "<i2" : job.v_bits == 8 ? "|i1" : "|u1";
  const int64_t v_len = job.scheme && job.v_bits != 4 ? job.head_dim : row_len;
  npy_array q = npy_read(qp, kDescr[p], 4), k = npy_read(kp, kDescr[p], 4), v = npy_read(vp, v_descr, 4);
  const int64_t qshape[4] = {job.batch, job.heads, job.seq_len, row_len};
  const int64_t kvshape[4] = {job.batch, job.kv_heads, job.kv_len, row_len};
  const int64_t vshape[4] = {job.batch, job.kv_heads, job.kv_len, v_len};
  check_shape(qp, &q, qshape, 4);
  check_shape(kp, &k, kvshape, 4);
  check_shape(vp, &v, vshape, 4);
  if (job.scheme) read_scheme_tables(dir, &job);
  const char *ptr_path = path_join(dir, job.kind == SATTN_ROW ? "row_ptr.npy" : "block_row_ptr.npy");
  const char *idx_path = path_join(dir, job.kind == SATTN_ROW ? "col_idx.npy" : "block_col_idx.npy");
  npy_array ptr = npy_read(ptr_path, "<i8", 2), idx = npy_read(idx_path, "<i4", 1);
  const int64_t ptr_shape[2] = {job.layouts, sattn_index_rows(&job) + 1};
  check_shape(ptr_path, &ptr, ptr_shape, 2);
  job.q = q.data;
  job.k = k.data;
  job.v = v.data;
  job.ptr = (const int64_t *)ptr.data;
  job.idx = (const int32_t *)idx.data;
  check_layout(ptr_path, idx_path, &job, idx.shape[0]);
  /* The row kernels gather with 32-bit byte offsets into one head's K and V. */
  if (job.kind == SATTN_ROW && job.kv_len * (job.scheme ? 4 * job.head_dim : sattn_row_bytes(p, job.head_dim)) > (int64_t)UINT32_MAX)
    runner_fail(kp, "kv_len x row bytes = %lld exceeds the 4 GiB a gather offset reaches", (long long)(job.kv_len * sattn_row_bytes(p, job.head_dim)));

  const int64_t out_shape[4] = {job.batch, job.heads, job.seq_len, job.head_dim};
  job.o = alloc_aligned((size_t)(job.batch * job.heads * job.seq_len * job.head_dim) * sizeof(float));
  job.scratch = alloc_aligned(sattn_scratch_bytes(&job));
  const unsigned long vlenb = read_vlenb();
  const counts work = count_work(&job, ks->vector, vlenb);
  if (ks->vector && 2 * vlenb > SATTN_MAX_CHUNK) /* VLMAX(e32, m8) keys must fit the chunk buffers */
    runner_fail("runner", "VLEN %lu is above the 1024 bits the kernels are built for", vlenb * 8);
  const sattn_kernel_fn kernel = job.kind == SATTN_ROW ? ks->row[p] : ks->block[p];

  SATTN_REGION_BEGIN();
  kernel(&job);
  SATTN_REGION_END();

  npy_write_f32(path_join(dir, "o.npy"), job.o, out_shape, 4);
  /* lmul: what a full tile (tile_rows rows) used; lmul_by_rows: what calls of 1, 2, 4, 8 rows
   * use (partial tiles, and row kernels' rows whose key lists differ, run as smaller calls). */
  char by_rows[128] = "{}";
  if (ks->vector) {
    int m = snprintf(by_rows, sizeof by_rows, "{");
    for (int t = 1; t <= job.tile_rows; t *= 2)
      m += snprintf(by_rows + m, sizeof by_rows - (size_t)m, "%s\"%d\": %d", t > 1 ? ", " : "", t, sattn_call_lmul(p, t, job.lmul));
    snprintf(by_rows + m, sizeof by_rows - (size_t)m, "}");
  }
  /* indexed/strided/dot elements: the K column (and short-chunk K row) loads only; the scheme
   * tiles' key-scale and smoothed-K loads come on top (the plugin counts those). */
  /* The autovec kernels' vector loads are clang's choice (it uses strided and indexed forms for
   * the interleaved i4 loops): not known here, so null; the QEMU plugin counts them exactly. */
  const int known = ks->vector || strcmp(ks->name, "scalar") == 0;
  char indexed[32] = "null", strided[32] = "null", dot[32] = "null";
  if (known) {
    snprintf(dot, sizeof dot, "%lld", (long long)work.dot);
    snprintf(indexed, sizeof indexed, "%lld", (long long)work.indexed);
    snprintf(strided, sizeof strided, "%lld", (long long)work.strided);
  }
  char json[1024];
  const int n = snprintf(json, sizeof json,
                         "{\"kernel\": \"%s\", \"kind\": \"%s\", \"precision\": \"%s\", \"tile_rows\": %d, \"lmul\": %d, "
                         "\"lmul_by_rows\": %s, \"pv_lmul\": %d, \"vlenb\": %lu, \"pairs\": %lld, \"indexed_elements\": %s, "
                         "\"strided_elements\": %s, \"dot_elements\": %s, \"scheme\": %d}\n",
                         ks->name, job.kind == SATTN_ROW ? "row" : "block", kPrecisionNames[p], job.tile_rows,
                         ks->vector ? sattn_call_lmul(p, job.tile_rows, job.lmul) : 0, by_rows,
                         ks->vector ? sattn_pv_lmul_of(job.tile_rows, job.head_dim, (int64_t)vlenb, job.scheme) : 0, vlenb, (long long)work.pairs, indexed, strided, dot, job.scheme);
  write_text_atomic(path_join(dir, "runner.json"), json, (size_t)n);
  return 0;
}
