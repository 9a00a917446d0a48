"""The rest of the package: Op, select (with explain), layout arrays, calibrate, help(sattn),
and the installed package (cmake --install)."""
import json
import os
import pydoc
import subprocess
import sys

import numpy as np
import pytest

import sattn
from conftest import BUILD, SRC, make_qkv


def test_op_from_attributes_and_files(tmp_path):
    op = sattn.Op(name="l0", heads=8, kv_heads=2, seq_len=512, head_dim=64, causal=True, window_size=32)
    assert (op.heads, op.kv_heads, op.seq_len, op.kv_len, op.head_dim) == (8, 2, 512, 512, 64)
    assert op.causal and op.precision == "fp32" and op.softmax_scale == pytest.approx(1 / 8)
    d = op.to_dict()
    assert d["window_size"] == 32 and d["name"] == "l0"
    # The prototype's attribute names are accepted.
    assert sattn.Op(num_heads=6, gqa_group_size=3, seq_len=64).kv_heads == 2
    # Round trip through a file every tool reads.
    f = tmp_path / "op.json"
    f.write_text(op.to_json() + "\n")
    back = sattn.Op.read(f)
    assert len(back) == 1 and back[0].to_dict() == d
    assert back[0].location.startswith(str(f))
    mlir = sattn.Op.parse('"sattn.sparse_attention"() { window_size = 8 : i64, seq_len = 128 : i64 } : () -> ()')
    assert mlir[0].seq_len == 128 and mlir[0].to_dict()["window_size"] == 8
    assert op.replace(window_size=None, keep_ratio=0.2).to_dict().get("window_size") is None
    assert op.params("sliding_window") == {"window_size": 32, "dilation": 1, "wrap": False}


def test_unknown_attribute_warns_in_files_and_fails_in_kwargs():
    with pytest.warns(UserWarning, match="unknown attribute 'windowsize'"):
        sattn.Op.parse('{"seq_len": 64, "windowsize": 4}')
    with pytest.raises(sattn.InvalidInput, match="windowsize"):
        sattn.Op(seq_len=64, windowsize=4)


def test_select_with_explain(capsys, monkeypatch):
    monkeypatch.delenv("SATTN_FORCE_SPEC", raising=False)
    op = sattn.Op(heads=8, seq_len=4096, head_dim=64, causal=True, keep_ratio=0.1)
    plan = sattn.select(op, explain=True)
    err = capsys.readouterr().err
    assert plan.spec == "bsr" and plan.kind in ("cost", "rule")
    assert "reason: " + plan.reason in err and "candidate" in err
    assert any(line.startswith("*") and " bsr " in line for line in err.splitlines())
    assert {c.spec for c in plan.candidates} >= {"bsr", "dense"}
    assert all(isinstance(c.terms, dict) for c in plan.candidates)
    assert plan.params["keep_ratio"] == 0.1
    forced = sattn.select(op, force="dense")
    assert forced.spec == "dense" and forced.kind == "override"
    assert sattn.select(op, disable=["bsr"]).spec != "bsr"
    # The environment ranks below arguments, as on the command line.
    monkeypatch.setenv("SATTN_FORCE_SPEC", "sliding_window")
    assert sattn.select(op.replace(window_size=64)).spec == "sliding_window"
    assert sattn.select(op.replace(window_size=64), force="dense").spec == "dense"
    # A profile's select section applies when the argument is left out (profiles/imc.yaml: imc);
    # profiles are found by name in ./profiles, as from the repository root.
    monkeypatch.chdir(SRC)
    assert sattn.select(op).backend == "cpu" and sattn.select(op, profile="imc").backend == "imc"
    assert sattn.select(op, profile="imc", backend="rvv").backend == "rvv"
    with pytest.raises(sattn.Usage, match="unknown spec 'dens'"):
        sattn.select(op, force="dens")


def _real_sample(layer=1, seq=256):
    """Query heads 0-2 and KV head 0 of a layer of the real activations (data/real, calib)."""
    d = os.path.join(SRC, "data", "real", "calib", f"layer{layer}")
    q, k, v = (np.load(os.path.join(d, f"{n}.npy")).astype(np.float32) for n in "qkv")
    return tuple(np.ascontiguousarray(a) for a in (q[:, 0:3, :seq], k[:, 0:1, :seq], v[:, 0:1, :seq]))


def test_select_min_recall(tmp_path, monkeypatch):
    monkeypatch.delenv("SATTN_MIN_RECALL", raising=False)
    op = sattn.Op(heads=3, kv_heads=1, seq_len=256, head_dim=64, causal=True)
    # 1.0: only dense reaches it; 0: the cheapest feasible point of the grid.
    dense = sattn.select(op, min_recall=1.0)
    assert dense.spec == "dense" and dense.kind == "recall"
    cheapest = sattn.select(op, min_recall=0, seed=7)
    feasible = [c for c in cheapest.candidates if c.feasible]
    assert cheapest.spec != "dense" and "seed 7" in cheapest.reason
    assert next(c for c in feasible if c.terms["chosen"]).cost == min(c.cost for c in feasible)
    # Real activations, in memory and as a directory: the same choice; the chosen point is the
    # cheapest whose recall bound reaches R.
    sample = _real_sample()
    for n, a in zip("qkv", sample):
        np.save(tmp_path / f"{n}.npy", a)
    plan = sattn.select(op, min_recall=0.9, data=[sample])
    by_dir = sattn.select(op, min_recall=0.9, data=str(tmp_path))
    assert plan.kind == "recall" and plan.spec != "dense"
    assert (plan.spec, plan.params, plan.reason) == (by_dir.spec, by_dir.params, by_dir.reason)
    chosen = next(c for c in plan.candidates if c.terms["chosen"])
    assert chosen.terms["recall"] >= 0.9
    assert all(c.terms["recall"] < 0.9 for c in plan.candidates if c.feasible and c.cost < chosen.cost)
    # Its recall_mean (the worst head's mean row recall) against a direct numpy computation.
    q, k, v = sample
    lay = sattn.layout(q, k, plan=plan)
    s = np.einsum("bhid,bjd->bhij", q.astype(np.float64), k[:, 0].astype(np.float64)) / 8.0
    s += np.triu(np.full((256, 256), -np.inf), 1)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    kept = (p * lay.full_mask()).sum(-1)  # [1, 3, 256] row recall
    assert chosen.terms["recall_mean"] == pytest.approx(kept.mean(-1).min(), abs=1e-9)
    assert chosen.terms["recall"] <= chosen.terms["recall_mean"]
    # The environment's target applies when the argument is left out; the argument outranks it.
    monkeypatch.setenv("SATTN_MIN_RECALL", "1")
    assert sattn.select(op).spec == "dense"
    assert sattn.select(op, min_recall=0).spec != "dense"
    monkeypatch.delenv("SATTN_MIN_RECALL")
    # The bound's confidence: 0.5 compares the plain mean, so it never chooses a dearer point.
    plain = sattn.select(op, min_recall=0.9, data=[sample], recall_confidence=0.5)
    assert "at confidence 0.5" in plain.reason and "at confidence 0.95" in plan.reason
    cost = lambda p: next(c.cost for c in p.candidates if c.terms["chosen"])
    assert cost(plain) <= cost(plan)
    assert all(c.terms["recall"] == pytest.approx(c.terms["recall_mean"]) for c in plain.candidates
               if c.feasible and c.spec != "dense")
    with pytest.raises(sattn.Usage, match="--recall-confidence must be from 0.5 to below 1"):
        sattn.select(op, min_recall=0.9, recall_confidence=1.0)
    # Bad input: the target outside [0, 1], a sample of the wrong shape or with a NaN (invalid
    # input), a missing directory (I/O); seed with data.
    for bad in (1.5, -0.1, float("nan")):
        with pytest.raises(sattn.InvalidInput, match="--min-recall must be from 0 to 1"):
            sattn.select(op, min_recall=bad)
    with pytest.raises(sattn.InvalidInput, match="calibration sample 0: q has shape"):
        sattn.select(op, min_recall=0.9, data=[(q[:, :2], k, v)])
    nan_q = q.copy()
    nan_q[0, 1, 5, 3] = np.nan
    with pytest.raises(sattn.InvalidInput, match="calibration sample 0: q element .* is NaN"):
        sattn.select(op, min_recall=0.9, data=[(nan_q, k, v)])
    with pytest.raises(sattn.RuntimeFailure, match="nope/q.npy"):
        sattn.select(op, min_recall=0.9, data=str(tmp_path / "nope"))
    with pytest.raises(sattn.Usage, match="data or seed"):
        sattn.select(op, min_recall=0.9, data=[sample], seed=3)


def _cv_confidence(plan, target, cap=0.95):
    """The confidence --recall-bound cv picks, recomputed from the plan's per-(sample, head) means
    (sattn-select(1), QUALITY TARGET): leave-one-out over the samples, for each confidence of the
    ladder the fold's choice (cheapest point whose worst head's mean - z sd / sqrt(n - 1) over the
    other samples reaches the target) scored on the left-out sample; the smallest confidence whose
    worst head's mean of those scores reaches the target, else the cap."""
    from statistics import NormalDist
    pts = sorted((c for c in plan.candidates if c.feasible), key=lambda c: c.cost)
    n = None
    means = []
    for c in pts:
        if c.spec == "dense":
            means.append(None)
            continue
        m = np.array(c.terms["recall_heads"])[:, 0]
        means.append(m)
    heads_total = len(next(m for m in means if m is not None))
    n = heads_total // 3  # the op has 3 query heads
    means = [None if m is None else m.reshape(n, 3) for m in means]
    ladder = [c / 100 for c in range(50, 100, 5) if c / 100 < cap - 1e-12] + [cap]
    for conf in ladder:
        z = NormalDist().inv_cdf(conf)
        held = np.zeros(3)
        for f in range(n):
            for m in means:
                if m is None:
                    held += 1.0
                    break
                rest = np.delete(m, f, axis=0)
                bound = np.clip(rest.mean(0) - z * rest.std(0, ddof=1) / np.sqrt(n - 1), 0, 1).min()
                if bound >= target:
                    held += m[f]
                    break
        if (held / n).min() >= target:
            return conf
    return cap


def test_select_recall_bound_cv(monkeypatch):
    """recall_bound="cv": the confidence chosen by leave-one-out cross-validation over the samples
    (recomputed here from the plan's means), then the mean bound at it: the same choice as
    recall_bound="mean" at that confidence."""
    for var in ("SATTN_MIN_RECALL", "SATTN_RECALL_BOUND", "SATTN_RECALL_CONFIDENCE"):
        monkeypatch.delenv(var, raising=False)
    op = sattn.Op(heads=3, kv_heads=1, seq_len=256, head_dim=64, causal=True)
    # Four samples: both windows of data/real (calib, eval), KV heads 0 and 1 of layer 1.
    four = []
    for split in ("calib", "eval"):
        d = os.path.join(SRC, "data", "real", split, "layer1")
        q, k, v = (np.load(os.path.join(d, f"{n}.npy")).astype(np.float32) for n in "qkv")
        for g in range(2):
            four.append(tuple(np.ascontiguousarray(a) for a in
                              (q[:, 3 * g:3 * g + 3, :256], k[:, g:g + 1, :256], v[:, g:g + 1, :256])))
    seen = set()
    for target in [round(0.7 + 0.01 * i, 2) for i in range(21)] + [0.95]:
        cv = sattn.select(op, min_recall=target, data=four, recall_bound="cv")
        assert "chosen by leave-one-out cross-validation over the 4 samples" in cv.reason, cv.reason
        conf = _cv_confidence(cv, target)
        seen.add(conf)
        assert f"; confidence {conf:g} chosen" in cv.reason, (conf, cv.reason)
        mean = sattn.select(op, min_recall=target, data=four, recall_bound="mean", recall_confidence=conf)
        assert (cv.spec, cv.params) == (mean.spec, mean.params)
        assert "for the mean over text" in mean.reason
        # The cap: cv never chooses a dearer point than the mean bound at the given confidence.
        capped = sattn.select(op, min_recall=target, data=four, recall_bound="mean")
        cost = lambda p: next(c.cost for c in p.candidates if c.terms["chosen"])
        assert cost(cv) <= cost(capped)
    # The sweep reaches confidences above the plain mean (cross-validation does not always pass 0.5).
    assert max(seen) > 0.5 and min(seen) == 0.5, seen
    # Fewer than 4 samples: the mean bound at the given confidence, said so.
    two = sattn.select(op, min_recall=0.9, data=four[:2], recall_bound="cv")
    assert "cv needs 4 or more samples" in two.reason
    two_mean = sattn.select(op, min_recall=0.9, data=four[:2], recall_bound="mean")
    assert (two.spec, two.params) == (two_mean.spec, two_mean.params)
    # The environment's bound applies when the argument is left out; the argument outranks it.
    monkeypatch.setenv("SATTN_RECALL_BOUND", "cv")
    assert "cross-validation" in sattn.select(op, min_recall=0.9, data=four).reason
    assert "cross-validation" not in sattn.select(op, min_recall=0.9, data=four, recall_bound="window").reason
    monkeypatch.delenv("SATTN_RECALL_BOUND")
    with pytest.raises(sattn.Usage, match="--recall-bound must be window, mean or cv \\(got 'median'\\)"):
        sattn.select(op, min_recall=0.9, data=four, recall_bound="median")


def test_layout_arrays():
    q, k, _ = make_qkv((1, 4, 2, 100, 100, 16, True))
    lay = sattn.layout(q, k, pattern="sliding_window", params={"window_size": 3}, causal=True)
    assert not lay.block and lay.shared and lay.kv_heads == 2
    ptr, idx = lay.ptr(), lay.idx()
    assert ptr.dtype == np.int64 and idx.dtype == np.int32 and len(ptr) == 101
    assert not ptr.flags.writeable  # views of the layout, read-only
    # causal window 3: row i sees max(0, i-3) .. i
    assert list(idx[ptr[10]:ptr[11]]) == [7, 8, 9, 10]
    assert lay.allowed_pairs() == sum(min(i, 3) + 1 for i in range(100))
    assert lay.density == pytest.approx(lay.allowed_pairs() / 100 / 100)
    blk = sattn.layout(q, k, pattern="bsr", params={"block_size": 32, "keep_ratio": 0.5})
    assert blk.block and blk.block_size == 32 and blk.block_rows == 4 and not blk.shared
    assert len(blk.ptr(0, 1)) == 5
    with pytest.raises(sattn.Usage, match="out of range"):
        blk.ptr(0, 2)
    # From an Op alone (a data-independent spec needs no data); from a plan.
    op = sattn.Op(heads=2, seq_len=64, head_dim=8, window_size=2, spec="sliding_window")
    assert sattn.layout(op=op).allowed_pairs() == sum(min(i, 2) + 1 + min(63 - i, 2) for i in range(64))
    plan = sattn.select(op)
    assert sattn.layout(plan=plan).spec == "sliding_window"
    with pytest.raises(sattn.InvalidInput, match="no data|needs"):
        sattn.layout(op=op.replace(spec="bsr", window_size=None, seq_len=128, block_size=32))


def test_calibrate_arrays_dirs_and_synthetic(tmp_path):
    op = sattn.Op(heads=2, seq_len=64, head_dim=16, window_size=8, spec="sliding_window")
    q, k, v = make_qkv((1, 2, 2, 64, 64, 16, False), seed=3)
    cal = sattn.calibrate(op, [(q, k, v)], methods=["absmax", "mse"])
    assert cal.recommended in ("absmax", "mse")
    assert cal.report["schema"] == "sattn.calibration/v1" and len(cal.report["methods"]) == 2
    # absmax: the scale is max|x| / 127, computed here independently.
    absmax = next(m for m in cal.report["methods"] if m["method"] == "absmax")
    assert absmax["tensors"]["q"]["scale"] == pytest.approx(np.abs(q).max() / 127, rel=1e-6)
    assert cal.plan.op.precision == "i8" and cal.plan.op.to_dict()["scale_q"] == pytest.approx(cal.scales["q"])
    # Running with the calibrated plan: i8 with those scales, within i8's tolerance of fp32.
    lay = sattn.layout(q, k, plan=cal.plan)
    out_i8 = sattn.sparse_attention(q, k, v, layout=lay)
    ref = sattn.reference_attention(q, k, v, lay)
    err = np.abs(out_i8 - ref).max() / np.abs(ref).max()
    assert 0 < err <= sattn.tolerance("i8")
    # The same data from a directory of .npy files gives the same report.
    d = tmp_path / "s0"
    d.mkdir()
    for name, x in (("q", q), ("k", k), ("v", v)):
        np.save(d / f"{name}.npy", x)
    from_dir = sattn.calibrate(op, data=str(d), methods=["absmax", "mse"])
    assert from_dir.scales == cal.scales and from_dir.report["data"]["source"] == "npy"
    syn = sattn.calibrate(op, precision="i4")
    assert syn.report["precision"] == "i4" and syn.report["data"]["source"] == "synthetic"
    with pytest.raises(sattn.Usage, match="precision must be i8 or i4"):
        sattn.calibrate(op, precision="bf16")
    with pytest.raises(sattn.InvalidInput, match="all-zero|zero"):
        sattn.calibrate(op, [(np.zeros_like(q), k, v)])


def test_help_teaches():
    text = pydoc.render_doc(sattn, renderer=pydoc.plaintext)
    for needle in ("Quickstart", "sparse_attention(q, k, v", "block_topk -> bsr", "sattn.torch",
                   "InvalidInput (3", "CopyWarning", "select(", "layout(", "calibrate("):
        assert needle in text, needle
    for fn in (sattn.sparse_attention, sattn.select, sattn.layout, sattn.calibrate, sattn.attention_forward,
               sattn.attention_backward, sattn.reference_attention):
        assert fn.__doc__ and len(fn.__doc__) > 200, fn.__name__
    assert sattn.__version__.count(".") == 2


def test_type_stubs_cover_the_extension():
    import sattn._sattn as ext
    stub = open(os.path.join(os.path.dirname(sattn.__file__), "_sattn.pyi")).read()
    public = [n for n in dir(ext) if not n.startswith("_")]
    missing = [n for n in public if f"def {n}(" not in stub and f"class {n}" not in stub]
    assert not missing, missing
    assert os.path.exists(os.path.join(os.path.dirname(sattn.__file__), "py.typed"))


def test_cmake_install_gives_an_importable_package(tmp_path):
    prefix = tmp_path / "prefix"
    r = subprocess.run(["cmake", "--install", BUILD, "--prefix", str(prefix)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    pkg = prefix / "lib" / "python3" / "dist-packages"
    assert (pkg / "sattn" / "__init__.py").exists() and (pkg / "sattn" / "torch.py").exists()
    code = ("import sattn, numpy as np; q = np.ones((1, 1, 8, 4), np.float32); "
            "print(sattn.__file__); print(sattn.sparse_attention(q, q, q, pattern='dense').sum())")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LD_LIBRARY_PATH")}
    env["PYTHONPATH"] = str(pkg)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    where, total = r.stdout.split()
    assert where.startswith(str(pkg)) and float(total) == pytest.approx(32.0)
