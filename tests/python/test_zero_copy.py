"""Zero copy: contiguous float32 Q/K/V are read in place. Checked three ways: the arrays handed
to the library are the caller's memory; the only large Python-side allocation of a call is the
output; and the process's peak resident memory grows by the output, not by copies of Q/K/V."""
import os
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import torch

import sattn
from sattn import _arrays


def test_inputs_are_views_of_the_callers_memory():
    q = torch.randn(1, 4, 64, 16)
    k = torch.randn(1, 2, 64, 16)
    v = torch.randn(1, 2, 64, 16, requires_grad=True)
    inputs = _arrays.prepare(q, k, v)
    assert not inputs.copied
    for t, a in zip((q, k, v), inputs.arrays):
        assert a.__array_interface__["data"][0] == t.data_ptr()
    n = np.random.default_rng(0).standard_normal((1, 4, 64, 16), dtype=np.float32)
    assert _arrays.prepare(n, n, n).arrays[0] is n


def test_only_the_output_is_allocated():
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((1, 8, 1024, 64), dtype=np.float32) for _ in range(3))
    sattn.sparse_attention(q, k, v, pattern="sliding_window", params={"window_size": 8})  # warm the caches
    tracemalloc.start()
    try:
        out = sattn.sparse_attention(q, k, v, pattern="sliding_window", params={"window_size": 8})
        snapshot = tracemalloc.take_snapshot()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    big = [s for s in snapshot.statistics("traceback") if s.size >= q.nbytes // 4]
    # The output (plus numpy's small header), nothing else that large.
    assert len(big) == 1 and out.nbytes <= big[0].size < out.nbytes + 4096
    assert peak < out.nbytes + q.nbytes // 4


PEAK_SCRIPT = textwrap.dedent("""
    import numpy as np, sys, torch, sattn
    kind, = sys.argv[1:]
    B, H, S, D = 1, 8, 16384, 64          # 32 MiB per tensor
    rng = np.random.default_rng(2)
    q, k, v = (rng.standard_normal((B, H, S, D), dtype=np.float32) for _ in range(3))
    if kind == "torch":
        q, k, v = (torch.from_numpy(x) for x in (q, k, v))
    small = tuple(x[:, :, :256] for x in (q, k, v))
    kw = dict(pattern="sliding_window", params={"window_size": 4})
    sattn.sparse_attention(*(np.ascontiguousarray(x) if kind == "numpy" else x.contiguous() for x in small), **kw)
    def rss(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    with open("/proc/self/clear_refs", "w") as f:   # reset the peak (VmHWM) to the current RSS
        f.write("5")
    before = rss("VmRSS:")
    out = sattn.sparse_attention(q, k, v, **kw)
    print(rss("VmHWM:") - before, q.nbytes if kind == "numpy" else q.numel() * 4)
""")


def _peak_growth(kind):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, kind], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    growth, tensor_bytes = map(int, r.stdout.split())
    return growth, tensor_bytes


def test_peak_memory_grows_by_the_output_only_numpy():
    growth, tensor_bytes = _peak_growth("numpy")
    # The output (one tensor's size) plus the layout and scratch; a copy of q, k or v would add
    # another tensor_bytes each.
    assert tensor_bytes * 0.9 < growth < tensor_bytes * 1.5, (growth, tensor_bytes)


def test_peak_memory_grows_by_the_output_only_torch():
    growth, tensor_bytes = _peak_growth("torch")
    assert tensor_bytes * 0.9 < growth < tensor_bytes * 1.5, (growth, tensor_bytes)
