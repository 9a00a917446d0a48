"""Forward: sattn.sparse_attention for every spec and several shapes against torch's own
attention with an explicit boolean mask decoded from sattn.layout's CSR/BSR arrays."""
import zlib

import numpy as np
import pytest
import torch

import sattn
from conftest import SHAPES, SPEC_PARAMS, make_qkv, mask_from_layout, max_rel, torch_masked_attention


@pytest.mark.parametrize("shape_name", sorted(SHAPES))
@pytest.mark.parametrize("spec", sorted(SPEC_PARAMS))
def test_every_spec_matches_masked_torch(spec, shape_name):
    shape = SHAPES[shape_name]
    causal = shape[-1]
    q, k, v = make_qkv(shape, seed=zlib.crc32(f"{spec}/{shape_name}".encode()) % 1000)
    params = SPEC_PARAMS[spec]
    lay = sattn.layout(q, k, pattern=spec, params=params, causal=causal)
    assert lay.spec == spec
    assert lay.causal == causal and lay.rows == shape[3] and lay.cols == shape[4]
    mask = mask_from_layout(lay, shape[1])
    # The library's own element mask agrees with the arrays decoded here.
    np.testing.assert_array_equal(lay.full_mask(), mask)
    assert 0 < mask.sum() < mask.size or spec == "dense"
    ref = torch_masked_attention(q, k, v, mask)

    out = sattn.sparse_attention(q, k, v, pattern=spec, params=params, causal=causal)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == q.shape
    assert max_rel(out, ref) <= sattn.tolerance("fp32")

    # Same through torch tensors: a torch tensor comes back, with the same values.
    tout = sattn.sparse_attention(torch.from_numpy(q), torch.from_numpy(k), torch.from_numpy(v), pattern=spec,
                                  params=params, causal=causal)
    assert isinstance(tout, torch.Tensor) and tout.dtype == torch.float32
    np.testing.assert_array_equal(tout.numpy(), out)

    # The double-precision reference over the same layout.
    assert max_rel(sattn.reference_attention(q, k, v, lay), ref) <= 1e-6

    if shape_name == "empty_rows":
        empty = ~mask.any(-1)  # [B, H, S]
        assert empty.any()
        assert np.all(out[empty] == 0)


@pytest.mark.parametrize("spec", ["sliding_window", "bsr", "topk_per_query"])
def test_bf16_precision_within_tolerance(spec):
    shape = SHAPES["gqa_causal"]
    q, k, v = make_qkv(shape, seed=5)
    params = SPEC_PARAMS[spec]
    lay = sattn.layout(q, k, pattern=spec, params=params, causal=True)
    ref = torch_masked_attention(q, k, v, mask_from_layout(lay, shape[1]))
    out = sattn.sparse_attention(q, k, v, pattern=spec, params=params, causal=True, precision="bf16", layout=None)
    err = max_rel(out, ref)
    assert 0 < err <= sattn.tolerance("bf16")  # rounded inputs: not bit-equal to fp32


def test_bf16_tensors_convert_and_come_back_bf16():
    shape = SHAPES["plain"]
    q, k, v = (torch.from_numpy(x).bfloat16() for x in make_qkv(shape, seed=9))
    with pytest.warns(sattn.CopyWarning, match="bfloat16"):
        out = sattn.sparse_attention(q, k, v, pattern="sliding_window", params={"window_size": 8})
    assert out.dtype == torch.bfloat16
    lay = sattn.layout(q.float(), k.float(), pattern="sliding_window", params={"window_size": 8})
    ref = torch_masked_attention(q.float(), k.float(), v.float(), mask_from_layout(lay, shape[1]))
    assert max_rel(out.float(), ref) <= sattn.tolerance("bf16")


def test_prototype_pattern_names_map_to_specs():
    shape = SHAPES["gqa_causal"]
    q, k, v = make_qkv(shape, seed=3)
    for proto, spec in sattn.PROTOTYPE_PATTERNS.items():
        params = SPEC_PARAMS[spec]
        a = sattn.layout(q, k, pattern=proto, params=params, causal=True)
        b = sattn.layout(q, k, pattern=spec, params=params, causal=True)
        assert a.spec == spec
        np.testing.assert_array_equal(a.full_mask(), b.full_mask())
        np.testing.assert_array_equal(
            sattn.sparse_attention(q, k, v, pattern=proto, params=params, causal=True),
            sattn.sparse_attention(q, k, v, pattern=spec, params=params, causal=True))


def test_sliding_global_token_window_becomes_blocks():
    q, k, v = make_qkv((1, 2, 2, 128, 128, 16, False), seed=4)
    lay = sattn.layout(q, k, pattern="sliding_global", params={"block_size": 16, "window_size": 20,
                                                               "global_tokens": 16})
    assert lay.spec == "block_local_global"
    assert lay.plan.params["window_blocks"] == 2  # ceil(20 / 16)


def test_prototype_quickstart_runs():
    # The prototype README's example, unchanged but for the import.
    Q = np.random.randn(1, 2, 128, 64).astype(np.float32)
    K = np.random.randn(1, 2, 128, 64).astype(np.float32)
    V = np.random.randn(1, 2, 128, 64).astype(np.float32)
    O = sattn.sparse_attention(Q, K, V, pattern="block_topk",
                               params={"block_size": 64, "keep_ratio": 0.12, "global_tokens": 16},
                               precision="bf16", training=False)
    lay = sattn.layout(Q, K, pattern="block_topk", params={"block_size": 64, "keep_ratio": 0.12,
                                                           "global_tokens": 16})
    ref = torch_masked_attention(Q, K, V, mask_from_layout(lay, 2))
    assert O.shape == Q.shape and max_rel(O, ref) <= sattn.tolerance("bf16")


def test_auto_pattern_uses_the_selector():
    q, k, v = make_qkv((1, 4, 4, 256, 256, 32, True), seed=8)
    lay = sattn.layout(q, k, pattern="auto", params={"window_size": 16}, causal=True)
    op = sattn.Op(heads=4, seq_len=256, head_dim=32, causal=True, window_size=16)
    assert lay.spec == sattn.select(op).spec
    ref = torch_masked_attention(q, k, v, mask_from_layout(lay, 4))
    out = sattn.sparse_attention(q, k, v, params={"window_size": 16}, causal=True)
    assert max_rel(out, ref) <= sattn.tolerance("fp32")


def test_explicit_scale_and_layout_reuse():
    shape = SHAPES["tails"]
    q, k, v = make_qkv(shape, seed=11)
    lay = sattn.layout(q, k, pattern="sliding_window", params={"window_size": 5}, scale=0.3)
    ref = torch_masked_attention(q, k, v, mask_from_layout(lay, shape[1]), scale=0.3)
    out = sattn.sparse_attention(q, k, v, layout=lay)
    assert max_rel(out, ref) <= sattn.tolerance("fp32")


@pytest.mark.parametrize("precision", ["i8", "i4"])
def test_integer_precisions_within_tolerance(precision):
    shape = SHAPES["plain"]
    q, k, v = make_qkv(shape, seed=12)
    lay = sattn.layout(q, k, pattern="sliding_window", params={"window_size": 8})
    ref = torch_masked_attention(q, k, v, mask_from_layout(lay, shape[1]))
    out = sattn.sparse_attention(q, k, v, pattern="sliding_window", params={"window_size": 8}, precision=precision)
    if precision == "i8":
        assert max_rel(out, ref) <= sattn.tolerance(precision)
    else:  # i4 is judged by relative L1 and cosine (docs/decisions.md), its max-norm bound is inf
        assert sattn.tolerance(precision) == float("inf")
        o, r = (torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).double() for x in (out, ref))
        rel_l1 = float((o - r).abs().sum() / r.abs().sum())
        assert rel_l1 <= 2e-1
