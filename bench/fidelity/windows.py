#!/usr/bin/python3
"""How well can ANY calibration predict the cheapest point that passes on another window of text?
(issue 20, the cost goal). Writes bench/results/fidelity-windows.json; bench/fidelity/report.py adds its
section to bench/results/fidelity.md.

  bench/fidelity/windows.py [BUILD_DIR] [--ckpt .gpu-carry/model/ckpt.pt] [--corpus .gpu-carry/corpus]
                            [--stride 8]            (make bench-fidelity-windows; ~20 min of one core)

Needs the checkpoint of the run that made data/real (not committed: `data/train.py` writes it, see
data/README.md) and the corpus (`data/make_corpus.py`). Steps:
1. Capture, on the CPU (fp32, as data/capture.py does), the post-RoPE Q/K/V of every layer on many
   1024-byte windows of the held-out split: every STRIDE-th window (offsets w * 1024), plus the two
   windows of data/real (calib at 629760, eval at 419840).
2. For every configuration of bench/fidelity/run.py (layer x KV-head group x seq 256/512/1024: 3 query
   heads and 1 KV head, the causal prefix) one `sattn-select --min-recall 0.5` with every window as a
   --data sample: the plan's terms give, per grid point, its cost and per (window, head) the mean row
   recall and the standard error of the selector's bound (recall_heads).
3. Offline, from those numbers, for each (configuration, R in 0.8/0.9/0.95, held-out window):
   - the band bound (mean - sqrt(2) z(0.95) se from 8 row bands, worst head): what sattn-select
     compares on one calibration window, and the worst over 2 or 4 windows (what repeated --data did
     before the pooled bound);
   - the pooled bound (what sattn-select compares with 2 or more --data samples): per head, the mean
     over n calibration windows minus z(0.95) x their sd x sqrt(1 + 1/n) (a prediction bound for one
     new window), the worst head compared with R;
   - the ceiling of every selector that picks one grid point per (configuration, R), whatever it knows
     (even the held-out windows themselves): over all windows, each point's rate of meeting R and rate of
     being within 10 % of that window's cheapest passing point; the best mean "within" rate that keeps
     the mean "met" rate >= 95 % (a Lagrangian sweep over the per-(configuration, R) choices);
   - why: at the ceiling's choice, the window-to-window sd of its held-out recall, and of the point more
     than 10 % cheaper that passes on the most windows: how far its mean falls short of R, its sd, and
     on how many windows it passes all the same (each such window is one "not within 10 %").
   A held-out window is scored only when it lies more than STRIDE windows from every calibration window.
"""
import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from statistics import NormalDist

import numpy as np

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(SRC, "data"))
TARGETS = [0.8, 0.9, 0.95]
SEQS = [256, 512, 1024]
LAYERS = [0, 1, 2, 3]
GROUP = 3
Z = NormalDist().inv_cdf(0.95)
NS_BAND = [1, 2, 4]
NS_POOLED = [2, 4, 8, 16, 32]
REPS = 4  # calibration sets per n (shifted evenly spaced windows)


def capture(args, work):
    import torch
    from model import ByteLM, Config, load_corpus
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    ck = torch.load(args.ckpt, map_location="cpu")
    cfg = Config(**ck["config"])
    cfg.dropout = 0.0
    model = ByteLM(cfg)
    model.load_state_dict({k: v.float() for k, v in ck["state_dict"].items()})
    model.eval()
    man, splits = load_corpus(args.corpus)
    if ck.get("corpus_sha256") and ck["corpus_sha256"] != man["sha256"]:
        sys.exit("bench/fidelity/windows: the checkpoint was trained on another corpus")
    held = splits["heldout"]
    S = 1024
    n = (len(held) - 1) // S
    at = lambda frac: int(len(held) * frac) // S  # data/capture.py's calib (0.75) and eval (0.5) windows
    # offset (pooled.py --offset): another set of windows, shifted by that many windows; data/real's two
    # are added only to the default set.
    offset = getattr(args, "offset", 0)
    windows = sorted(set(range(offset, n, args.stride)) | ({at(0.75), at(0.5)} if offset == 0 else set()))
    for i, w in enumerate(windows):
        idx = torch.tensor(list(held[w * S:(w + 1) * S]), dtype=torch.long).view(1, S)
        caps = []
        for b in model.blocks:
            b.attn.capture = {}
            caps.append(b.attn.capture)
        with torch.no_grad():
            model(idx)
        for b in model.blocks:
            b.attn.capture = None
        for L, c in enumerate(caps):
            arr = {t: c[t].float().numpy().astype(np.float16) for t in "qkv"}
            for g in range(cfg.n_kv_heads):
                for seq in SEQS:
                    d = os.path.join(work, f"L{L}g{g}s{seq}", f"w{w:03d}")
                    os.makedirs(d, exist_ok=True)
                    for t in "qkv":
                        h = slice(g * GROUP, (g + 1) * GROUP) if t == "q" else slice(g, g + 1)
                        np.save(os.path.join(d, f"{t}.npy"), np.ascontiguousarray(arr[t][:, h, :seq]))
        if sys.stderr.isatty():
            print(f"\rbench/fidelity/windows: captured {i + 1}/{len(windows)} windows", end="", file=sys.stderr)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    return windows, at(0.75), at(0.5), len(held)


def measure(bin_dir, work, windows, tag, seq):
    op = os.path.join(work, f"{tag}.op.json")
    with open(op, "w") as f:
        json.dump({"schema": "sattn.op/v1", "name": tag, "heads": GROUP, "kv_heads": 1, "seq_len": seq,
                   "head_dim": 64, "causal": True, "precision": "fp32"}, f)
    cmd = ["nice", os.path.join(bin_dir, "sattn-select"), "-q", "--min-recall", "0.5", op]
    for w in windows:
        cmd += ["--data", os.path.join(work, tag, f"w{w:03d}")]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"bench/fidelity/windows: sattn-select failed ({p.returncode}): {p.stderr[-2000:]}")
    plan = json.loads(p.stdout.splitlines()[0])
    pts = []
    for c in plan["selection"]["candidates"]:
        t = c["terms"]
        if not c["feasible"]:
            continue
        rh = t.get("recall_heads")
        if c["spec"] != "dense" and not rh:
            continue
        pts.append({"point": f"{c['spec']} {t['params']}".strip(), "cost": c["cost"],
                    "mean": [[rh[GROUP * i + h][0] for h in range(GROUP)] for i in range(len(windows))] if rh else None,
                    "se": [[rh[GROUP * i + h][1] for h in range(GROUP)] for i in range(len(windows))] if rh else None})
    return pts


def arrays(pts, nw):
    cost = np.array([p["cost"] for p in pts])
    mean = np.stack([np.ones((nw, GROUP)) if p["mean"] is None else np.array(p["mean"]) for p in pts], 1)
    se = np.stack([np.zeros((nw, GROUP)) if p["se"] is None else np.array(p["se"]) for p in pts], 1)
    return cost, mean, se  # mean, se: [window, point, head]


def cheapest(cost, bound, r):
    for i in np.argsort(cost, kind="stable"):
        if bound[i] >= r:
            return i
    raise RuntimeError("dense has bound 1")


def analyse(doc):
    windows = doc["windows"]
    nw = len(windows)
    pool = [w for w in windows if w != doc["eval_window"]]
    configs = {c: arrays(p, nw) for c, p in doc["configs"].items()}

    def score(bound_of, n):
        if n > len(pool) // 2:  # too few windows left to hold out
            return None
        tot = np.zeros(3)
        cnt = 0
        for rep in range(REPS if n < len(pool) else 1):
            calib = sorted({pool[int((i + rep / REPS) * len(pool) / n)] for i in range(n)})
            ci = [windows.index(w) for w in calib]
            held = [i for i, w in enumerate(windows) if all(abs(w - c) > doc["stride"] for c in calib)]
            for cost, mean, se in configs.values():
                worst = mean.min(2)  # [window, point]: the worst head's mean, what R is compared with
                bound = bound_of(mean[ci], se[ci])
                for r in TARGETS:
                    ch = cheapest(cost, bound, r)
                    feas = worst[held] >= r
                    best = np.where(feas, cost[None, :], np.inf).min(1)
                    met, within = feas[:, ch], cost[ch] <= 1.1 * best
                    tot += [met.sum(), within.sum(), (met & within).sum()]
                    cnt += len(held)
        return {"n": n, "met": tot[0] / cnt, "within_10pct": tot[1] / cnt, "both": tot[2] / cnt, "cases": cnt}

    k = math.sqrt(2) * Z
    band = lambda m, s: np.clip(m - k * s, 0, 1).min(2).min(0)

    def pooled(m, s):
        n = m.shape[0]
        mu, sd = m.mean(0), m.std(0, ddof=1)
        return (mu - Z * sd * math.sqrt(1 + 1 / n)).min(1)

    out = {"band": [x for x in (score(band, n) for n in NS_BAND) if x],
           "pooled": [x for x in (score(pooled, n) for n in NS_POOLED) if x]}
    # The ceiling: every (configuration, R), every point's met and within rates over all windows.
    cases = []
    for name, (cost, mean, se) in configs.items():
        worst = mean.min(2)
        for r in TARGETS:
            feas = worst >= r
            best = np.where(feas, cost[None, :], np.inf).min(1)
            cases.append((name, r, cost, worst, feas.mean(0), (cost[None, :] <= 1.1 * best[:, None]).mean(0)))
    ceiling = None
    for lam in list(np.linspace(0, 5, 201)) + list(np.linspace(5, 500, 100)):
        picks = [int(np.argmax(w + lam * m)) for (_, _, _, _, m, w) in cases]
        met = float(np.mean([c[4][p] for c, p in zip(cases, picks)]))
        within = float(np.mean([c[5][p] for c, p in zip(cases, picks)]))
        if met >= 0.95 and (ceiling is None or within > ceiling["within_10pct"]):
            ceiling = {"met": met, "within_10pct": within, "lambda": float(lam), "picks": picks}
    why = []
    for c, p in zip(cases, ceiling["picks"]):
        name, r, cost, worst, m, w = c
        # The cheaper side: among the points more than 10 % cheaper than the choice, the one that
        # passes on the most windows; how far its mean falls short of R and how much it varies.
        cheaper = [i for i in range(len(cost)) if cost[i] * 1.1 < cost[p]]
        q = max(cheaper, key=lambda i: ((worst[:, i] >= r).mean(), worst[:, i].mean())) if cheaper else None
        why.append({"config": name, "target": r, "met": float(m[p]), "within_10pct": float(w[p]),
                    "sd_heldout": float(worst[:, p].std(ddof=1)),
                    "cheaper_shortfall": float(r - worst[:, q].mean()) if q is not None else None,
                    "cheaper_sd": float(worst[:, q].std(ddof=1)) if q is not None else None,
                    "cheaper_passes": float((worst[:, q] >= r).mean()) if q is not None else None})
    del ceiling["picks"]
    out["ceiling"] = ceiling
    out["ceiling_cases"] = why
    return out


def build_grid(bin_dir, work):
    """{seq: the labels of this build's recall grid} (the candidates of a selection on the synthetic sample)."""
    grid = {}
    for seq in SEQS:
        op = os.path.join(work, f"grid{seq}.json")
        with open(op, "w") as f:
            json.dump({"schema": "sattn.op/v1", "name": "grid", "heads": GROUP, "kv_heads": 1, "seq_len": seq,
                       "head_dim": 64, "causal": True, "precision": "fp32"}, f)
        out = subprocess.run([os.path.join(bin_dir, "sattn-select"), "-q", "--min-recall", "0", op],
                             capture_output=True, text=True, check=True).stdout
        plan = json.loads(out.splitlines()[0])
        grid[seq] = {f"{c['spec']} {c['terms']['params']}".strip() for c in plan["selection"]["candidates"]}
    return grid


def main():
    ap = argparse.ArgumentParser(description="calibration on many held-out windows: what any selector can reach")
    ap.add_argument("build", nargs="?", default=os.path.join(SRC, "build"))
    ap.add_argument("--ckpt", default=os.path.join(SRC, ".gpu-carry", "model", "ckpt.pt"))
    ap.add_argument("--corpus", default=os.path.join(SRC, ".gpu-carry", "corpus"))
    ap.add_argument("--stride", type=int, default=8, help="every STRIDE-th 1024-byte window of the held-out text")
    ap.add_argument("--raw-out", help="also write the raw measurements (per window, head and grid point) to FILE")
    ap.add_argument("--raw-in", help="analyse FILE (a --raw-out of an earlier run) instead of capturing and "
                                     "measuring; only the points of this build's grid are kept")
    ap.add_argument("--out", help="write the JSON here instead of bench/results/fidelity-windows.json (and leave "
                                  "fidelity.md alone)")
    args = ap.parse_args()
    bin_dir = os.path.join(os.path.abspath(args.build), "bin")
    if not os.path.exists(os.path.join(bin_dir, "sattn-select")):
        sys.exit(f"bench/fidelity/windows: {bin_dir}/sattn-select not found; build first")
    load = open("/proc/loadavg").read().split()[:3]
    with tempfile.TemporaryDirectory() as work:
        if args.raw_in:
            doc = json.load(open(args.raw_in))
            grid = build_grid(bin_dir, work)
            for tag in doc["configs"]:
                seq = int(tag.rsplit("s", 1)[1])
                doc["configs"][tag] = [p for p in doc["configs"][tag] if p["point"] in grid[seq]]
        else:
            for path, how in ((args.ckpt, "data/train.py (see data/README.md)"), (args.corpus, "data/make_corpus.py")):
                if not os.path.exists(path):
                    sys.exit(f"bench/fidelity/windows: {path} not found; make it with {how}")
            windows, calib_w, eval_w, held_bytes = capture(args, work)
            doc = {"windows": windows, "stride": args.stride, "calib_window": calib_w, "eval_window": eval_w,
                   "heldout_bytes": held_bytes, "configs": {}}
            for seq in SEQS:
                for layer in LAYERS:
                    for g in range(2):
                        tag = f"L{layer}g{g}s{seq}"
                        doc["configs"][tag] = measure(bin_dir, work, doc["windows"], tag, seq)
                        if sys.stderr.isatty():
                            print(f"bench/fidelity/windows: measured {tag}", file=sys.stderr)
            if args.raw_out:
                with open(args.raw_out, "w") as f:
                    json.dump(doc, f, separators=(",", ":"))
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
    rev = subprocess.run(["git", "-C", SRC, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    res = {"schema": "sattn.bench-fidelity-windows/v1", "targets": TARGETS, "confidence": 0.95,
           "windows": doc["windows"], "stride": doc["stride"], "calib_window": doc["calib_window"],
           "eval_window": doc["eval_window"], "heldout_bytes": doc.get("heldout_bytes"),
           "grid_points": {tag: len(p) for tag, p in doc["configs"].items()}, "analysis": analyse(doc),
           "raw_note": doc.get("note"),
           "provenance": {
               "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "git_revision": rev,
               "machine": f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
               "load_before": load,
               "command": "bench/fidelity/windows.py" + (f" --raw-in {os.path.basename(args.raw_in)}" if args.raw_in else
                                                        f" --stride {args.stride}") + " (make bench-fidelity-windows)"}}
    out = args.out or os.path.join(SRC, "bench", "results", "fidelity-windows.json")
    with open(out + ".tmp", "w") as f:
        json.dump(res, f, indent=1)
    os.replace(out + ".tmp", out)
    if not args.out:
        subprocess.run(["/usr/bin/python3", os.path.join(SRC, "bench", "fidelity", "report.py")], check=True)


if __name__ == "__main__":
    main()
