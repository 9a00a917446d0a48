"""sattn.capture: forward hooks write each layer's post-RoPE Q/K/V and op file in the layout the
tools read; `sattn run` reads them back."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import sattn
import sattn.capture
import sattn.torch
from conftest import BUILD, SRC, mask_from_layout, max_rel, torch_masked_attention

sys.path.insert(0, os.path.join(SRC, "data"))
from model import ByteLM, Config  # noqa: E402  data/model.py: the model behind data/real


def tiny_bytelm():
    torch.manual_seed(0)
    cfg = Config(d_model=48, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=12, mlp_hidden=64, ctx=64)
    return ByteLM(cfg).eval(), cfg


def test_capture_protocol_of_data_model(tmp_path):
    model, cfg = tiny_bytelm()
    idx = torch.randint(0, 256, (1, 40))
    # What the model itself hands over through its capture dicts (post-RoPE q/k, v).
    boxes = []
    for b in model.blocks:
        b.attn.capture = {}
        boxes.append(b.attn.capture)
    with torch.no_grad():
        ref_logits = model(idx)
    for b in model.blocks:
        b.attn.capture = None

    with torch.no_grad(), sattn.capture.capture([b.attn for b in model.blocks], tmp_path, sample="calib",
                                                dtype="float16", op_name="real_layer{layer}") as cap:
        logits = model(idx)
    assert torch.equal(logits, ref_logits)
    for L in range(cfg.n_layers):
        d = tmp_path / "calib" / f"layer{L}"
        for t in ("q", "k", "v"):
            a = np.load(d / f"{t}.npy")
            assert a.dtype == np.float16 and a.flags.c_contiguous
            np.testing.assert_array_equal(a, boxes[L][t].numpy().astype(np.float16))
        op = json.loads((tmp_path / "ops" / f"layer{L}.json").read_text())
        assert op == {"schema": "sattn.op/v1", "name": f"real_layer{L}", "batch": 1, "heads": 4, "kv_heads": 2,
                      "seq_len": 40, "head_dim": 12, "causal": True, "precision": "fp32"}
        assert cap.source[L] == "module"
    assert all(b.attn.capture is None for b in model.blocks)  # hooks removed, protocol restored

    # The tools read what was written: sattn run checks the layer against its reference.
    r = subprocess.run([os.path.join(BUILD, "bin", "sattn"), "run", str(tmp_path / "ops" / "layer1.json"),
                        "--data", str(tmp_path / "calib" / "layer1"), "--format", "json"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert '"source":"npy"' in r.stdout.replace(" ", "")


class SattnAttentionLayer(torch.nn.Module):
    """An attention layer that calls sattn's operator (recorded without any protocol)."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(16, 3 * 2 * 8)

    def forward(self, x):
        B, S, _ = x.shape
        q, k, v = self.proj(x).view(B, S, 3, 2, 8).permute(2, 0, 3, 1, 4).contiguous().unbind(0)
        return sattn.torch.sparse_attention(q.contiguous(), k.contiguous(), v.contiguous(), pattern="sliding_window",
                                            params={"window_size": 4}, causal=False, scale=0.5)


def test_capture_sattn_calls_and_round_trip(tmp_path):
    torch.manual_seed(2)
    layers = torch.nn.ModuleList([SattnAttentionLayer(), SattnAttentionLayer()])
    x = torch.randn(2, 24, 16)
    with sattn.capture.capture(layers, tmp_path) as cap:
        outs = [layer(x) for layer in layers]
    for L in range(2):
        assert cap.source[L] == "sattn"
        op = sattn.Op.read(tmp_path / "ops" / f"layer{L}.json")[0]
        assert (op.batch, op.heads, op.seq_len, op.causal) == (2, 2, 24, False)
        assert op.softmax_scale == pytest.approx(0.5)
        q, k, v = (np.load(tmp_path / "sample0" / f"layer{L}" / f"{t}.npy") for t in "qkv")
        # The captured tensors reproduce the layer's attention output.
        lay = sattn.layout(q, k, pattern="sliding_window", params={"window_size": 4}, scale=0.5)
        ref = torch_masked_attention(q, k, v, mask_from_layout(lay, 2), scale=0.5)
        assert max_rel(outs[L].detach(), ref) <= 1e-4


def test_capture_errors(tmp_path):
    layer = SattnAttentionLayer()
    with pytest.raises(sattn.Usage, match="ran twice"):
        with sattn.capture.capture([layer], tmp_path):
            layer(torch.randn(1, 8, 16))
            layer(torch.randn(1, 8, 16))
    plain = torch.nn.Linear(16, 16)
    with pytest.raises(sattn.Usage, match="no q/k/v recorded for layer"):
        with sattn.capture.capture([plain], tmp_path):
            plain(torch.randn(1, 8, 16))
    with pytest.raises(sattn.Usage, match="dtype must be float32 or float16"):
        with sattn.capture.capture([layer], tmp_path, dtype="int8"):
            pass
    assert not (tmp_path / "ops").exists()  # nothing written by failed captures


def test_capture_collapses_repeated_kv_heads(tmp_path):
    cap = sattn.capture.Capture([torch.nn.Identity()], tmp_path, "s", "float32", True, 2, "l{layer}")
    q = np.random.default_rng(0).standard_normal((1, 4, 8, 4)).astype(np.float32)
    kv = np.random.default_rng(1).standard_normal((1, 2, 8, 4)).astype(np.float32)
    rep = np.repeat(kv, 2, axis=1)
    k, v = cap._collapse_kv(0, q, rep, rep)
    np.testing.assert_array_equal(k, kv)
    with pytest.raises(sattn.InvalidInput, match="not 2 copies"):
        cap._collapse_kv(0, q, np.concatenate([kv, kv[:, ::-1]], axis=1), rep)
