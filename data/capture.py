#!/usr/bin/env python3
"""Capture the post-RoPE Q, K and V of every layer of the trained model on
held-out text, and write them under data/real/ (see README.md).

  python3 data/capture.py [--ckpt .gpu-carry/model/ckpt.pt] [--out data/real]

Two samples of --seq bytes, both from the held-out split (files never
trained on): "calib" starts 3/4 of the way into the held-out text (in
shutil.py), "eval" half way (in multiprocessing/managers.py), each offset
aligned down to 1024.  The forward pass runs in fp32
without autocast; the arrays are saved as float16, C order, [1, H, S, D].
Q and K are after RoPE and before the 1/sqrt(head_dim) softmax scale.
Also writes data/real/ops/layer{L}.json (sattn.op/v1) and adds
"capture_stats" to data/real/train-log.json.
"""
import argparse
import hashlib
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Config, ByteLM, load_corpus  # noqa: E402


def attn_stats(q, k, last=64):
    """q: [H, S, D], k: [Hkv, S, D] float32 numpy (as saved).  Returns per-head
    mean (over queries i >= last) of softmax mass on the last `last` keys
    (j in [i-last+1, i]) and on key 0, plus the all-query variants."""
    qt = torch.from_numpy(q).double()
    kt = torch.from_numpy(k).double()
    H, S, D = qt.shape
    g = H // kt.shape[0]
    kt = kt.repeat_interleave(g, dim=0)
    s = qt @ kt.transpose(-1, -2) / math.sqrt(D)
    i = torch.arange(S).view(S, 1)
    j = torch.arange(S).view(1, S)
    s = s.masked_fill(j > i, float("-inf"))
    p = torch.softmax(s, dim=-1)                      # [H, S, S]
    local = ((j <= i) & (j > i - last)).double()
    mass_local = (p * local).sum(-1)                  # [H, S]
    mass_sink = p[:, :, 0]                            # [H, S]
    ent = -(p.clamp_min(1e-300).log() * p).sum(-1)    # [H, S] nats
    sel = slice(last, S)
    return {
        "local64_mass_per_head": [round(float(x), 4) for x in mass_local[:, sel].mean(-1)],
        "sink_mass_per_head": [round(float(x), 4) for x in mass_sink[:, sel].mean(-1)],
        "local64_mass": round(float(mass_local[:, sel].mean()), 4),
        "sink_mass": round(float(mass_sink[:, sel].mean()), 4),
        "local64_mass_all_queries": round(float(mass_local.mean()), 4),
        "sink_mass_all_queries": round(float(mass_sink.mean()), 4),
        "entropy_bits": round(float(ent[:, sel].mean()) / math.log(2), 3),
        "uniform_local64_mass": round(float(sum(min(last, t + 1) / (t + 1) for t in range(last, S)) / (S - last)), 4),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description="capture Q/K/V on held-out text")
    ap.add_argument("--corpus", default=".gpu-carry/corpus")
    ap.add_argument("--ckpt", default=".gpu-carry/model/ckpt.pt")
    ap.add_argument("--out", default="data/real")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--calib-at", type=float, default=0.75, help="calib window start, fraction of held-out")
    ap.add_argument("--eval-at", type=float, default=0.5, help="eval window start, fraction of held-out")
    a = ap.parse_args(argv)
    if a.device == "auto":
        a.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(a.device)
    if device.type == "cuda":  # exact fp32 matmuls for the capture
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    ck = torch.load(a.ckpt, map_location="cpu")
    cfg = Config(**ck["config"])
    cfg.dropout = 0.0
    model = ByteLM(cfg)
    model.load_state_dict({k: v.float() for k, v in ck["state_dict"].items()})
    model.to(device).eval()

    man, splits = load_corpus(a.corpus)
    if ck.get("corpus_sha256") and ck["corpus_sha256"] != man["sha256"]:
        raise SystemExit("checkpoint was trained on another corpus")
    held = splits["heldout"]
    S = a.seq
    def at(frac):  # byte offset at this fraction of the held-out text, aligned down to 1024
        return int(len(held) * frac) // 1024 * 1024
    samples = {"calib": at(a.calib_at), "eval": at(a.eval_at)}
    if abs(samples["calib"] - samples["eval"]) < S + 1:
        raise SystemExit("the two windows overlap")
    if len(held) < max(samples.values()) + S + 1:
        raise SystemExit(f"held-out text too short ({len(held)} bytes)")

    held_files, pos = [], 0  # (start, end, path) of each held-out file inside `held`
    for e in man["files"]:
        if e["split"] == "heldout":
            held_files.append((pos, pos + e["length"], e["path"]))
            pos += e["length"]

    stats = {}
    meta = {}
    for name, off in samples.items():
        window = held[off:off + S + 1]
        idx = torch.tensor(list(window[:S]), dtype=torch.long, device=device).view(1, S)
        caps = []
        for b in model.blocks:
            b.attn.capture = {}
            caps.append(b.attn.capture)
        with torch.no_grad():
            logits = model(idx)
        for b in model.blocks:
            b.attn.capture = None
        tgt = torch.tensor(list(window[1:S + 1]), dtype=torch.long, device=device)
        bpb = float(torch.nn.functional.cross_entropy(logits[0].float(), tgt)) / math.log(2)
        meta[name] = {"heldout_offset": off, "bytes": S, "window_bpb": round(bpb, 4),
                      "text_sha256": hashlib.sha256(window[:S]).hexdigest(),
                      "files": [p for (b0, b1, p) in held_files if b0 < off + S and b1 > off],
                      "starts_with": window[:80].decode("utf-8", "replace")}
        stats[name] = {"window_bpb": round(bpb, 4), "layers": []}
        for L, c in enumerate(caps):
            d = os.path.join(a.out, name, f"layer{L}")
            os.makedirs(d, exist_ok=True)
            arrs = {}
            for t in ("q", "k", "v"):
                x = c[t].float().cpu().numpy().astype(np.float16)
                x = np.ascontiguousarray(x)
                want = (1, cfg.n_heads if t == "q" else cfg.n_kv_heads, S, cfg.head_dim)
                assert x.shape == want, (t, x.shape, want)
                assert np.isfinite(x).all(), (name, L, t)
                np.save(os.path.join(d, f"{t}.npy"), x)
                arrs[t] = x[0].astype(np.float32)
            st = attn_stats(arrs["q"], arrs["k"])
            st["layer"] = L
            st["absmax"] = {t: round(float(np.abs(arrs[t]).max()), 3) for t in arrs}
            stats[name]["layers"].append(st)
            print(f"{name} layer{L}: mass in last 64 keys {st['local64_mass']:.3f} "
                  f"(uniform would be {st['uniform_local64_mass']:.3f}), on key 0 {st['sink_mass']:.3f}, "
                  f"entropy {st['entropy_bits']:.2f} bits  per-head local {st['local64_mass_per_head']} "
                  f"sink {st['sink_mass_per_head']}", flush=True)
        print(f"{name}: window bpb {bpb:.4f}", flush=True)

    os.makedirs(os.path.join(a.out, "ops"), exist_ok=True)
    for L in range(cfg.n_layers):
        op = {"schema": "sattn.op/v1", "name": f"real_layer{L}", "batch": 1, "heads": cfg.n_heads,
              "kv_heads": cfg.n_kv_heads, "seq_len": S, "head_dim": cfg.head_dim, "causal": True,
              "precision": "fp32"}
        with open(os.path.join(a.out, "ops", f"layer{L}.json"), "w") as fh:
            fh.write(json.dumps(op) + "\n")

    log_path = os.path.join(a.out, "train-log.json")
    log = {}
    if os.path.exists(log_path):
        with open(log_path) as fh:
            log = json.load(fh)
    log["capture_stats"] = {
        "definition": "softmax(q k^T / sqrt(64)) with causal mask, from the saved fp16 arrays; "
                      "local64 = mass on keys j in [i-63, i], sink = mass on key 0; mean over heads "
                      "and over queries i >= 64 (the *_all_queries fields use every query)",
        "checkpoint_step": ck.get("step"),
        "checkpoint_val_bpb": ck.get("val_bpb"),
        "capture_device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "samples": meta,
        **stats,
    }
    with open(log_path, "w") as fh:
        json.dump(log, fh, indent=1)
    print(f"wrote {a.out}/{{calib,eval}}/layer*/{{q,k,v}}.npy, {a.out}/ops/, capture_stats in {log_path}")


if __name__ == "__main__":
    main()
