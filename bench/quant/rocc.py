#!/usr/bin/python3
"""Quantization schemes on the accelerator (rocc; issue 23, hw/README.md "Quantization schemes"):
writes bench/results/quant-rocc.json, which bench/quant/report.py turns into the "Accelerator"
section of bench/results/quant.md. make bench-quant runs it after bench/quant/run.py.

  bench/quant/rocc.py [BUILD_DIR] [--parts=1,2,3]

--parts runs only those parts and keeps the others' results from an existing quant-rocc.json
(so parts can run side by side on a loaded machine).

1. Accuracy and cycles on two data sets of bench/quant/run.py (laplace and real L0: the same
   generator and op: dense, causal, 6/2 heads, seq 1024, head_dim 64; the others are left out to
   keep the run short on a shared machine): `sattn-sim --model-only` (the bit-exact model: its
   cycles are the RTL's), errors from sattn-sim's own check against the fp32 reference. pv=i8
   schemes (sage) have no datapath on the accelerator: the refusal (exit 3) is recorded.
2. The cost of the scales: bsr (block 64, keep 0.125), seq 4096, 4 query / 2 KV heads, head_dim
   64, LANES 16, DRAM latency 40, causal and not, per-tensor vs the recommended scheme (smooth at
   i8, smooth,block=2 at i4: the defaults), at 16 and at 4 DRAM bytes per cycle: model cycles side by side.
3. A cross-check on the RTL (Verilator) at seq 512: RTL == model (output bits, counters) and its
   cycles, per-tensor vs recommended.
"""
import datetime
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as quant_run  # noqa: E402  (the data sets and op of bench/quant/run.py)

SRC = quant_run.SRC
ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
PARTS = {1, 2, 3}
for a in sys.argv[1:]:
    if a.startswith("--parts="):
        PARTS = {int(x) for x in a[len("--parts="):].split(",")}
BUILD = os.path.abspath(ARGS[0] if ARGS else os.path.join(SRC, "build"))
SIM = os.path.join(BUILD, "bin", "sattn-sim")
SCHEMES = ["per-tensor", "sage", "smooth", "smooth,block=4", "smooth,block=2"]
RECOMMENDED = {"i8": "smooth", "i4": "smooth,block=2"}  # the defaults (recommended_scheme)


def sim(op, args):
    """sattn-sim on one op file; (result JSON or None, exit code, last stderr line)."""
    p = subprocess.run(["nice", SIM, op, "-q"] + args, capture_output=True, text=True)
    if p.returncode not in (0, 3, 5):
        raise SystemExit(f"bench/quant/rocc: sattn-sim {op} {' '.join(args)} exited {p.returncode}: {p.stderr}")
    lines = p.stdout.splitlines()
    err = p.stderr.strip().splitlines()
    return (json.loads(lines[0]) if lines else None), p.returncode, (err[-1] if err else "")


def write_op(path, **attrs):
    op = {"schema": "sattn.op/v1", "name": "quant", "batch": 1, "head_dim": 64}
    op.update(attrs)
    with open(path, "w") as f:
        json.dump(op, f)
    return path


def row_of(result):
    s, c = result["sim"], result["check"]
    return {"cycles": s["cycles"], "busy_cycles": s["busy_cycles"], "stall_dma": s["stalls"]["dma"],
            "dma_bytes_in": s["dma_bytes_in"], "scale_and_bias_bytes": s.get("quant", {}).get("scale_and_bias_bytes", 0),
            "model_match": s["model_match"], "max_rel": c["max_rel_error"], "rel_l1": c.get("rel_l1"),
            "cosine": c.get("cosine"), "passed": c["passed"], "quant_scheme": c.get("quant_scheme")}


def main():
    if not os.path.exists(SIM):
        sys.exit(f"bench/quant/rocc: {SIM} not found; build first")
    load = open("/proc/loadavg").read().split()[:3]
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    doc = {"schema": "sattn.bench-quant-rocc/v1", "date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
           "machine": {"cpu": cpu, "cores": os.cpu_count(), "loadavg_before": load},
           "config": {"lanes": 16, "dram_latency_cycles": 40}, "accuracy": [], "overhead": [], "rtl": []}
    with tempfile.TemporaryDirectory() as work:
        # 1. The bench's data sets.
        sets = [(n, quant_run.synthetic(work, n, seed)) for n, seed in (("laplace", 2),)]
        sets += [("real L0", os.path.join(SRC, "data", "real", "eval", "layer0"))]
        for name, data in sets if 1 in PARTS else []:
            for precision in ("i8", "i4"):
                for scheme in SCHEMES:
                    op = write_op(os.path.join(work, "op.json"), heads=6, kv_heads=2, seq_len=1024, causal=True,
                                  spec="dense", precision=precision, quant_scheme=scheme)
                    result, code, msg = sim(op, ["--data", data, "--model-only"])
                    row = {"data": name, "precision": precision, "scheme": scheme, "exit": code}
                    if result is not None:
                        row.update(row_of(result))
                    else:
                        row["message"] = msg
                    doc["accuracy"].append(row)
            print(f"bench/quant/rocc: {name}", file=sys.stderr)
        # 2. The scales' cycle overhead on bsr at seq 4096 (the model).
        for precision in ("i8", "i4") if 2 in PARTS else ():
            for causal in (False, True):
                for bandwidth in (16, 4):
                    for scheme in ("per-tensor", RECOMMENDED[precision]):
                        op = write_op(os.path.join(work, "bsr.json"), heads=4, kv_heads=2, seq_len=4096, causal=causal,
                                      spec="bsr", block_size=64, keep_ratio=0.125, precision=precision,
                                      quant_scheme=scheme)
                        result, code, msg = sim(op, ["--model-only", "--dram-bandwidth", str(bandwidth)])
                        if result is None:
                            raise SystemExit(f"bench/quant/rocc: bsr 4096 {precision} {scheme}: {msg}")
                        doc["overhead"].append({"precision": precision, "causal": causal, "dram_bytes_per_cycle": bandwidth,
                                                "scheme": scheme, **row_of(result)})
                print(f"bench/quant/rocc: bsr 4096 {precision} causal={causal}", file=sys.stderr)
        # 3. RTL cross-check at seq 512.
        for precision in ("i8", "i4") if 3 in PARTS else ():
            for scheme in ("per-tensor", RECOMMENDED[precision]):
                op = write_op(os.path.join(work, "bsr512.json"), heads=4, kv_heads=2, seq_len=512, causal=True,
                              spec="bsr", block_size=64, keep_ratio=0.25, precision=precision, quant_scheme=scheme)
                result, code, msg = sim(op, [])
                if result is None:
                    raise SystemExit(f"bench/quant/rocc: bsr 512 RTL {precision} {scheme}: {msg}")
                doc["rtl"].append({"precision": precision, "scheme": scheme, **row_of(result)})
    doc["machine"]["loadavg_after"] = open("/proc/loadavg").read().split()[:3]
    out = os.path.join(SRC, "bench", "results", "quant-rocc.json")
    if PARTS != {1, 2, 3} and os.path.exists(out):  # keep the parts not run now
        old = json.load(open(out))
        for part, key in ((1, "accuracy"), (2, "overhead"), (3, "rtl")):
            if part not in PARTS:
                doc[key] = old.get(key, [])
    with open(out, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
