"""Logit soft-capping (softcap) and an explicit scale through the Python package: forward,
backward and the torch operator, against torch's own attention with the cap applied."""
import math

import numpy as np
import pytest
import torch

import sattn
import sattn.torch as st
from conftest import SHAPES, SPEC_PARAMS, make_qkv, mask_from_layout, max_rel


def capped_attention(q, k, v, mask, scale, cap):
    """softmax(cap * tanh(q k^T * scale / cap), masked) v in float64 by torch (differentiable)."""
    g = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(g, dim=1)
    v = v.repeat_interleave(g, dim=1)
    s = (q @ k.transpose(-1, -2)) * scale
    s = cap * torch.tanh(s / cap)
    mask = torch.as_tensor(mask)
    s = s.masked_fill(~mask, float("-inf"))
    p = torch.softmax(s, dim=-1)
    p = torch.where(mask.any(-1, keepdim=True), p, torch.zeros_like(p))
    return p @ v


@pytest.mark.parametrize("spec", ["dense", "sliding_window", "bsr", "quest"])
def test_softcap_and_scale_forward_match_torch(spec):
    shape = SHAPES["gqa_causal"]
    q, k, v = make_qkv(shape, seed=21)
    q *= 4  # scores well past the cap
    params = SPEC_PARAMS[spec]
    scale, cap = 0.3, 2.0
    out = sattn.sparse_attention(q, k, v, pattern=spec, params=params, causal=True, scale=scale, softcap=cap)
    lay = sattn.layout(q, k, pattern=spec, params=params, causal=True, scale=scale, softcap=cap)
    assert lay.plan.op.softcap == cap and lay.plan.op.softmax_scale == scale
    mask = mask_from_layout(lay, shape[1])
    qt, kt, vt = (torch.from_numpy(x).double() for x in (q, k, v))
    ref = capped_attention(qt, kt, vt, mask, scale, cap)
    assert max_rel(out, ref) <= sattn.tolerance("fp32")
    # The cap matters at these scores: the uncapped output is far from it.
    uncapped = sattn.sparse_attention(q, k, v, pattern=spec, params=params, causal=True, scale=scale, layout=None)
    assert max_rel(uncapped, ref) > 1e-2
    # The library's reference agrees too.
    assert max_rel(sattn.reference_attention(q, k, v, lay), ref) <= 1e-6


def test_softcap_backward_matches_torch_autograd():
    shape = SHAPES["causal_kv_longer"]
    q, k, v = make_qkv(shape, seed=8)
    q *= 3
    scale, cap = 0.25, 1.5
    out, lse, lay = sattn.attention_forward(q, k, v, pattern="bsr", params=SPEC_PARAMS["bsr"], causal=True,
                                            scale=scale, softcap=cap)
    dout = np.random.default_rng(2).standard_normal(out.shape).astype(np.float32)
    dq, dk, dv = sattn.attention_backward(q, k, v, out, dout, lse, lay)
    mask = mask_from_layout(lay, shape[1])
    qt, kt, vt = (torch.from_numpy(x).double().requires_grad_() for x in (q, k, v))
    ref = capped_attention(qt, kt, vt, mask, scale, cap)
    ref.backward(torch.from_numpy(dout).double())
    assert max_rel(out, ref.detach()) <= sattn.tolerance("fp32")
    for got, want in ((dq, qt.grad), (dk, kt.grad), (dv, vt.grad)):
        assert max_rel(got, want) <= 1e-4


def test_torch_operator_carries_softcap_into_its_gradient():
    shape = SHAPES["plain"]
    q, k, v = (torch.from_numpy(x).requires_grad_() for x in make_qkv(shape, seed=4))
    cap = 1.0
    out = st.sparse_attention(q, k, v, pattern="dense", causal=False, softcap=cap)
    out.sum().backward()
    qd, kd, vd = (x.detach().double().requires_grad_() for x in (q, k, v))
    mask = np.ones((shape[0], shape[1], shape[3], shape[4]), dtype=bool)
    ref = capped_attention(qd, kd, vd, mask, 1.0 / math.sqrt(shape[5]), cap)
    ref.sum().backward()
    assert max_rel(out.detach(), ref.detach()) <= sattn.tolerance("fp32")
    for got, want in ((q.grad, qd.grad), (k.grad, kd.grad), (v.grad, vd.grad)):
        assert max_rel(got, want) <= 1e-4


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), "2", True])
def test_bad_softcap_is_invalid_input(bad):
    q, k, v = make_qkv(SHAPES["plain"], seed=1)
    with pytest.raises(sattn.InvalidInput, match="softcap"):
        sattn.sparse_attention(q, k, v, pattern="dense", softcap=bad)
