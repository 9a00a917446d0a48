/* The sattn C API end to end, in C99: parse an op, select a spec, build its layout, run the
 * forward and backward passes on caller memory (DLPack tensors), and check every number against
 * a plain-C double-precision computation written here from the definitions. Also shows the
 * error path. Exits 0 when everything matches.
 *
 *   cc -std=c99 main.c -I PREFIX/include -L PREFIX/lib -lsattn -lm
 *   ./a.out WORKDIR      (WORKDIR receives an op file and the emitted artifacts)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sattn/sattn.h>

enum { B = 1, H = 2, KVH = 1, S = 6, KV = 8, D = 4, WINDOW = 3 };

static int failures = 0;
#define EXPECT(cond, ...)                                    \
  do {                                                       \
    if (!(cond)) {                                           \
      ++failures;                                            \
      fprintf(stderr, "FAILED %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                          \
      fprintf(stderr, "\n");                                 \
    }                                                        \
  } while (0)

/* Aborts on an unexpected failure, printing sattn's message. */
static void check(sattn_status status, const char* what) {
  if (status != SATTN_OK) {
    fprintf(stderr, "%s: %s (status %d): %s\n", what, sattn_status_string(status), (int)status, sattn_last_error());
    exit(1);
  }
}

/* A float32 CPU DLTensor over caller memory; strides NULL = C-contiguous. */
static DLTensor tensor(float* data, int ndim, int64_t* shape) {
  DLTensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.device.device_type = kDLCPU;
  t.device.device_id = 0;
  t.ndim = ndim;
  t.dtype.code = kDLFloat;
  t.dtype.bits = 32;
  t.dtype.lanes = 1;
  t.shape = shape;
  t.strides = NULL;
  t.byte_offset = 0;
  return t;
}

/* The sliding window, causal, by its definition: query i sits at key p = i + (KV - S) and sees
 * keys p - WINDOW .. p that exist. */
static int allowed(int i, int j) {
  const int p = i + (KV - S);
  return j >= 0 && j < KV && j <= p && j >= p - WINDOW;
}

static double qf[B * H * S * D], kf[B * KVH * KV * D], vf[B * KVH * KV * D], gf[B * H * S * D];

/* Plain-C double attention and its gradient from the explicit softmax of each row. */
static void expected(double* o, double* lse, double* dq, double* dk, double* dv) {
  const double scale = 1.0 / sqrt((double)D);
  int h, i, j, c;
  memset(dk, 0, sizeof(double) * KV * D);
  memset(dv, 0, sizeof(double) * KV * D);
  for (h = 0; h < H; ++h)
    for (i = 0; i < S; ++i) {
      const double* q = qf + (h * S + i) * D;
      const double* g = gf + (h * S + i) * D;
      double s[KV], p[KV], dp[KV], m = -INFINITY, sum = 0, delta = 0;
      double* oi = o + (h * S + i) * D;
      double* dqi = dq + (h * S + i) * D;
      for (j = 0; j < KV; ++j) {
        s[j] = 0;
        for (c = 0; c < D; ++c) s[j] += q[c] * kf[j * D + c];
        s[j] *= scale;
        if (allowed(i, j) && s[j] > m) m = s[j];
      }
      for (j = 0; j < KV; ++j) sum += (p[j] = allowed(i, j) ? exp(s[j] - m) : 0.0);
      lse[h * S + i] = m + log(sum);
      for (c = 0; c < D; ++c) oi[c] = dqi[c] = 0;
      for (j = 0; j < KV; ++j) {
        p[j] /= sum;
        dp[j] = 0;
        for (c = 0; c < D; ++c) {
          oi[c] += p[j] * vf[j * D + c];
          dp[j] += g[c] * vf[j * D + c];
        }
      }
      for (c = 0; c < D; ++c) delta += g[c] * oi[c];
      for (j = 0; j < KV; ++j) {
        const double ds = p[j] * (dp[j] - delta) * scale;
        for (c = 0; c < D; ++c) {
          dqi[c] += ds * kf[j * D + c];
          dk[j * D + c] += ds * q[c];
          dv[j * D + c] += p[j] * g[c];
        }
      }
    }
}

static double max_error(const float* got, const double* want, int n) {
  double e = 0;
  int t;
  for (t = 0; t < n; ++t)
    if (fabs(got[t] - want[t]) > e) e = fabs(got[t] - want[t]);
  return e;
}

int main(int argc, char** argv) {
  const char* workdir = argc > 1 ? argv[1] : ".";
  char version[32], path[1024];
  sattn_op* op = NULL;
  sattn_plan* plan = NULL;
  sattn_layout* layout = NULL;
  sattn_select_options sel;
  sattn_layout_info info;
  sattn_shape shape;
  size_t count = 0, ptr_count = 0, idx_count = 0;
  const int64_t* ptr;
  const int32_t* idx;
  int i, j, t;
  static float q[B * H * S * D], k[B * KVH * KV * D], v[B * KVH * KV * D], g[B * H * S * D];
  static float out[B * H * S * D], lse[B * H * S], dq[B * H * S * D], dk[B * KVH * KV * D], dv[B * KVH * KV * D];
  static double o_ref[B * H * S * D], lse_ref[B * H * S], dq_ref[B * H * S * D], dk_ref[KV * D], dv_ref[KV * D];
  int64_t q_shape[4] = {B, H, S, D}, kv_shape[4] = {B, KVH, KV, D}, lse_shape[3] = {B, H, S};
  DLTensor tq = tensor(q, 4, q_shape), tk = tensor(k, 4, kv_shape), tv = tensor(v, 4, kv_shape);
  DLTensor tg = tensor(g, 4, q_shape), tout = tensor(out, 4, q_shape), tlse = tensor(lse, 3, lse_shape);
  DLTensor tdq = tensor(dq, 4, q_shape), tdk = tensor(dk, 4, kv_shape), tdv = tensor(dv, 4, kv_shape);
  FILE* f;
  unsigned seed = 12345u;

  /* 1. Versions: the header's and the library's. */
  sprintf(version, "%d.%d.%d", SATTN_VERSION_MAJOR, SATTN_VERSION_MINOR, SATTN_VERSION_PATCH);
  EXPECT(strcmp(version, sattn_version()) == 0, "header %s, library %s", version, sattn_version());
  printf("sattn %s\n", sattn_version());

  /* 2. An op from a string (JSON here; MLIR and YAML read the same way). */
  check(sattn_op_parse("{\"name\": \"win\", \"heads\": 2, \"kv_heads\": 1, \"seq_len\": 6, \"kv_len\": 8,"
                       " \"head_dim\": 4, \"causal\": true, \"window_size\": 3}",
                       (size_t)-1, "inline.json", SATTN_FORMAT_AUTO, 0, &op, &count),
        "sattn_op_parse");
  check(sattn_op_shape(op, &shape), "sattn_op_shape");
  EXPECT(count == 1 && shape.heads == H && shape.kv_len == KV && sattn_op_causal(op) == 1, "op fields");
  EXPECT(strcmp(sattn_op_name(op), "win") == 0 && strcmp(sattn_op_precision(op), "fp32") == 0, "op name/precision");

  /* 3. Select, forcing the spec as `sattn select --force-spec sliding_window` would. */
  sattn_select_options_init(&sel);
  sel.force_spec = "sliding_window";
  check(sattn_select(op, &sel, &plan), "sattn_select");
  EXPECT(strcmp(sattn_plan_spec(plan), "sliding_window") == 0, "spec %s", sattn_plan_spec(plan));
  EXPECT(strcmp(sattn_plan_kind(plan), "override") == 0, "kind %s", sattn_plan_kind(plan));
  EXPECT(strstr(sattn_plan_json(plan), "\"sattn.plan/v1\"") != NULL, "plan json %s", sattn_plan_json(plan));
  printf("plan: %s (%s: %s)\n", sattn_plan_spec(plan), sattn_plan_kind(plan), sattn_plan_reason(plan));

  /* 4. The layout: CSR arrays equal the window's definition. */
  check(sattn_layout_build(plan, NULL, NULL, &layout), "sattn_layout_build");
  check(sattn_layout_get_info(layout, &info), "sattn_layout_get_info");
  EXPECT(info.block == 0 && info.rows == S && info.cols == KV && info.lists == S, "layout info");
  check(sattn_layout_arrays(layout, 0, 0, &ptr, &ptr_count, &idx, &idx_count), "sattn_layout_arrays");
  EXPECT(ptr_count == S + 1 && (size_t)ptr[S] == idx_count, "ptr/idx sizes");
  for (i = 0, t = 0; i < S; ++i) {
    EXPECT(ptr[i] == t, "ptr[%d] = %lld, expected %d", i, (long long)ptr[i], t);
    for (j = 0; j < KV; ++j)
      if (allowed(i, j)) {
        EXPECT(t < (int)idx_count && idx[t] == j, "row %d: idx[%d] should be %d", i, t, j);
        ++t;
      }
  }
  printf("layout: %d rows, %lu allowed pairs, density %.3f\n", (int)info.rows, (unsigned long)idx_count, info.density);

  /* 5. Forward and backward on caller memory. */
  for (t = 0; t < B * H * S * D; ++t) {
    seed = seed * 1103515245u + 12345u;
    q[t] = (float)((int)(seed >> 16) % 2001 - 1000) / 1000.0f;
    seed = seed * 1103515245u + 12345u;
    g[t] = (float)((int)(seed >> 16) % 2001 - 1000) / 1000.0f;
    qf[t] = q[t];
    gf[t] = g[t];
  }
  for (t = 0; t < B * KVH * KV * D; ++t) {
    seed = seed * 1103515245u + 12345u;
    k[t] = (float)((int)(seed >> 16) % 2001 - 1000) / 1000.0f;
    seed = seed * 1103515245u + 12345u;
    v[t] = (float)((int)(seed >> 16) % 2001 - 1000) / 1000.0f;
    kf[t] = k[t];
    vf[t] = v[t];
  }
  expected(o_ref, lse_ref, dq_ref, dk_ref, dv_ref);
  check(sattn_forward(plan, layout, &tq, &tk, &tv, &tout, &tlse, NULL), "sattn_forward");
  EXPECT(max_error(out, o_ref, B * H * S * D) < 1e-5, "out error %g", max_error(out, o_ref, B * H * S * D));
  EXPECT(max_error(lse, lse_ref, B * H * S) < 1e-5, "lse error %g", max_error(lse, lse_ref, B * H * S));
  check(sattn_backward(plan, layout, &tq, &tk, &tv, &tout, &tg, &tlse, &tdq, &tdk, &tdv, NULL), "sattn_backward");
  EXPECT(max_error(dq, dq_ref, B * H * S * D) < 1e-5, "dq error %g", max_error(dq, dq_ref, B * H * S * D));
  EXPECT(max_error(dk, dk_ref, KV * D) < 1e-5, "dk error %g", max_error(dk, dk_ref, KV * D));
  EXPECT(max_error(dv, dv_ref, KV * D) < 1e-5, "dv error %g", max_error(dv, dv_ref, KV * D));
  printf("forward/backward: max errors out %.1e, dq %.1e, dk %.1e, dv %.1e\n", max_error(out, o_ref, B * H * S * D),
         max_error(dq, dq_ref, B * H * S * D), max_error(dk, dk_ref, KV * D), max_error(dv, dv_ref, KV * D));

  /* 6. An op file (YAML) and the artifacts directory. */
  sprintf(path, "%s/ops.yaml", workdir);
  f = fopen(path, "w");
  if (!f) return 1;
  fputs("- {name: a, heads: 2, seq_len: 64, head_dim: 16}\n- {name: b, heads: 2, seq_len: 64, head_dim: 16, "
        "spec: bsr, block_size: 16}\n",
        f);
  fclose(f);
  sattn_op_free(op);
  check(sattn_op_read(path, SATTN_FORMAT_AUTO, 1, &op, &count), "sattn_op_read");
  EXPECT(count == 2 && strcmp(sattn_op_name(op), "b") == 0, "op file: %lu ops", (unsigned long)count);
  sattn_plan_free(plan);
  check(sattn_select(op, NULL, &plan), "sattn_select");
  EXPECT(strcmp(sattn_plan_spec(plan), "bsr") == 0, "spec attribute: %s", sattn_plan_spec(plan));
  sprintf(path, "%s/artifacts", workdir);
  check(sattn_layout_emit(plan, path, NULL, 0, 0), "sattn_layout_emit");
  sprintf(path, "%s/artifacts/artifacts.json", workdir);
  f = fopen(path, "r");
  EXPECT(f != NULL, "%s was not written", path);
  if (f) fclose(f);

  /* 7. Errors: statuses are the tools' exit codes; messages carry file:line:col. */
  sattn_op_free(op);
  op = NULL;
  EXPECT(sattn_op_parse("{\"heads\": 2,\n \"seq_len\": -4}", (size_t)-1, "bad.json", SATTN_FORMAT_AUTO, 0, &op,
                        NULL) == SATTN_INVALID_INPUT,
         "a negative seq_len is invalid input");
  EXPECT(op == NULL && strncmp(sattn_last_error(), "bad.json:2:", 11) == 0, "message: %s", sattn_last_error());
  printf("error: %s\n", sattn_last_error());
  sel.force_spec = "no_such_spec";
  EXPECT(sattn_select(NULL, &sel, &plan) == SATTN_USAGE, "NULL op");
  {
    int64_t strides[4] = {H * S * D, S * D, 1, S}; /* column-major rows: not C-contiguous */
    DLTensor bad = tq;
    bad.strides = strides;
    EXPECT(sattn_forward(plan, layout, &bad, &tk, &tv, &tout, NULL, NULL) == SATTN_INVALID_INPUT,
           "non-contiguous q");
    EXPECT(strstr(sattn_last_error(), "not C-contiguous") != NULL, "message: %s", sattn_last_error());
  }

  sattn_layout_free(layout);
  sattn_plan_free(plan);
  sattn_op_free(op);
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("c api: ok\n");
  return 0;
}
