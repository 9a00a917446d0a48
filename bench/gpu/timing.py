"""CUDA-event timing shared by bench.py and bwd_variants.py.

timeit(fn) is the GPU time per call at throughput: each sample enqueues BATCH calls back to back
between two CUDA events and divides, so the host-side cost of a call (Python, torch.compile's guards,
launches) overlaps the previous call's kernels, as it does in a training or inference loop; only
where the host is slower than the GPU does it show. Before sampling, the function runs for at
least WARM_MS (clocks ramped; compilation, autotuning, allocation done). Samples are taken until
MIN_MS of GPU time and MIN_SAMPLES samples; the median is returned (ms).
latency(fn) is one call on an idle GPU (events around a single call, host overhead included): the
figure bench.py reported before 2026-12-07, kept as *_call_ms.
"""
import os
import torch

WARM_MS = float(os.environ.get("BENCH_WARM_MS", "150"))
MIN_MS = float(os.environ.get("BENCH_MIN_MS", "300"))
BATCH = int(os.environ.get("BENCH_BATCH", "5"))
MIN_SAMPLES, MAX_SAMPLES = 7, 100


def _sample(fn, n):
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    e0.record()
    for _ in range(n):
        fn()
    e1.record(); torch.cuda.synchronize()
    return e0.elapsed_time(e1) / n


def _warm(fn):
    fn(); torch.cuda.synchronize()
    warm, n = 0.0, 0
    while n < 3 or warm < WARM_MS:
        warm += _sample(fn, 1); n += 1


def _median(fn, n):
    ts = []
    while len(ts) < MIN_SAMPLES or (sum(ts) * n < MIN_MS and len(ts) < MAX_SAMPLES):
        ts.append(_sample(fn, n))
    ts.sort()
    return ts[len(ts) // 2]


def timeit(fn, reps=None):
    """Median ms per call, BATCH calls back to back per sample (reps: unused, kept for callers)."""
    _warm(fn)
    return _median(fn, BATCH)


def latency(fn):
    """Median ms of one call on an idle GPU (host overhead included)."""
    _warm(fn)
    return _median(fn, 1)
