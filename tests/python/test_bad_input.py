"""Bad input gives a clear sattn exception (the exit-code classes), never a crash.

Non-contiguous inputs are copied with a sattn.CopyWarning (documented in docs/python.md)."""
import warnings

import numpy as np
import pytest
import torch

import sattn
import sattn.torch
from conftest import SHAPES, SPEC_PARAMS, make_qkv


@pytest.fixture
def qkv():
    return make_qkv(SHAPES["gqa_causal"], seed=1)


def test_wrong_dtype_numpy(qkv):
    q, k, v = qkv
    with pytest.raises(sattn.InvalidInput, match=r"q: dtype float64, expected float32"):
        sattn.sparse_attention(q.astype(np.float64), k, v)
    with pytest.raises(sattn.InvalidInput, match=r"v: dtype int32"):
        sattn.sparse_attention(q, k, v.astype(np.int32))


def test_wrong_dtype_torch(qkv):
    q, k, v = (torch.from_numpy(x) for x in qkv)
    with pytest.raises(sattn.InvalidInput, match=r"k: dtype torch.float16, expected torch.float32 or torch.bfloat16"):
        sattn.sparse_attention(q, k.half(), v)
    with pytest.raises(sattn.InvalidInput, match="differ in dtype"):
        sattn.sparse_attention(q.bfloat16(), k, v)


def test_wrong_rank(qkv):
    q, k, v = qkv
    with pytest.raises(sattn.InvalidInput, match=r"q: 3-D, expected 4-D \[batch, heads, len, head_dim\]"):
        sattn.sparse_attention(q[0], k, v)
    with pytest.raises(sattn.InvalidInput, match=r"k: 5-D"):
        sattn.sparse_attention(q, k[None], v)


def test_mismatched_heads_and_shapes(qkv):
    q, k, v = qkv
    with pytest.raises(sattn.InvalidInput, match=r"mismatched heads: q has 5 heads, k/v have 2"):
        sattn.sparse_attention(np.ascontiguousarray(q[:, :5]), k, v)
    with pytest.raises(sattn.InvalidInput, match=r"k and v differ in shape"):
        sattn.sparse_attention(q, k, np.ascontiguousarray(v[:, :1]))
    with pytest.raises(sattn.InvalidInput, match=r"head_dim differs"):
        sattn.sparse_attention(q, np.ascontiguousarray(k[..., :16]), np.ascontiguousarray(v[..., :16]))
    with pytest.raises(sattn.InvalidInput, match=r"batch differs"):
        sattn.sparse_attention(np.ascontiguousarray(q[:1]), k, v)


def test_unknown_pattern_and_params(qkv):
    q, k, v = qkv
    with pytest.raises(sattn.InvalidInput, match=r"unknown pattern 'block_top_k'"):
        sattn.sparse_attention(q, k, v, pattern="block_top_k")
    with pytest.raises(sattn.InvalidInput, match=r"windw_size"):
        sattn.sparse_attention(q, k, v, pattern="sliding_window", params={"windw_size": 4})
    with pytest.raises(sattn.InvalidInput, match=r"attribute 'window_size': must be >= 1 \(got 0\)"):
        sattn.sparse_attention(q, k, v, pattern="sliding_window", params={"window_size": 0})
    with pytest.raises(sattn.InvalidInput, match=r"'heads' comes from the shapes"):
        sattn.sparse_attention(q, k, v, params={"heads": 4})
    with pytest.raises(sattn.InvalidInput, match=r"gqa_group_size = 2"):
        sattn.sparse_attention(q, k, v, params={"gqa_group_size": 2})
    with pytest.raises(sattn.InvalidInput, match="unknown precision"):
        sattn.sparse_attention(q, k, v, precision="fp8")


def test_not_an_array():
    with pytest.raises(sattn.InvalidInput, match="q: expected a numpy array or a torch tensor, got list"):
        sattn.sparse_attention([[1.0]], np.zeros((1, 1, 1, 1), np.float32), np.zeros((1, 1, 1, 1), np.float32))
    q = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises(sattn.InvalidInput, match="mix numpy arrays and torch tensors"):
        sattn.sparse_attention(q, torch.from_numpy(q), q)


def test_non_contiguous_is_copied_with_a_warning(qkv):
    q, k, v = qkv
    qt = np.asfortranarray(q)
    assert not qt.flags.c_contiguous
    with pytest.warns(sattn.CopyWarning, match="q is not C-contiguous: copied"):
        out = sattn.sparse_attention(qt, k, v, pattern="sliding_window", params={"window_size": 4})
    np.testing.assert_array_equal(out, sattn.sparse_attention(q, k, v, pattern="sliding_window",
                                                              params={"window_size": 4}))
    tq = torch.from_numpy(q).transpose(2, 3).contiguous().transpose(2, 3)  # same values, other strides
    assert not tq.is_contiguous()
    with pytest.warns(sattn.CopyWarning, match="q is not contiguous: copied"):
        tout = sattn.sparse_attention(tq, torch.from_numpy(k), torch.from_numpy(v), pattern="sliding_window",
                                      params={"window_size": 4})
    np.testing.assert_array_equal(tout.numpy(), out)
    # Contiguous float32: no warning at all.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sattn.sparse_attention(q, k, v, pattern="sliding_window", params={"window_size": 4})


def test_bad_layout_reuse(qkv):
    q, k, v = qkv
    lay = sattn.layout(q, k, pattern="sliding_window", params={"window_size": 4}, causal=True)
    q2, k2, v2 = make_qkv(SHAPES["plain"])
    with pytest.raises(sattn.InvalidInput, match="do not match the layout's op"):
        sattn.sparse_attention(q2, k2, v2, layout=lay)
    with pytest.raises(sattn.Usage, match="layout must be a sattn.Layout"):
        sattn.sparse_attention(q, k, v, layout="bsr")


def test_backend_and_training_misuse(qkv):
    q, k, v = qkv
    with pytest.raises(sattn.Usage, match="backend must be 'cpu' or 'cuda'"):
        sattn.sparse_attention(q, k, v, backend="rvv")
    with pytest.raises(sattn.Usage, match="backend='cuda' needs CUDA tensors"):
        sattn.sparse_attention(q, k, v, backend="cuda")
    with pytest.raises(sattn.Usage, match="training=True needs torch tensors"):
        sattn.sparse_attention(q, k, v, training=True)


def test_zero_sized_dimensions_are_refused():
    q = np.zeros((1, 2, 0, 8), np.float32)
    k = np.zeros((1, 2, 4, 8), np.float32)
    with pytest.raises(sattn.InvalidInput, match="seq_len"):
        sattn.sparse_attention(q, k, k)


def test_exceptions_mirror_exit_codes():
    assert [c.exit_code for c in (sattn.RuntimeFailure, sattn.Usage, sattn.InvalidInput, sattn.ExternalToolFailed,
                                  sattn.CheckFailed)] == [1, 2, 3, 4, 5]
    assert issubclass(sattn.InvalidInput, ValueError) and issubclass(sattn.InvalidInput, sattn.Error)
    with pytest.raises(sattn.InvalidInput) as e:
        sattn.Op.parse('{"heads": 4, "kv_heads": 3}', filename="op.json")
    assert e.value.location.startswith("op.json:1:")
    assert "kv_heads" in e.value.message and str(e.value).startswith("op.json:1:")
    with pytest.raises(sattn.RuntimeFailure):
        sattn.Op.read("/nonexistent/op.json")


def test_nan_in_data_dependent_specs_is_refused(qkv):
    q, k, v = (x.copy() for x in qkv)
    q[0, 1, 5, 3] = np.nan
    for spec in ("bsr", "topk_per_query", "nm_structured", "lsh"):
        with pytest.raises(sattn.InvalidInput, match="NaN or Inf"):
            sattn.sparse_attention(q, k, v, pattern=spec, causal=True)


def test_cuda_path():
    """CUDA tensors go through libsattn's C API (sattn_forward / sattn_backward on DLPack tensors).
    With a GPU and a CUDA torch the output and the gradients must match the CPU kernels'; without a
    GPU the calls reach libsattn's device check, which names what is missing (no tensor is read
    before it)."""
    try:
        sattn._sattn.require_backend("cuda")
        has_gpu = True
    except sattn.ExternalToolFailed as e:
        has_gpu = False
        assert e.exit_code == 4 and "CUDA" in str(e)
    q, k, v = make_qkv(SHAPES["gqa_causal"], seed=3)
    params = {"window_size": 9}
    if has_gpu and torch.cuda.is_available():
        tq, tk, tv = (torch.from_numpy(x).cuda() for x in (q, k, v))
        out = sattn.sparse_attention(tq, tk, tv, pattern="sliding_window", params=params, causal=True)
        assert out.is_cuda
        ref = sattn.sparse_attention(q, k, v, pattern="sliding_window", params=params, causal=True)
        assert np.abs(out.cpu().numpy() - ref).max() <= 1e-3 * np.abs(ref).max()
        # Training on the GPU: gradients of the CUDA backward against the CPU backward.
        g = torch.from_numpy(np.random.default_rng(4).standard_normal(q.shape).astype(np.float32))
        cq, ck, cv = (torch.from_numpy(x).requires_grad_(True) for x in (q, k, v))
        gq, gk, gv = (torch.from_numpy(x).cuda().requires_grad_(True) for x in (q, k, v))
        sattn.torch.sparse_attention(cq, ck, cv, pattern="sliding_window", params=params, causal=True).backward(g)
        out = sattn.torch.sparse_attention(gq, gk, gv, pattern="sliding_window", params=params, causal=True)
        out.backward(g.cuda())
        for mine, ref in ((gq, cq), (gk, ck), (gv, cv)):
            r = ref.grad.numpy()
            assert np.abs(mine.grad.cpu().numpy() - r).max() <= 1e-3 * np.abs(r).max()
        with pytest.raises(sattn.InvalidInput, match="CUDA tensors train at fp32"):
            sattn.torch.sparse_attention(tq.bfloat16(), tk.bfloat16(), tv.bfloat16(), pattern="dense")
    elif not has_gpu:
        import json
        op = sattn.Op(heads=6, kv_heads=2, seq_len=80, head_dim=32, causal=True, window_size=9)
        doc = json.dumps(dict(op.to_dict(), spec="sliding_window", schema="sattn.op/v1"))
        with pytest.raises(sattn.ExternalToolFailed, match="CUDA"):
            sattn._sattn.forward_cuda(doc, "sliding_window", 4096, 4096, 4096, 4096, [1, 6, 80, 32], [1, 2, 80, 32],
                                      0, None, None)
        with pytest.raises(sattn.ExternalToolFailed, match="CUDA"):
            sattn._sattn.backward_cuda(doc, "sliding_window", *([4096] * 9), [1, 6, 80, 32], [1, 2, 80, 32], 0,
                                       None, None)
    with pytest.raises(sattn.Usage, match="no backend named 'gpu'"):
        sattn._sattn.require_backend("gpu")


@pytest.mark.parametrize("spec", ["dense", "sliding_window", "bsr", "topk_per_query"])
@pytest.mark.parametrize("shape_name", sorted(SHAPES))
def test_cuda_training_matches_cpu(spec, shape_name):
    """sattn.torch.sparse_attention on float32 CUDA tensors (forward with lse, then the CUDA backward
    through sattn_backward) against the same call on CPU tensors (the CPU kernels), for every test
    shape (GQA, causal with kv_len > seq_len, tails, empty rows) and a static, a windowed, a block
    and a data-dependent spec. Without a GPU, libsattn's device check must refuse with exit 4
    naming CUDA (bench/gpu/python_cuda.sh runs this file on a GPU machine)."""
    try:
        sattn._sattn.require_backend("cuda")
    except sattn.ExternalToolFailed as e:
        assert e.exit_code == 4 and "CUDA" in str(e)
        return
    assert torch.cuda.is_available(), "libsattn sees a GPU but this torch has no CUDA"
    shape = SHAPES[shape_name]
    causal = shape[-1]
    q, k, v = make_qkv(shape, seed=11)
    g = np.random.default_rng(12).standard_normal(q.shape).astype(np.float32)
    kw = dict(pattern=spec, params=SPEC_PARAMS[spec], causal=causal)
    cpu = [torch.from_numpy(x).requires_grad_(True) for x in (q, k, v)]
    gpu = [torch.from_numpy(x).cuda().requires_grad_(True) for x in (q, k, v)]
    out_c = sattn.torch.sparse_attention(*cpu, **kw)
    out_g = sattn.torch.sparse_attention(*gpu, **kw)
    assert out_g.is_cuda
    ref = out_c.detach().numpy()
    assert np.abs(out_g.detach().cpu().numpy() - ref).max() <= 1e-3 * max(np.abs(ref).max(), 1e-30)
    out_c.backward(torch.from_numpy(g))
    out_g.backward(torch.from_numpy(g).cuda())
    for name, mine, theirs in zip("qkv", gpu, cpu):
        r = theirs.grad.numpy()
        m = mine.grad.cpu().numpy()
        assert np.isfinite(m).all(), name
        assert np.abs(m - r).max() <= 1e-3 * max(np.abs(r).max(), 1e-30), (name, np.abs(m - r).max(), np.abs(r).max())
