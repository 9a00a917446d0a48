"""quant_scheme= in the Python package (issue 23): ops carry it, sparse_attention / attention_forward /
layout take it, and the output is the CPU kernel's for that scheme: checked against the double
reference of the same scheme (reference_attention(quantized=True)), against the fp32 torch
reference by the scheme's criteria, and against `sattn run --quant-scheme` (the CLI) on the same
data, byte for byte."""
import json
import os
import subprocess

import numpy as np
import pytest
import torch

import sattn
from conftest import BUILD, SHAPES, make_qkv, mask_from_layout, max_rel, torch_masked_attention

SCHEMES = ["per-tensor", "sage", "smooth", "smooth,block=4", "q=token,k=block,block=8,smooth=k,pv=i8,v=channel"]


def rel_l1(out, ref):
    o, r = (torch.as_tensor(np.asarray(x)).double() for x in (out, ref))
    return float((o - r).abs().sum() / r.abs().sum())


def cosine(out, ref):
    o, r = (torch.as_tensor(np.asarray(x)).double().flatten() for x in (out, ref))
    return float(o @ r / (o.norm() * r.norm()))


def test_op_carries_quant_scheme():
    op = sattn.Op(seq_len=64, head_dim=16, precision="i8", quant_scheme="sage")
    assert op.quant_scheme == "sage"
    assert op.to_dict()["quant_scheme"] == "sage"
    assert json.loads(op.to_json())["quant_scheme"] == "sage"
    # key=value lists come back in canonical form; a name is kept
    op2 = sattn.Op(seq_len=64, head_dim=16, precision="i4", quant_scheme="smooth,block=4")
    assert op2.quant_scheme == "q=token,k=token,block=4,smooth=qk,rotate=1,pv=fix16,v=channel"
    assert sattn.Op(seq_len=64, head_dim=16, precision="i8").quant_scheme is None
    assert op.replace(quant_scheme=None).quant_scheme is None


@pytest.mark.parametrize("bad", ["bogus", "q=tile", "block=0", "pv=i4"])
def test_bad_quant_scheme_is_invalid_input(bad):
    with pytest.raises(sattn.InvalidInput, match="quant_scheme"):
        sattn.Op(seq_len=64, head_dim=16, precision="i8", quant_scheme=bad)
    q, k, v = make_qkv(SHAPES["plain"], seed=3)
    with pytest.raises(sattn.InvalidInput, match="quant_scheme"):
        sattn.sparse_attention(q, k, v, pattern="dense", precision="i8", quant_scheme=bad)


@pytest.mark.parametrize("precision", ["i8", "i4"])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_sparse_attention_applies_the_scheme(precision, scheme):
    shape = SHAPES["gqa_causal"]
    q, k, v = make_qkv(shape, seed=21)
    params = {"window_size": 12}
    out = sattn.sparse_attention(q, k, v, pattern="sliding_window", params=params, causal=True, precision=precision,
                                 quant_scheme=scheme)
    lay = sattn.layout(q, k, pattern="sliding_window", params=params, causal=True, precision=precision,
                       quant_scheme=scheme)
    same = sattn.reference_attention(q, k, v, lay, quantized=True)
    # The kernel and the reference share every integer code and rounding: only fp32 vs double
    # accumulation separates them.
    assert max_rel(out, same) <= 1e-4
    ref = torch_masked_attention(q, k, v, mask_from_layout(lay, shape[1]))
    if scheme != "per-tensor" or precision == "i8":
        if precision == "i8":
            assert max_rel(out, ref) <= sattn.tolerance("i8")
        else:
            assert rel_l1(out, ref) <= 0.2 and cosine(out, ref) >= 0.98


def test_schemes_differ_and_default_is_recommended():
    shape = SHAPES["plain"]
    q, k, v = make_qkv(shape, seed=22)
    run = lambda s, p="i8": np.asarray(sattn.sparse_attention(q, k, v, pattern="dense", precision=p, quant_scheme=s))
    assert np.array_equal(run(None), run("smooth"))  # head_dim 16: smooth with its rotation
    assert np.array_equal(run(None, "i4"), run("smooth,block=2", "i4"))
    assert not np.array_equal(run("per-tensor"), run("smooth"))
    assert not np.array_equal(run("sage"), run("smooth"))


def test_attention_forward_and_layout_reuse():
    shape = SHAPES["tails"]
    q, k, v = make_qkv(shape, seed=23)
    out, lse, lay = sattn.attention_forward(q, k, v, pattern="dense", precision="i8", quant_scheme="sage")
    assert lay.plan.op.quant_scheme == "sage"
    again = sattn.sparse_attention(q, k, v, layout=lay)
    assert np.array_equal(np.asarray(out), np.asarray(again))
    with pytest.raises(sattn.Usage, match="quant_scheme"):
        sattn.sparse_attention(q, k, v, layout=lay, quant_scheme="per-tensor")
    # The same scheme in another spelling is the same scheme.
    lay4 = sattn.layout(q, k, pattern="dense", precision="i4", quant_scheme="smooth,block=4,rotate=0")
    same = sattn.sparse_attention(q, k, v, layout=lay4,
                                  quant_scheme="q=token,k=token,block=4,smooth=qk,rotate=0,pv=fix16,v=channel")
    assert np.array_equal(np.asarray(same), np.asarray(sattn.sparse_attention(q, k, v, layout=lay4)))
    with pytest.raises(sattn.Usage, match="quantized=True needs an i8 or i4 op"):
        fp = sattn.layout(q, k, pattern="dense")
        sattn.reference_attention(q, k, v, fp, quantized=True)
    with pytest.raises(sattn.InvalidInput, match="no backward"):
        sattn.sparse_attention(torch.as_tensor(q), torch.as_tensor(k), torch.as_tensor(v), pattern="dense",
                               precision="i8", quant_scheme="sage", training=True)


@pytest.mark.parametrize("precision,scheme", [("i8", "sage"), ("i4", "smooth,block=4"), ("i8", "per-tensor")])
def test_same_output_as_the_cli(tmp_path, precision, scheme):
    shape = (1, 2, 1, 48, 48, 16, True)
    q, k, v = make_qkv(shape, seed=24)
    data = tmp_path / "data"
    data.mkdir()
    for name, a in (("q", q), ("k", k), ("v", v)):
        np.save(data / f"{name}.npy", np.asarray(a))
    op = {"schema": "sattn.op/v1", "name": "a", "batch": 1, "heads": 2, "kv_heads": 1, "seq_len": 48, "kv_len": 48,
          "head_dim": 16, "causal": True, "precision": precision, "spec": "sliding_window", "window_size": 10}
    (tmp_path / "op.json").write_text(json.dumps(op))
    r = subprocess.run([os.path.join(BUILD, "bin", "sattn"), "run", "--backend", "cpu", "--threads", "1",
                        "--quant-scheme", scheme, "--data", str(data), "--out-dir", str(tmp_path / "out"),
                        str(tmp_path / "op.json")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    cli = np.load(tmp_path / "out" / "a" / "o.npy") if (tmp_path / "out" / "a").is_dir() else \
        np.load(next((tmp_path / "out").rglob("o.npy")))
    py = sattn.sparse_attention(q, k, v, pattern="sliding_window", params={"window_size": 10}, causal=True,
                                precision=precision, quant_scheme=scheme, threads=1)
    assert np.array_equal(cli, np.asarray(py))
