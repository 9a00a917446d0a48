#!/usr/bin/python3
"""Quantization schemes (issue 23, sattn-quant(7)): accuracy and cost of every scheme x precision,
measured through `sattn run`; writes bench/results/quant.json, then regenerates
bench/results/quant.md (bench/quant/report.py).

  bench/quant/run.py [BUILD_DIR]          (a few minutes under nice; make bench-quant)

Data sets, all [1, 6 query heads, 1024, 64] with 2 KV heads, causal, dense layout:
  gaussian   N(0, 1) Q, K, V (numpy seed 1)
  laplace    Laplace(0, 1) Q, K, V (heavy tails; seed 2)
  outliers   N(0, 1) plus 8 entries of +-60..80 per tensor (seed 3)
  real L0-3  data/real/eval/layer{0..3}: the held-out activations of a trained model (issue 20)
Metrics of the written o.npy against a float64 numpy reference of dense causal attention (computed
here, independently of sattn): max-norm relative error, relative L1, cosine; `passed` is sattn
run's own check with the precision's criteria. Cost: the cpu backend's kernel time (median of 3 runs, one thread,
measured side by side in this run; wall time, which the load of a shared machine moves a lot) and its CPU time
(reading the data, quantization and kernel: the process's user + sys time minus that of the same command with
--dry-run, medians of 5); the rvv kernel's dynamic instructions (rvv_costs: VLEN 256, seq
256) and the imc model's energy (imc_costs); rocc's accuracy and cycles per scheme are measured by
bench/quant/rocc.py (make bench-quant runs both); its refusal of pv=i8 is measured too (exit 3).
"""
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile

import numpy as np

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(SRC, "build"))
SATTN = os.path.join(BUILD, "bin", "sattn")
SCHEMES = ["per-tensor", "sage", "smooth", "smooth,block=4", "smooth,block=2"]
PRECISIONS = ["i8", "i4"]
SHAPE = (1, 6, 2, 1024, 64)


def synthetic(work, name, seed):
    rng = np.random.default_rng(seed)
    b, h, kvh, s, d = SHAPE
    out = {}
    for t, heads in (("q", h), ("k", kvh), ("v", kvh)):
        if name == "laplace":
            a = rng.laplace(size=(b, heads, s, d))
        else:
            a = rng.standard_normal((b, heads, s, d))
        if name == "outliers":
            idx = rng.integers(0, a.size, 8)
            a.flat[idx] = np.where(np.arange(8) % 2 == 0, 80.0, -60.0)
        out[t] = a.astype(np.float32)
    path = os.path.join(work, name)
    os.makedirs(path)
    for t, a in out.items():
        np.save(os.path.join(path, f"{t}.npy"), a)
    return path


def reference(data):
    """fp64 dense causal attention with GQA, in numpy: the bench's own reference."""
    q, k, v = (np.load(os.path.join(data, f"{t}.npy")).astype(np.float64)[0] for t in "qkv")
    group = q.shape[0] // k.shape[0]
    k, v = np.repeat(k, group, 0), np.repeat(v, group, 0)
    s = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
    s = np.where(np.tril(np.ones(s.shape[1:], bool)), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ v


def metrics(out, ref):
    d = out - ref
    return {"max_rel": float(np.abs(d).max() / np.abs(ref).max()), "rel_l1": float(np.abs(d).sum() / np.abs(ref).sum()),
            "cosine": float((out * ref).sum() / np.sqrt((out * out).sum() * (ref * ref).sum()))}


def children_cpu_ms():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return 1000.0 * (r.ru_utime + r.ru_stime)


def run_one(op, data, precision, scheme, check="full", out_dir=None, extra=()):
    """One `sattn run`: its result, exit code and the CPU time the process used (ms: user + sys)."""
    cmd = ([SATTN, "run", op, "--data", data, "--precision", precision, "--quant-scheme", scheme,
            "--check", check, "--threads", "1", "-q"] + (["--out-dir", out_dir, "--force"] if out_dir else [])
           + list(extra))
    before = children_cpu_ms()
    p = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=lambda: os.nice(10))
    cpu = children_cpu_ms() - before
    if p.returncode not in (0, 5):
        raise SystemExit(f"bench/quant: {' '.join(cmd)} exited {p.returncode}: {p.stderr}")
    return (json.loads(p.stdout.splitlines()[0]) if p.stdout.strip() else None), p.returncode, cpu


# CPU time of reading the data, the quantization and the kernel: the process's CPU time (user + sys,
# which the load of other jobs on a shared machine barely moves, unlike wall time) minus that of the
# same command with --dry-run (start-up only: it reads no data), medians of CPU_RUNS runs.
CPU_RUNS = 5


# The rvv and imc cost of each scheme (issue 23): dynamic instructions of the rvv kernel region
# (QEMU plugin, VLEN 256, the rvv kernel; at seq RVV_SEQ, the bench op's other dimensions, since
# the full op takes minutes under qemu), and the imc model's energy of the full op; each beside
# per-tensor. Counts are deterministic up to the data-dependent running-max branch (seed 1 data).
RVV_SEQ = 256


def rvv_costs(work):
    op = os.path.join(work, "op_rvv.json")
    with open(op, "w") as f:
        json.dump({"schema": "sattn.op/v1", "name": "quant_rvv", "batch": 1, "heads": 6, "kv_heads": 2,
                   "seq_len": RVV_SEQ, "head_dim": 64, "causal": True, "spec": "dense"}, f)
    rows = []
    for precision in PRECISIONS:
        for scheme in SCHEMES:
            cmd = ["nice", SATTN, "run-rvv", op, "--vlen", "256", "--seed", "1", "--precision", precision,
                   "--quant-scheme", scheme, "-q"]
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode not in (0, 5):
                raise SystemExit(f"bench/quant: {' '.join(cmd)} exited {p.returncode}: {p.stderr}")
            r = json.loads(p.stdout.splitlines()[0])
            rows.append({"precision": precision, "scheme": scheme, "vlen": 256, "seq_len": RVV_SEQ,
                         "instructions": r["rvv"]["instructions"]["total"],
                         "vector_instructions": r["rvv"]["instructions"]["vector"],
                         "modelled_cycles": r["rvv"]["modelled_cycles"], "passed": r["check"]["passed"],
                         "same_scheme_max_rel": (r["check"].get("quantized_reference") or {}).get("max_rel_error")})
            print(f"bench/quant: rvv {precision} {scheme}", file=sys.stderr)
    return rows


def imc_costs(op):
    rows = []
    for precision in PRECISIONS:
        for scheme in SCHEMES:
            cmd = [SATTN, "run", op, "--backend", "imc", "--precision", precision, "--quant-scheme", scheme, "-q"]
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                raise SystemExit(f"bench/quant: {' '.join(cmd)} exited {p.returncode}: {p.stderr}")
            j = json.loads(p.stdout.splitlines()[0])
            q = j.get("quant", {})
            rows.append({"precision": precision, "scheme": scheme, "energy_pj": j["sparse"]["energy_pj"]["total"],
                         "adc_energy_pj": j["sparse"]["energy_pj"]["adc"],
                         "peripheral_energy_pj": j["sparse"]["energy_pj"]["accumulation"] + j["sparse"]["energy_pj"]["buffer"],
                         "latency_ns": j["sparse"]["latency_ns"]["total"],
                         "pv_input_bits": q.get("pv_input_bits"), "quant_scheme": q.get("quant_scheme")})
    return rows


def refusal(op, data, backend, scheme):
    p = subprocess.run([SATTN, "run", op, "--data", data, "--precision", "i8", "--quant-scheme", scheme,
                        "--backend", backend, "--dry-run", "-q"], capture_output=True, text=True)
    return p.returncode, p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""


def main():
    if not os.path.exists(SATTN):
        sys.exit(f"bench/quant: {SATTN} not found; build first")
    load = open("/proc/loadavg").read().split()[:3]
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    doc = {"schema": "sattn.bench-quant/v1", "date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
           "machine": {"cpu": cpu, "cores": os.cpu_count(), "loadavg_before": load, "python": platform.python_version()},
           "shape": {"batch": 1, "heads": 6, "kv_heads": 2, "seq_len": 1024, "head_dim": 64, "causal": True,
                     "spec": "dense"},
           "rows": [], "backends": []}
    with tempfile.TemporaryDirectory() as work:
        op = os.path.join(work, "op.json")
        with open(op, "w") as f:
            json.dump({"schema": "sattn.op/v1", "name": "quant", "batch": 1, "heads": 6, "kv_heads": 2, "seq_len": 1024,
                       "head_dim": 64, "causal": True, "spec": "dense"}, f)
        sets = [(n, synthetic(work, n, seed)) for n, seed in (("gaussian", 1), ("laplace", 2), ("outliers", 3))]
        sets += [(f"real L{l}", os.path.join(SRC, "data", "real", "eval", f"layer{l}")) for l in range(4)]
        for name, data in sets:
            ref = reference(data)
            for precision in PRECISIONS:
                for scheme in SCHEMES:
                    out_dir = os.path.join(work, "out")
                    result, code, _ = run_one(op, data, precision, scheme, out_dir=out_dir)
                    mine = metrics(np.load(os.path.join(out_dir, "o.npy")).astype(np.float64)[0], ref)
                    times = [result["timing"]["kernel_ms"]]
                    cpu, dry = [], []
                    for n in range(CPU_RUNS):  # runs without the (slow, double) reference check
                        r, _, ms = run_one(op, data, precision, scheme, "none")
                        cpu.append(ms)
                        if n < 2:
                            times.append(r["timing"]["kernel_ms"])
                        dry.append(run_one(op, data, precision, scheme, "none", extra=["--dry-run"])[2])
                    c = result["check"]
                    doc["rows"].append({"data": name, "precision": precision, "scheme": scheme,
                                        "quant_scheme": c.get("quant_scheme"), **mine, "passed": c["passed"],
                                        "criteria": c.get("criteria"), "cpu_kernel_ms": statistics.median(times),
                                        "cpu_time_ms": max(0.0, statistics.median(cpu) - statistics.median(dry))})
                print(f"bench/quant: {name} {precision}", file=sys.stderr)
        doc["rvv"] = rvv_costs(work)
        doc["imc"] = imc_costs(op)
        for backend in ("rocc",):
            for scheme in SCHEMES:
                code, message = refusal(op, sets[0][1], backend, scheme)
                doc["backends"].append({"backend": backend, "scheme": scheme, "exit": code, "message": message})
    doc["machine"]["loadavg_after"] = open("/proc/loadavg").read().split()[:3]
    out = os.path.join(SRC, "bench", "results", "quant.json")
    with open(out, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    subprocess.run([sys.executable, os.path.join(SRC, "bench", "quant", "report.py")], check=True)


if __name__ == "__main__":
    main()
