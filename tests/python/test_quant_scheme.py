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


def test_calibrate_quant_scheme_matches_the_cli(tmp_path):
    """sattn.calibrate(quant_scheme=...) is sattn-calibrate --quant-scheme: the same schemes compared
    with the same figures, the named scheme applied, its fixed tables computed from the samples."""
    op = sattn.Op(heads=4, kv_heads=2, seq_len=48, head_dim=16, causal=True, spec="dense", precision="i4")
    q, k, v = make_qkv((1, 4, 2, 48, 48, 16, True), seed=7)
    d = tmp_path / "s0"
    d.mkdir()
    for name, x in (("q", q), ("k", k), ("v", v)):
        np.save(d / f"{name}.npy", x)
    cal = sattn.calibrate(op, [(q, k, v)], precision="i4", quant_scheme="smooth,block=2")
    r = cal.report
    assert r["schema"] == "sattn.calibration-schemes/v1" and r["precision"] == "i4" and r["samples"] == 1
    rows = {s["scheme"]: s for s in r["schemes"]}
    assert "smooth,block=2" in rows and "per-tensor" in rows and cal.recommended in rows
    assert sum(s["best"] for s in r["schemes"]) == 1
    # The named scheme is the one applied, whatever was recommended.
    assert cal.plan.op.quant_scheme == "q=token,k=token,block=2,smooth=qk,rotate=1,pv=fix16,v=channel"
    assert cal.plan.op.precision == "i4"
    # Tables: the shapes of sattn-quant(7) FIXED SCALES for per-token Q/K, per-channel V, smooth=qk.
    t = cal.tables
    assert {n: a.shape for n, a in t.items()} == {"scale_q": (1, 4, 48), "scale_k": (1, 2, 48), "scale_v": (1, 2, 16),
                                                  "mean_q": (1, 4, 24, 16), "mean_k": (1, 2, 16)}
    assert all(a.dtype == np.float32 and np.isfinite(a).all() for a in t.values())
    # V per channel with pv=fix16: max over keys of |v| / 32767, computed here independently.
    assert np.allclose(t["scale_v"], np.abs(v).max(axis=2) / 32767, rtol=1e-6)
    # K smoothing subtracts the per-channel mean of K over the keys (up to the rotation, which is
    # orthonormal: the mean's norm is kept).
    assert np.allclose(np.linalg.norm(t["mean_k"], axis=-1), np.linalg.norm(k.mean(axis=2), axis=-1), rtol=1e-4)
    assert (t["scale_q"] > 0).all() and (t["scale_k"] > 0).all()
    # The CLI on the same data: the same rows and figures.
    mlir = tmp_path / "op.json"
    mlir.write_text(json.dumps({"schema": "sattn.op/v1", "name": "cal", "batch": 1, "heads": 4, "kv_heads": 2,
                                "seq_len": 48, "head_dim": 16, "causal": True, "spec": "dense", "precision": "i4"}))
    p = subprocess.run([os.path.join(BUILD, "bin", "sattn"), "calibrate", str(mlir), "--quant-scheme", "smooth,block=2",
                        "--data", str(d), "--threads", "1"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    cli = json.loads(p.stdout.splitlines()[0])
    assert cli["recommended"] == r["recommended"]
    assert [(s["scheme"], s["canonical"], s["best"]) for s in cli["schemes"]] == \
        [(s["scheme"], s["canonical"], s["best"]) for s in r["schemes"]]
    for a, b in zip(cli["schemes"], r["schemes"]):
        for m in ("max_rel", "rel_l1", "cosine"):
            assert a[m] == pytest.approx(b[m], rel=1e-9, abs=1e-12), (a["scheme"], m)
    # schemes=True without a name: the recommended scheme is applied.
    rec = sattn.calibrate(op, [(q, k, v)], precision="i4", schemes=True)
    assert rec.plan.op.quant_scheme == next(s["canonical"] for s in rec.report["schemes"] if s["best"])
    # Bad input: per-tensor has no tables, an unknown scheme, per-tensor methods mixed in.
    with pytest.raises(sattn.Usage, match="per-tensor has no tables"):
        sattn.calibrate(op, [(q, k, v)], precision="i4", quant_scheme="per-tensor")
    with pytest.raises(sattn.Usage, match="quant_scheme"):
        sattn.calibrate(op, [(q, k, v)], precision="i4", quant_scheme="q=tile")
    with pytest.raises(sattn.Usage, match="per-tensor scale methods"):
        sattn.calibrate(op, [(q, k, v)], quant_scheme="smooth", methods=["absmax"])
