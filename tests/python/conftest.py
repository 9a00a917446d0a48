"""Shared helpers of the sattn Python tests (run by CTest: python.*; PYTHONPATH=build/python).

The expected values never come from the code under test: masks are decoded here from the
layout's CSR/BSR arrays with the rules of layout.hpp, and attention is computed by torch in
double precision with that explicit boolean mask.
"""
import math
import os

import numpy as np
import pytest
import torch

import sattn

SRC = os.environ.get("SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("BUILD", os.path.join(SRC, "build"))

# Parameters that make every spec's layout non-trivial at the small sizes the tests use.
SPEC_PARAMS = {
    "dense": {},
    "sliding_window": {"window_size": 9, "dilation": 2},
    "bsr": {"block_size": 16, "keep_ratio": 0.3},
    "block_local_global": {"block_size": 16, "window_blocks": 1, "global_tokens": 16},
    "nm_structured": {"nm_n": 2, "nm_m": 8},
    "topk_per_query": {"topk_k": 20},
    "lsh": {"lsh_buckets": 4, "lsh_rounds": 2, "seed": 7},
    "landmark": {"num_landmarks": 12, "landmark_iters": 2},
    "quest": {"page_size": 16, "top_pages": 2},
}

# (batch, heads, kv_heads, seq_len, kv_len, head_dim, causal): plain, GQA, causal with
# kv_len > seq_len, tails (lengths not a multiple of the block size), empty rows (causal with
# kv_len < seq_len: the first seq_len - kv_len queries see no key).
SHAPES = {
    "plain": (1, 2, 2, 64, 64, 16, False),
    "gqa_causal": (2, 6, 2, 80, 80, 32, True),
    "causal_kv_longer": (1, 4, 2, 48, 112, 16, True),
    "tails": (1, 3, 1, 77, 93, 24, False),
    "empty_rows": (1, 2, 1, 72, 40, 16, True),
}


def make_qkv(shape, seed=0, dtype=np.float32):
    B, H, KVH, S, KV, D, _ = shape
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((B, H, S, D)).astype(dtype)
    k = rng.standard_normal((B, KVH, KV, D)).astype(dtype)
    v = rng.standard_normal((B, KVH, KV, D)).astype(dtype)
    return q, k, v


def mask_from_layout(lay, heads):
    """[batch, heads, rows, cols] bool decoded from the CSR/BSR arrays (layout.hpp's rules:
    BSR blocks masked by bounds and causal at element granularity; CSR lists exact keys)."""
    S, KV = lay.rows, lay.cols
    i = np.arange(S)[:, None]
    j = np.arange(KV)[None, :]
    ok = j < KV
    if lay.causal:
        ok = ok & (j <= i + lay.causal_offset)
    g = heads // lay.kv_heads
    out = np.zeros((lay.batch, heads, S, KV), dtype=bool)
    for b in range(lay.batch):
        for kvh in range(lay.kv_heads):
            ptr, idx = lay.ptr(b, kvh), lay.idx(b, kvh)
            m = np.zeros((S, KV), dtype=bool)
            if lay.block:
                bs = lay.block_size
                assert len(ptr) == lay.block_rows + 1
                for br in range(lay.block_rows):
                    cols = idx[ptr[br]:ptr[br + 1]]
                    assert np.all(np.diff(cols) > 0), "block columns sorted and unique"
                    for c in cols:
                        m[br * bs:(br + 1) * bs, c * bs:(c + 1) * bs] = True
                m &= ok
            else:
                assert len(ptr) == S + 1
                for r in range(S):
                    keys = idx[ptr[r]:ptr[r + 1]]
                    assert np.all(np.diff(keys) > 0), "keys sorted and unique"
                    m[r, keys] = True
                assert not np.any(m & ~ok), "CSR lists only allowed keys"
            out[b, kvh * g:(kvh + 1) * g] = m
    return out


def torch_masked_attention(q, k, v, mask, scale=None):
    """softmax(q k^T * scale masked) v in float64 by torch, with the explicit boolean mask;
    rows with no allowed key give 0."""
    q, k, v = (torch.as_tensor(np.asarray(x)).double() if not isinstance(x, torch.Tensor) else x.double()
               for x in (q, k, v))
    mask = torch.as_tensor(mask)
    g = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(g, dim=1)
    v = v.repeat_interleave(g, dim=1)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = (q @ k.transpose(-1, -2)) * scale
    s = s.masked_fill(~mask, float("-inf"))
    p = torch.softmax(s, dim=-1)
    p = torch.where(mask.any(-1, keepdim=True), p, torch.zeros_like(p))
    return p @ v


def max_rel(out, ref):
    out = torch.as_tensor(np.asarray(out) if not isinstance(out, torch.Tensor) else out).double()
    ref = torch.as_tensor(np.asarray(ref) if not isinstance(ref, torch.Tensor) else ref).double()
    denom = ref.abs().max().item()
    return (out - ref).abs().max().item() / (denom if denom > 0 else 1.0)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
