/* The sattn C API (C99): parse ops, select a spec, build layouts, run attention forward and
 * backward on caller memory handed over as DLPack tensors. docs/c-api.md has the ABI policy and a
 * complete example.
 *
 * Conventions
 * - Every function that can fail returns a sattn_status; its values are the exit codes of the
 *   sattn tools (sattn(1) EXIT STATUS). On failure sattn_last_error() holds the message of this
 *   thread's last failed call ("file:line:col: message" when the error is in an input file).
 * - Objects are opaque handles, created by sattn_*_parse/read/select/build and released by the
 *   matching sattn_*_free (which accepts NULL). Handles are immutable once made: several threads
 *   may use one handle at the same time.
 * - Tensors are DLTensor (dlpack/dlpack.h): float32, C-contiguous (strides NULL or the C-order
 *   strides; dimensions of extent 1 may carry any stride), shaped [batch, heads, len, head_dim]
 *   (lse: [batch, heads, seq_len]). Such tensors are read and written in place, never copied.
 *   Anything else (another dtype, non-contiguous strides, lanes != 1) is SATTN_INVALID_INPUT:
 *   the caller makes a contiguous float32 copy if it wants one.
 */
#ifndef SATTN_SATTN_H
#define SATTN_SATTN_H

#include <stddef.h>
#include <stdint.h>

#include <dlpack/dlpack.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header. sattn_version() returns the library's; a program built against
 * MAJOR.MINOR runs with any library of the same MAJOR and a MINOR at least as high.
 * 0.2 added sattn_op_softcap. */
#define SATTN_VERSION_MAJOR 0
#define SATTN_VERSION_MINOR 2
#define SATTN_VERSION_PATCH 0

/* Status codes: the same numbers as the tools' exit codes. */
typedef enum sattn_status {
  SATTN_OK = 0,
  SATTN_RUNTIME = 1,        /* runtime or I/O failure (including out of memory) */
  SATTN_USAGE = 2,          /* a bad option value (an unknown spec or backend name, ...) */
  SATTN_INVALID_INPUT = 3,  /* parse, schema or range error in an input; a tensor the op cannot take */
  SATTN_EXTERNAL_TOOL = 4,  /* an external component failed or is missing (no CUDA device, ...) */
  SATTN_CHECK_FAILED = 5    /* an output outside the tolerance of the reference */
} sattn_status;

/* "MAJOR.MINOR.PATCH" of the library loaded at run time. */
const char* sattn_version(void);
/* The message of this thread's last failed call ("" if none). Valid until this thread's next
 * sattn call. */
const char* sattn_last_error(void);
/* A short name for a status ("ok", "invalid input", ...). */
const char* sattn_status_string(sattn_status status);

typedef struct sattn_op sattn_op;         /* one attention op */
typedef struct sattn_plan sattn_plan;     /* an op with its selected spec and parameters */
typedef struct sattn_layout sattn_layout; /* the CSR/BSR sparsity layout of a plan */

/* ---- ops ---- */

typedef enum sattn_format {
  SATTN_FORMAT_AUTO = 0, /* from the file extension, else the content (sattn-select(1)) */
  SATTN_FORMAT_MLIR = 1,
  SATTN_FORMAT_JSON = 2,
  SATTN_FORMAT_YAML = 3
} sattn_format;

/* Parses op number `index` (0-based) of `text` (`length` bytes, or up to a NUL when length is
 * (size_t)-1) in any op format the tools read: MLIR generic form, JSON (one op, an array or JSON
 * Lines), YAML. `filename` names the text in messages (NULL: "<string>"). `count` (nullable)
 * receives how many ops the text holds. */
sattn_status sattn_op_parse(const char* text, size_t length, const char* filename, sattn_format format,
                            size_t index, sattn_op** op, size_t* count);
/* The same from a file ("-" is stdin). */
sattn_status sattn_op_read(const char* path, sattn_format format, size_t index, sattn_op** op, size_t* count);
void sattn_op_free(sattn_op* op);

typedef struct sattn_shape {
  int64_t batch, heads, kv_heads, seq_len, kv_len, head_dim;
} sattn_shape;
sattn_status sattn_op_shape(const sattn_op* op, sattn_shape* shape);
/* The op's name, its precision ("fp32", "bf16", "i8", "i4"); owned by the op. */
const char* sattn_op_name(const sattn_op* op);
const char* sattn_op_precision(const sattn_op* op);
int sattn_op_causal(const sattn_op* op);
/* The softmax scale the kernels apply (the op's `scale`, else 1/sqrt(head_dim)). */
double sattn_op_scale(const sattn_op* op);
/* The op's logit soft-cap c (attribute `softcap` or `attn_logit_softcapping`: each scaled score s
 * becomes c * tanh(s / c) before the softmax, as in Gemma 2), or 0 when the op has none.
 * sattn_forward and sattn_backward apply it on the CPU. Since 0.1 (added without a MINOR bump:
 * the ABI only grows). */
double sattn_op_softcap(const sattn_op* op);

/* ---- selection ---- */

/* The selector's options: sattn-select(1)'s flags. Fields left unset (NULL, -1) fall through to
 * the environment (SATTN_FORCE_SPEC, SATTN_DISABLE_*, SATTN_PREFER_*, SATTN_HW_L1_BYTES), then to
 * the profile, then to the defaults, exactly as for the tools (library function
 * resolve_select_request). Initialize with sattn_select_options_init(). */
typedef struct sattn_select_options {
  size_t struct_size;     /* sizeof(sattn_select_options): set by _init, lets the struct grow */
  const char* backend;    /* the cost model's target: "cpu", "rvv", "rocc", "imc"; NULL: unset */
  const char* force_spec; /* --force-spec NAME; NULL: unset */
  const char* disable;    /* --disable: comma-separated spec names; "" disables none and overrides
                             SATTN_DISABLE_*; NULL: unset */
  int prefer_bsr;         /* 1: --prefer-bsr; 0 or -1: not given */
  int prefer_sw;          /* 1: --prefer-sw; 0 or -1: not given */
  int64_t l1_bytes;       /* --l1-bytes; -1: unset */
  const char* profile;    /* --profile NAME or PATH (sattn-profile(5)); NULL: unset */
  /* Selection under a quality target (sattn-select(1), QUALITY TARGET): the cheapest point of the
   * recall grid whose recall on the calibration samples is at least min_recall, else dense. */
  double min_recall;            /* --min-recall R in [0, 1]; -1: unset (SATTN_MIN_RECALL, then the
                                   profile's select.min_recall apply); any other value outside
                                   [0, 1], NaN included, is SATTN_INVALID_INPUT */
  const char* const* data;      /* --data DIR, data_count of them: calibration samples, each
                                   DIR/{q,k,v}.npy (two or more pool into one bound per head,
                                   sattn-select(1)); NULL or data_count 0: none */
  size_t data_count;
  int64_t seed;                 /* --seed: the synthetic calibration sample when no data is given;
                                   -1: unset (the default seed) */
  double recall_confidence;     /* --recall-confidence C in [0.5, 1): the confidence of the recall
                                   bound; -1: unset (SATTN_RECALL_CONFIDENCE, the profile, 0.95);
                                   any other value outside [0.5, 1) is SATTN_USAGE */
  const char* recall_bound;     /* --recall-bound: what the recall bound covers, "window" (one more
                                   window of text), "mean" (the mean over text) or "cv" (the mean
                                   bound, its confidence chosen up to recall_confidence by
                                   leave-one-out cross-validation over 4 or more samples); NULL:
                                   unset (SATTN_RECALL_BOUND, the profile, "window"); any other
                                   name is SATTN_USAGE */
} sattn_select_options;
void sattn_select_options_init(sattn_select_options* options);

/* Selects a spec for the op. `options` may be NULL (everything unset). */
sattn_status sattn_select(const sattn_op* op, const sattn_select_options* options, sattn_plan** plan);
/* Reads a plan document (sattn.plan/v1, as sattn-select writes it) or a bare op, selecting
 * with `options` for a bare op; `index` and `count` as for sattn_op_parse. */
sattn_status sattn_plan_read(const char* path, const sattn_select_options* options, size_t index, sattn_plan** plan,
                             size_t* count);
void sattn_plan_free(sattn_plan* plan);
/* The plan's spec ("sliding_window", ...), how it was chosen ("override", "rule", "cost",
 * "default") and why, and the whole plan as sattn.plan/v1 JSON; owned by the plan. */
const char* sattn_plan_spec(const sattn_plan* plan);
const char* sattn_plan_kind(const sattn_plan* plan);
const char* sattn_plan_reason(const sattn_plan* plan);
const char* sattn_plan_json(const sattn_plan* plan);
/* A copy of the plan's op (free it with sattn_op_free). */
sattn_status sattn_plan_op(const sattn_plan* plan, sattn_op** op);

/* ---- layouts ---- */

/* Builds the plan's layout. q [batch, heads, seq_len, head_dim] and k [batch, kv_heads, kv_len,
 * head_dim] are read (not copied) by the data-dependent specs (bsr, nm_structured,
 * topk_per_query, lsh, quest, landmark with landmark_iters > 0) and may be NULL for the others. */
sattn_status sattn_layout_build(const sattn_plan* plan, const DLTensor* q, const DLTensor* k, sattn_layout** layout);
void sattn_layout_free(sattn_layout* layout);

typedef struct sattn_layout_info {
  int block;               /* 1: BSR (lists of block columns per block row); 0: CSR (keys per row) */
  int shared;              /* 1: one layout for every (batch, kv head) */
  int causal;              /* BSR: the consumer applies the causal rule inside kept blocks */
  int64_t rows, cols;      /* seq_len, kv_len */
  int64_t block_size;      /* BSR block edge; 1 for CSR */
  int64_t causal_offset;   /* kv_len - seq_len: query i is aligned with key i + causal_offset */
  int64_t batch, kv_heads; /* heads of the layout: index b * kv_heads + kvh (shared: all the same) */
  int64_t lists;           /* entries of ptr minus 1: rows (CSR) or block rows (BSR) */
  double density;          /* allowed (query, key) pairs / (rows * cols), mean over heads */
} sattn_layout_info;
sattn_status sattn_layout_get_info(const sattn_layout* layout, sattn_layout_info* info);
/* The CSR/BSR arrays of (batch b, kv head kvh): ptr has lists + 1 entries, idx ptr[lists]
 * entries (ascending within each list; CSR: key indices, BSR: block-column indices). The arrays
 * are owned by the layout. ptr_count and idx_count may be NULL. */
sattn_status sattn_layout_arrays(const sattn_layout* layout, int64_t b, int64_t kvh, const int64_t** ptr,
                                 size_t* ptr_count, const int32_t** idx, size_t* idx_count);

/* Writes the plan's artifacts (sattn-artifacts(7): layout arrays, indices.txt/.desc and, for
 * data-dependent specs, q/k/v.npy, under a sattn.artifacts/v1 envelope) into `out_dir`, as
 * sattn-emit does. Data: `data_dir` holding q.npy/k.npy/v.npy, else the synthetic generator
 * seeded with `seed` (0: the default data set). `replace` = 1 replaces a non-empty directory
 * (sattn-emit --force). */
sattn_status sattn_layout_emit(const sattn_plan* plan, const char* out_dir, const char* data_dir, uint64_t seed,
                               int replace);

/* ---- attention ---- */

typedef struct sattn_run_options {
  size_t struct_size; /* sizeof(sattn_run_options): set by _init */
  int threads;        /* CPU worker threads; 0: the hardware's */
} sattn_run_options;
void sattn_run_options_init(sattn_run_options* options);

/* Forward: out = softmax(cap(scale * q k^T) over the layout's allowed keys) v, at the op's
 * precision, where cap is the op's soft-cap (sattn_op_softcap; the identity when it has none).
 * q/out [batch, heads, seq_len, head_dim], k/v [batch, kv_heads, kv_len, head_dim], lse (nullable)
 * [batch, heads, seq_len] receives each row's natural-log log-sum-exp (-inf for a row with no
 * allowed key, whose output is 0). CPU tensors run on the fast CPU kernel; CUDA tensors on the
 * GPU when libsattn was built with CUDA (otherwise SATTN_EXTERNAL_TOOL). `options` may be NULL. */
sattn_status sattn_forward(const sattn_plan* plan, const sattn_layout* layout, const DLTensor* q, const DLTensor* k,
                           const DLTensor* v, DLTensor* out, DLTensor* lse, const sattn_run_options* options);

/* Backward (FlashAttention-2 recomputation from lse; the layout is a constant): writes dq, dk, dv
 * given the forward's out and lse and the output gradient dout. fp32 and bf16 ops, CPU tensors. */
sattn_status sattn_backward(const sattn_plan* plan, const sattn_layout* layout, const DLTensor* q, const DLTensor* k,
                            const DLTensor* v, const DLTensor* out, const DLTensor* dout, const DLTensor* lse,
                            DLTensor* dq, DLTensor* dk, DLTensor* dv, const sattn_run_options* options);

#ifdef __cplusplus
}
#endif

#endif /* SATTN_SATTN_H */
