/* The riscv64 runner's file handling: job.txt, .npy arrays, atomic output files. Everything here
 * runs outside the measured kernel region. */
#ifndef SATTN_RUNNER_IO_H
#define SATTN_RUNNER_IO_H
#include <stddef.h>
#include <stdint.h>

#include "../kernels/attn.h"

/* Prints "sattn-rvv-runner: error: FILE: MESSAGE" on stderr and exits with status 3. */
__attribute__((noreturn, format(printf, 2, 3))) void runner_fail(const char *file, const char *fmt, ...);
/* I/O failure (cannot read or write a file that should be there): exit status 1. */
__attribute__((noreturn, format(printf, 2, 3))) void runner_io_fail(const char *file, const char *fmt, ...);

/* Joins dir and name into a static buffer slot (path_join returns one of 8 rotating buffers). */
const char *path_join(const char *dir, const char *name);

typedef struct npy_array {
  char descr[8]; /* "<f4", "<u2", "|i1", "|u1", "<i4", "<i8" */
  int ndim;
  int64_t shape[8];
  void *data; /* 64-byte aligned */
  size_t bytes;
} npy_array;

/* Reads a .npy file and checks its dtype (`descr`) and rank; exits 3 on any mismatch. */
npy_array npy_read(const char *path, const char *descr, int ndim);
/* Writes a float32 array atomically (PATH.tmp, then rename). */
void npy_write_f32(const char *path, const float *data, const int64_t *shape, int ndim);
/* Writes text atomically. */
void write_text_atomic(const char *path, const char *text, size_t len);

/* Reads WORKDIR/job.txt into `job` (pointers left null) and validates every value. */
void job_read(const char *path, sattn_job *job);

#endif
