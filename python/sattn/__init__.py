"""sattn: multi-spec sparse attention from Python (numpy and PyTorch).

Quickstart
----------
    import numpy as np, sattn
    q = np.random.randn(1, 8, 1024, 64).astype(np.float32)      # [batch, heads, seq, head_dim]
    k = np.random.randn(1, 2, 1024, 64).astype(np.float32)      # GQA: 2 KV heads for 8 heads
    v = np.random.randn(1, 2, 1024, 64).astype(np.float32)
    out = sattn.sparse_attention(q, k, v, pattern="block_topk",
                                 params={"block_size": 64, "keep_ratio": 0.12, "global_tokens": 16},
                                 precision="bf16", causal=True)

The output has the type of the input (numpy array or torch tensor). Contiguous float32 inputs
are read in place, never copied.

Patterns (``sattn.PATTERNS``)
-----------------------------
sattn's specs: dense, sliding_window, bsr, block_local_global, nm_structured,
topk_per_query, lsh, landmark, quest; "auto" lets the selector choose from the shapes and params.
The earlier prototype's names map onto them: block_topk -> bsr, sliding_global ->
block_local_global (its token ``window_size`` becomes ``window_blocks`` = ceil(window_size /
block_size)), blg -> block_local_global, sw -> sliding_window, nm -> nm_structured, topk ->
topk_per_query.

Training (PyTorch)
------------------
    import sattn.torch
    out = sattn.torch.sparse_attention(q, k, v, pattern="sliding_window",
                                       params={"window_size": 128}, causal=True)
    out.sum().backward()
or ``sattn.sparse_attention(..., training=True)`` with torch tensors. The backward pass
recomputes the attention from the forward's log-sum-exp (FlashAttention-2); the layout is a
constant of the gradient. With numpy: ``attention_forward`` / ``attention_backward``.

The rest of libsattn
--------------------
    op = sattn.Op(heads=8, seq_len=4096, head_dim=64, causal=True, keep_ratio=0.1)
    plan = sattn.select(op, explain=True)            # the selector, as sattn-select
    lay = sattn.layout(q, k, pattern="bsr")          # CSR/BSR arrays: lay.ptr(), lay.idx(), lay.mask()
    cal = sattn.calibrate(op, precision="i8")        # i8/i4 scales, as sattn-calibrate
    ref = sattn.reference_attention(q, k, v, lay)    # the double-precision reference

Capture real Q/K/V from a model for the sattn tools: ``sattn.capture``.

Errors
------
Every error sattn detects is a ``sattn.Error``; the subclass mirrors the tools' exit codes:
RuntimeFailure (1), Usage (2), InvalidInput (3: bad dtype, rank, shapes, heads, unknown
pattern, bad attribute), ExternalToolFailed (4: CUDA not built, no GPU), CheckFailed (5).
Non-contiguous inputs are copied with a ``sattn.CopyWarning``.

More: docs/python.md, and help() on each function.
"""
from . import _sattn
from ._attention import (attention_backward, attention_forward, reference_attention, reference_attention_backward,
                         sparse_attention)
from ._core import (PROTOTYPE_PATTERNS, SPECS, Calibration, Candidate, Layout, Op, Plan, calibrate,
                    canonical_pattern, layout, select)
from ._errors import CheckFailed, CopyWarning, Error, ExternalToolFailed, InvalidInput, RuntimeFailure, Usage

__version__ = _sattn.version()

#: Every pattern name sparse_attention() accepts, mapped to the sattn spec it runs.
PATTERNS = {**{s: s for s in SPECS}, **PROTOTYPE_PATTERNS}


def version():
    """libsattn's version, MAJOR.MINOR.PATCH."""
    return _sattn.version()


def tolerance(precision):
    """The documented tolerance of a precision against the fp32 reference (relative, max-norm):
    fp32 1e-4, bf16 1e-2, i8 5e-2; i4 inf (i4 is judged by relative L1 <= 2e-1 and cosine >= 0.98,
    sattn-quant(7))."""
    return _sattn.tolerance(precision)


__all__ = [
    "sparse_attention", "attention_forward", "attention_backward", "reference_attention",
    "reference_attention_backward", "Op", "Plan", "Candidate", "Layout", "Calibration", "select", "layout",
    "calibrate", "canonical_pattern", "PATTERNS", "SPECS", "PROTOTYPE_PATTERNS", "version", "tolerance",
    "Error", "RuntimeFailure", "Usage", "InvalidInput", "ExternalToolFailed", "CheckFailed", "CopyWarning",
]
