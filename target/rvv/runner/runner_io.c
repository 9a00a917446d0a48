/* job.txt, .npy and output files for the riscv64 runner (outside the kernel region). */
#include "runner_io.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void vreport(const char *file, const char *fmt, va_list ap) {
  fflush(stdout);
  fprintf(stderr, "sattn-rvv-runner: error: %s: ", file);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}

void runner_fail(const char *file, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport(file, fmt, ap);
  va_end(ap);
  exit(3);
}

void runner_io_fail(const char *file, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport(file, fmt, ap);
  va_end(ap);
  exit(1);
}

const char *path_join(const char *dir, const char *name) {
  static char buf[8][4096];
  static int next = 0;
  char *out = buf[next++ % 8];
  if ((size_t)snprintf(out, sizeof buf[0], "%s/%s", dir, name) >= sizeof buf[0]) runner_fail(dir, "path too long");
  return out;
}

static unsigned char *read_all(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) runner_fail(path, "cannot open: %s", strerror(errno));
  size_t cap = 1 << 16, len = 0;
  unsigned char *buf = malloc(cap);
  for (;;) {
    if (len == cap) buf = realloc(buf, cap *= 2);
    if (!buf) runner_io_fail(path, "out of memory");
    const size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0) break;
  }
  if (ferror(f)) runner_io_fail(path, "read error");
  fclose(f);
  *size = len;
  return buf;
}

static void *aligned_copy(const void *src, size_t bytes) {
  void *p = NULL;
  if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) runner_io_fail("npy", "out of memory");
  if (bytes) memcpy(p, src, bytes);
  return p;
}

static size_t descr_size(const char *d) { return (size_t)(d[2] - '0'); }

npy_array npy_read(const char *path, const char *descr, int ndim) {
  size_t size;
  unsigned char *buf = read_all(path, &size);
  if (size < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) runner_fail(path, "not a .npy file (bad magic)");
  const int major = buf[6];
  size_t header_len, start;
  if (major == 1) {
    header_len = buf[8] | (size_t)buf[9] << 8;
    start = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) runner_fail(path, "truncated .npy header");
    header_len = buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
    start = 12;
  } else {
    runner_fail(path, "unsupported .npy version %d", major);
  }
  if (start + header_len > size) runner_fail(path, "truncated .npy header");
  char header[4096];
  if (header_len >= sizeof header) runner_fail(path, ".npy header too long");
  memcpy(header, buf + start, header_len);
  header[header_len] = 0;

  npy_array a;
  memset(&a, 0, sizeof a);
  const char *d = strstr(header, "'descr':");
  if (!d) runner_fail(path, ".npy header has no descr");
  d = strchr(d + 8, '\'');
  if (!d || strlen(d) < 5 || d[4] != '\'') runner_fail(path, ".npy header: malformed descr");
  memcpy(a.descr, d + 1, 3);
  if (strcmp(a.descr, descr) != 0) runner_fail(path, "dtype %s, expected %s", a.descr, descr);
  if (!strstr(header, "'fortran_order': False")) runner_fail(path, "Fortran-ordered arrays are not supported");
  const char *s = strstr(header, "'shape':");
  if (!s || !(s = strchr(s, '('))) runner_fail(path, ".npy header has no shape");
  ++s;
  a.ndim = 0;
  int64_t count = 1;
  for (;;) {
    while (*s == ' ' || *s == ',') ++s;
    if (*s == ')') break;
    char *end;
    errno = 0;
    const long long v = strtoll(s, &end, 10);
    if (end == s || errno || v < 0) runner_fail(path, ".npy header: malformed shape");
    if (a.ndim == 8) runner_fail(path, ".npy header: too many dimensions");
    a.shape[a.ndim++] = v;
    count *= v;
    s = end;
  }
  if (a.ndim != ndim) runner_fail(path, "rank %d, expected %d", a.ndim, ndim);
  a.bytes = (size_t)count * descr_size(descr);
  if (size - start - header_len != a.bytes)
    runner_fail(path, "data holds %zu bytes, the shape needs %zu", size - start - header_len, a.bytes);
  a.data = aligned_copy(buf + start + header_len, a.bytes);
  free(buf);
  return a;
}

static void write_file_atomic(const char *path, const void *head, size_t head_len, const void *data, size_t len) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  if (!f) runner_io_fail(path, "cannot create: %s", strerror(errno));
  int ok = fwrite(head, 1, head_len, f) == head_len && fwrite(data, 1, len, f) == len;
  ok = (fclose(f) == 0) && ok;
  if (!ok || rename(tmp, path) != 0) {
    remove(tmp);
    runner_io_fail(path, "write failed: %s", strerror(errno));
  }
}

void write_text_atomic(const char *path, const char *text, size_t len) { write_file_atomic(path, "", 0, text, len); }

void npy_write_f32(const char *path, const float *data, const int64_t *shape, int ndim) {
  char dict[256];
  int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
  size_t count = 1;
  for (int i = 0; i < ndim; ++i) {
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld, ", (long long)shape[i]);
    count *= (size_t)shape[i];
  }
  n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
  /* Header padded with spaces and a final newline so the data starts on a 64-byte boundary. */
  char head[320];
  const size_t total = ((10 + (size_t)n + 1 + 63) / 64) * 64;
  memcpy(head, "\x93NUMPY\x01\x00", 8);
  head[8] = (char)((total - 10) & 0xFF);
  head[9] = (char)((total - 10) >> 8);
  memcpy(head + 10, dict, (size_t)n);
  memset(head + 10 + n, ' ', total - 10 - (size_t)n);
  head[total - 1] = '\n';
  write_file_atomic(path, head, total, data, count * 4);
}

/* ---- job.txt ---- */

static void parse_int(const char *path, int line, const char *key, const char *val, int64_t lo, int64_t hi, int64_t *out) {
  char *end;
  errno = 0;
  const long long v = strtoll(val, &end, 10);
  if (end == val || *end || errno) runner_fail(path, "line %d: %s = '%s' is not an integer", line, key, val);
  if (v < lo || v > hi) runner_fail(path, "line %d: %s = %lld is outside [%lld, %lld]", line, key, v, (long long)lo, (long long)hi);
  *out = v;
}

static void parse_real(const char *path, int line, const char *key, const char *val, float *out) {
  char *end;
  errno = 0;
  const float v = strtof(val, &end);
  if (end == val || *end || errno || !(v > 0) || v > 3.0e38f)
    runner_fail(path, "line %d: %s = '%s' is not a positive finite number", line, key, val);
  *out = v;
}

void job_read(const char *path, sattn_job *job) {
  size_t size;
  char *text = (char *)read_all(path, &size);
  text = realloc(text, size + 1);
  text[size] = 0;
  memset(job, 0, sizeof *job);
  enum { K_KIND, K_PREC, K_BATCH, K_HEADS, K_KVH, K_SEQ, K_KVL, K_HD, K_CAUSAL, K_COFF, K_BS, K_LAYOUTS, K_SS, K_SQ, K_SK, K_SV, K_TILE, K_LMUL, K_SCHEME, K_PMAX, K_VBITS, K_MEANB, K_COUNT };
  static const char *names[K_COUNT] = {"kind", "precision", "batch", "heads", "kv_heads", "seq_len", "kv_len", "head_dim", "causal", "causal_offset",
                                       "block_size", "layouts", "softmax_scale", "scale_q", "scale_k", "scale_v", "tile_rows", "lmul",
                                       /* optional (quantization scheme tables; absent: per-tensor) */
                                       "scheme", "p_max", "v_bits", "mean_block"};
  const int first_optional = K_SCHEME;
  int seen[K_COUNT] = {0};
  int64_t v;
  const int64_t big = (int64_t)1 << 31;
  int line = 0;
  for (char *ln = text, *next; ln; ln = next) {
    ++line;
    next = strchr(ln, '\n');
    if (next) *next++ = 0;
    while (*ln == ' ' || *ln == '\t') ++ln;
    if (*ln == 0 || *ln == '#') continue;
    char *eq = strchr(ln, '=');
    if (!eq) runner_fail(path, "line %d: expected 'key = value'", line);
    char *kend = eq;
    while (kend > ln && (kend[-1] == ' ' || kend[-1] == '\t')) --kend;
    *kend = 0;
    char *val = eq + 1;
    while (*val == ' ' || *val == '\t') ++val;
    char *vend = val + strlen(val);
    while (vend > val && (vend[-1] == ' ' || vend[-1] == '\t' || vend[-1] == '\r')) --vend;
    *vend = 0;
    int k = 0;
    while (k < K_COUNT && strcmp(names[k], ln) != 0) ++k;
    if (k == K_COUNT) runner_fail(path, "line %d: unknown key '%s'", line, ln);
    if (seen[k]) runner_fail(path, "line %d: '%s' given twice", line, ln);
    seen[k] = 1;
    switch (k) {
      case K_KIND:
        if (!strcmp(val, "row")) job->kind = SATTN_ROW;
        else if (!strcmp(val, "block")) job->kind = SATTN_BLOCK;
        else runner_fail(path, "line %d: kind = '%s', expected row or block", line, val);
        break;
      case K_PREC:
        if (!strcmp(val, "fp32")) job->precision = SATTN_FP32;
        else if (!strcmp(val, "bf16")) job->precision = SATTN_BF16;
        else if (!strcmp(val, "i8")) job->precision = SATTN_I8;
        else if (!strcmp(val, "i4")) job->precision = SATTN_I4;
        else runner_fail(path, "line %d: precision = '%s', expected fp32, bf16, i8 or i4", line, val);
        break;
      case K_BATCH: parse_int(path, line, ln, val, 1, big, &job->batch); break;
      case K_HEADS: parse_int(path, line, ln, val, 1, big, &job->heads); break;
      case K_KVH: parse_int(path, line, ln, val, 1, big, &job->kv_heads); break;
      case K_SEQ: parse_int(path, line, ln, val, 1, big, &job->seq_len); break;
      case K_KVL: parse_int(path, line, ln, val, 1, big, &job->kv_len); break;
      case K_HD: parse_int(path, line, ln, val, 1, 4096, &job->head_dim); break;
      case K_CAUSAL: parse_int(path, line, ln, val, 0, 1, &v); job->causal = (int)v; break;
      case K_COFF: parse_int(path, line, ln, val, -big, big, &job->causal_offset); break;
      case K_BS: parse_int(path, line, ln, val, 1, big, &job->block_size); break;
      case K_LAYOUTS: parse_int(path, line, ln, val, 1, big, &job->layouts); break;
      case K_SS: parse_real(path, line, ln, val, &job->softmax_scale); break;
      case K_SQ: parse_real(path, line, ln, val, &job->scale_q); break;
      case K_SK: parse_real(path, line, ln, val, &job->scale_k); break;
      case K_SV: parse_real(path, line, ln, val, &job->scale_v); break;
      case K_TILE: parse_int(path, line, ln, val, 0, SATTN_MAX_TILE, &v); job->tile_rows = (int)v; break;
      case K_LMUL:
        parse_int(path, line, ln, val, 0, 8, &v);
        if (v == 3 || v == 5 || v == 6 || v == 7) runner_fail(path, "line %d: lmul = %lld, expected 0, 1, 2, 4 or 8", line, (long long)v);
        job->lmul = (int)v;
        break;
      case K_SCHEME: parse_int(path, line, ln, val, 0, 1, &v); job->scheme = (int)v; break;
      case K_PMAX:
        parse_int(path, line, ln, val, 0, 32767, &v);
        if (v != 0 && v != 127 && v != 32767) runner_fail(path, "line %d: p_max = %lld, expected 0, 127 or 32767", line, (long long)v);
        job->p_max = (int)v;
        break;
      case K_VBITS:
        parse_int(path, line, ln, val, 4, 16, &v);
        if (v != 4 && v != 8 && v != 16) runner_fail(path, "line %d: v_bits = %lld, expected 4, 8 or 16", line, (long long)v);
        job->v_bits = (int)v;
        break;
      case K_MEANB: parse_int(path, line, ln, val, 0, 4096, &job->mean_block); break;
    }
  }
  for (int k = 0; k < first_optional; ++k)
    if (!seen[k]) runner_fail(path, "missing key '%s'", names[k]);
  if (job->heads % job->kv_heads != 0)
    runner_fail(path, "heads = %lld is not a multiple of kv_heads = %lld", (long long)job->heads, (long long)job->kv_heads);
  if (job->layouts != 1 && job->layouts != job->batch * job->kv_heads)
    runner_fail(path, "layouts = %lld, expected 1 or batch * kv_heads = %lld", (long long)job->layouts, (long long)(job->batch * job->kv_heads));
  if (job->scheme) {
    if (job->precision != SATTN_I8 && job->precision != SATTN_I4) runner_fail(path, "scheme = 1 needs precision i8 or i4");
    if (!seen[K_PMAX] || !seen[K_VBITS] || !seen[K_MEANB]) runner_fail(path, "scheme = 1 needs p_max, v_bits and mean_block");
    if (job->v_bits == 4 && job->precision != SATTN_I4) runner_fail(path, "v_bits = 4 needs precision i4");
    if ((job->p_max == 32767) != (job->v_bits == 16) || (job->p_max == 127 && job->v_bits != 8))
      runner_fail(path, "p_max = %d does not fit v_bits = %d (32767: 16, 127: 8, 0: the op's precision)", job->p_max, job->v_bits);
    if (job->p_max == 0 && job->v_bits != (job->precision == SATTN_I8 ? 8 : 4))
      runner_fail(path, "p_max = 0 (P in fp32) stores V at the op's precision: v_bits = %d", job->precision == SATTN_I8 ? 8 : 4);
  } else if (seen[K_PMAX] || seen[K_VBITS] || seen[K_MEANB]) {
    runner_fail(path, "p_max, v_bits and mean_block need scheme = 1");
  }
  if (job->kind == SATTN_ROW && job->block_size != 1) runner_fail(path, "block_size = %lld, a row (CSR) layout has block_size 1", (long long)job->block_size);
  free(text);
}
