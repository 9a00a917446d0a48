"""Backward: libsattn's fast backward against its double-precision reference backward (1e-4) and
against torch autograd through masked attention; gradcheck on the reference path."""
import zlib

import numpy as np
import pytest
import torch

import sattn
import sattn.torch
from conftest import SHAPES, SPEC_PARAMS, make_qkv, mask_from_layout, max_rel, torch_masked_attention


def _torch_grads(q, k, v, mask, dout, scale=None):
    qt, kt, vt = (torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in (q, k, v))
    out = torch_masked_attention(qt, kt, vt, mask, scale)
    out.backward(torch.as_tensor(dout).double())
    return qt.grad, kt.grad, vt.grad


@pytest.mark.parametrize("shape_name", sorted(SHAPES))
@pytest.mark.parametrize("spec", sorted(SPEC_PARAMS))
def test_fast_backward_matches_reference(spec, shape_name):
    shape = SHAPES[shape_name]
    causal = shape[-1]
    seed = zlib.crc32(f"bwd/{spec}/{shape_name}".encode()) % 1000
    q, k, v = make_qkv(shape, seed=seed)
    dout = np.random.default_rng(seed + 1).standard_normal(q.shape).astype(np.float32)
    out, lse, lay = sattn.attention_forward(q, k, v, pattern=spec, params=SPEC_PARAMS[spec], causal=causal)
    assert lse.shape == q.shape[:3] and lse.dtype == np.float32
    fast = sattn.attention_backward(q, k, v, out, dout, lse, lay)
    ref = sattn.reference_attention_backward(q, k, v, dout, lay)
    mask = mask_from_layout(lay, shape[1])
    torch_ref = _torch_grads(q, k, v, mask, dout)
    for name, f, r, t in zip(("dq", "dk", "dv"), fast, ref, torch_ref):
        assert f.shape == r.shape == tuple(t.shape), name
        assert max_rel(f, r) <= 1e-4, (name, max_rel(f, r))
        assert max_rel(r, t) <= 1e-6, (name, max_rel(r, t))  # the reference against torch autograd
    # lse: log-sum-exp of the scaled scores over the allowed keys, -inf for empty rows.
    qd, kd = torch.as_tensor(q).double(), torch.as_tensor(k).double().repeat_interleave(shape[1] // shape[2], 1)
    s = (qd @ kd.transpose(-1, -2)) / np.sqrt(shape[5])
    want = torch.logsumexp(s.masked_fill(~torch.as_tensor(mask), float("-inf")), -1)
    empty = ~mask.any(-1)
    assert np.all(np.isneginf(lse[empty]))
    np.testing.assert_allclose(lse[~empty], want.numpy()[~empty], rtol=1e-5, atol=1e-5)
    if empty.any():  # rows with no allowed key: zero gradient
        assert np.all(fast[0][empty] == 0)


def test_bf16_backward_within_tolerance():
    shape = SHAPES["gqa_causal"]
    q, k, v = make_qkv(shape, seed=21)
    dout = np.random.default_rng(22).standard_normal(q.shape).astype(np.float32)
    out, lse, lay = sattn.attention_forward(q, k, v, pattern="sliding_window", params={"window_size": 9},
                                            precision="bf16", causal=True)
    fast = sattn.attention_backward(q, k, v, out, dout, lse, lay)
    ref = sattn.reference_attention_backward(q, k, v, dout, lay)
    for f, r in zip(fast, ref):
        assert 0 < max_rel(f, r) <= sattn.tolerance("bf16")


def test_integer_precisions_have_no_backward():
    q, k, v = make_qkv(SHAPES["plain"])
    out, lse, lay = sattn.attention_forward(q, k, v, pattern="sliding_window", params={"window_size": 4},
                                            precision="i8")
    with pytest.raises(sattn.InvalidInput, match="fp32 and bf16 only"):
        sattn.attention_backward(q, k, v, out, out, lse, lay)
    with pytest.raises(sattn.InvalidInput, match="no backward pass"):
        sattn.torch.sparse_attention(*(torch.from_numpy(x) for x in (q, k, v)), pattern="sliding_window",
                                     params={"window_size": 4}, precision="i8")


def test_autograd_function_matches_masked_torch():
    shape = SHAPES["causal_kv_longer"]
    q, k, v = make_qkv(shape, seed=31)
    params = SPEC_PARAMS["bsr"]
    ts = [torch.tensor(x, requires_grad=True) for x in (q, k, v)]
    out = sattn.torch.sparse_attention(*ts, pattern="bsr", params=params, causal=True)
    assert out.grad_fn is not None
    w = torch.randn(out.shape, dtype=torch.float32)
    (out * w).sum().backward()
    lay = sattn.layout(q, k, pattern="bsr", params=params, causal=True)
    want = _torch_grads(q, k, v, mask_from_layout(lay, shape[1]), w.numpy())
    for t, g in zip(ts, want):
        assert max_rel(t.grad, g) <= 1e-4
    # sattn.sparse_attention(training=True) is the same operator.
    ts2 = [torch.tensor(x, requires_grad=True) for x in (q, k, v)]
    out2 = sattn.sparse_attention(*ts2, pattern="bsr", params=params, causal=True, training=True)
    (out2 * w).sum().backward()
    for a, b in zip(ts, ts2):
        assert torch.equal(a.grad, b.grad)


def test_bf16_tensors_get_bf16_gradients():
    q, k, v = (torch.tensor(x).bfloat16().requires_grad_() for x in make_qkv(SHAPES["plain"], seed=41))
    with pytest.warns(sattn.CopyWarning):
        out = sattn.torch.sparse_attention(q, k, v, pattern="sliding_window", params={"window_size": 4})
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert q.grad.dtype == torch.bfloat16 and torch.isfinite(q.grad.float()).all() and q.grad.abs().sum() > 0


def test_gradcheck_on_the_reference_path():
    q, k, v = (torch.tensor(x, requires_grad=True) for x in make_qkv((1, 2, 1, 10, 14, 4, True), seed=51))
    lay = sattn.layout(q.detach(), k.detach(), pattern="sliding_window", params={"window_size": 3}, causal=True)
    with pytest.warns(UserWarning, match="double precision"):  # inputs are float32: sattn's dtype
        assert torch.autograd.gradcheck(lambda a, b, c: sattn.torch.reference_attention(a, b, c, lay), (q, k, v),
                                        eps=1e-2, atol=2e-3, rtol=1e-2)
    # ...and gradcheck catches a wrong gradient: the same operator with dv doubled fails it.
    class Wrong(sattn.torch.ReferenceAttention):
        @staticmethod
        def backward(ctx, dout):
            dq, dk, dv, _ = sattn.torch.ReferenceAttention.backward(ctx, dout)
            return dq, dk, 2 * dv, None
    with pytest.warns(UserWarning):
        assert not torch.autograd.gradcheck(lambda a, b, c: Wrong.apply(a, b, c, lay), (q, k, v), eps=1e-2,
                                            atol=2e-3, rtol=1e-2, raise_exception=False)


def test_cuda_backend_needs_cuda_tensors():
    # backend="cuda" trains CUDA tensors (tests/python/test_bad_input.py::test_cuda_path runs them
    # where a GPU is); with CPU tensors it is a usage error, as is an unknown backend.
    q, k, v = (torch.from_numpy(x) for x in make_qkv(SHAPES["plain"]))
    with pytest.raises(sattn.Usage, match="backend='cuda' needs CUDA tensors"):
        sattn.torch.sparse_attention(q, k, v, backend="cuda")
    with pytest.raises(sattn.Usage, match="backend must be 'cpu' or 'cuda'"):
        sattn.torch.sparse_attention(q, k, v, backend="gpu")
