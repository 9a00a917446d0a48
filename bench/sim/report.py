#!/usr/bin/python3
"""Turns bench/sim/run.sh's results (sattn.result/v1 lines with a "bench" member) into
bench/results/sim.md and bench/sim/baseline.json, or checks them against the baseline.

  report.py report RESULTS BASELINE MARKDOWN SIM
  report.py check  RESULTS BASELINE
"""
import datetime
import json
import os
import platform
import subprocess
import sys

COUNTERS = ["cycles", "busy_cycles", "macs_issued", "macs_skipped", "dma_bytes_in", "dma_bytes_out", "gathers", "commands"]
UTIL_TARGET, ROOFLINE_TARGET, SPEED_TARGET = 0.80, 1.15, 2e6


def load(path):
    return [json.loads(line) for line in open(path) if line.strip()]


def key(r):
    return f'{r["bench"]["workload"]}/{r["bench"]["buffering"]}'


def counters(r):
    s = r["sim"]
    c = {k: s[k] for k in COUNTERS}
    c.update({"stall_" + k: v for k, v in s["stalls"].items()})
    return c


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def check(results, baseline_path):
    base = json.load(open(baseline_path))["workloads"]
    bad = 0
    for r in results:
        k, got = key(r), counters(r)
        if k not in base:
            print(f"{k}: not in the baseline")
            bad += 1
            continue
        for name, want in base[k].items():
            if got.get(name) != want:
                print(f"{k}: {name} = {got.get(name)}, baseline {want}")
                bad += 1
    print(f"bench/sim --check: {len(results)} runs, {bad} differences from {baseline_path}")
    return 1 if bad else 0


def machine():
    model = "unknown cpu"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        verilator = subprocess.run(["verilator", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        verilator = "verilator not on PATH"
    load = open("/proc/loadavg").read().strip() if os.path.exists("/proc/loadavg") else "?"
    return model, os.cpu_count(), verilator, load


def report(results, baseline_path, md_path, sim):
    by = {key(r): r for r in results}
    model, cpus, verilator, load = machine()
    cfg = results[0]["sim"]["config"]
    lines = [
        "# sattn accelerator benchmark (sattn-sim, RTL under Verilator)",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC')}",
        f"- machine: {model}, {cpus} hardware threads, {platform.system()} {platform.release()} (shared with other jobs; load average at the end: {load})",
        f"- simulator: {verilator}, single-threaded, untraced",
        f"- command: `bench/sim/run.sh` (each workload: `sattn-sim OP.json --lanes 16 [--single-buffer]`, run under `nice`)",
        f"- accelerator: LANES {cfg['lanes']}, DRAM latency {cfg['dram_latency_cycles']} cycles, {cfg['dram_bytes_per_cycle']} bytes/cycle, clock {cfg['clock_mhz']:g} MHz",
        "- problem: batch 1, heads 1, head_dim 64, i8 (absmax scales), synthetic data (seed 23159), not causal;"
        " bsr block 64 keep 1/8; sliding_window window 64 (129 keys per query); block_local_global block 64, 1 window block, 64 global tokens",
        "- utilization = MACs issued / (LANES x cycles); roofline bound = max(MACs / LANES, DRAM bytes / bandwidth + latency);"
        " energy from the default per-event energies (Horowitz ISSCC 2014, 45 nm: 0.3 pJ/MAC, 1.25 pJ/SRAM byte, 162.5 pJ/DRAM byte; `man sattn-sim`)",
        "- sim speed = simulated cycles / wall seconds of the harness's simulation loop (the harness reports both)",
        "- every run: RTL output and all 13 counters equal to the bit-exact model, output within 5e-2 of the fp32 reference",
        "",
        "| workload | seq | buffering | density | cycles | utilization | bound by | actual / bound | stall dma | stall softmax | stall other | DMA in KiB | energy uJ | sim Mcycles/s | RTL = model | max rel err |",
        "|---|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in results:
        s, b = r["sim"], r["bench"]
        spec = r["spec"]
        lines.append(
            f"| {spec} | {r['op']['seq_len']} | {b['buffering']} | {r['layout']['density']:.4f} | {s['cycles']} | "
            f"{100 * s['utilization']:.1f}% | {s['roofline']['bound_by']} | {s['roofline']['ratio']:.3f} | "
            f"{s['stalls']['dma']} | {s['stalls']['softmax']} | {s['stalls']['other']} | {s['dma_bytes_in'] / 1024:.0f} | "
            f"{s['energy_pj']['total'] / 1e6:.2f} | {s['sim_speed_cycles_per_s'] / 1e6:.2f} | "
            f"{'yes' if s['model_match'] else 'NO'} | {r['check']['max_rel_error']:.1e} |")
    lines += ["", "## Targets", ""]
    d, sgl = by.get("bsr-4096/double"), by.get("bsr-4096/single")
    if d:
        u = d["sim"]["utilization"]
        lines.append(f"- utilization >= 80% on bsr (block 64) at seq_len 4096 with double buffering: "
                     f"{100 * u:.1f}% — {'met' if u >= UTIL_TARGET else 'NOT met'}"
                     + (f"; single-buffer ablation: {100 * sgl['sim']['utilization']:.1f}% "
                        f"({sgl['sim']['cycles'] / d['sim']['cycles']:.2f}x the cycles)" if sgl else ""))
    block = [r for r in results if r["layout"]["granularity"] == "block" and r["bench"]["buffering"] == "double"]
    worst = max(block, key=lambda r: r["sim"]["roofline"]["ratio"]) if block else None
    if worst:
        ratios = ", ".join(f"{key(r).split('/')[0]} {r['sim']['roofline']['ratio']:.3f}" for r in block)
        ok = worst["sim"]["roofline"]["ratio"] <= ROOFLINE_TARGET
        lines.append(f"- cycles within 1.15x of the roofline bound on block layouts (double buffering): worst "
                     f"{worst['sim']['roofline']['ratio']:.3f} ({key(worst)}) — {'met' if ok else 'NOT met'} ({ratios})")
    speeds = [r["sim"]["sim_speed_cycles_per_s"] for r in results]
    total_cycles = sum(r["sim"]["sim_cycles"] for r in results)
    total_wall = sum(r["sim"]["sim_wall_seconds"] for r in results)
    slowest = min(results, key=lambda r: r["sim"]["sim_speed_cycles_per_s"])
    lines.append(f"- >= 2 M simulated cycles per second untraced: slowest run {min(speeds) / 1e6:.2f} M/s ({key(slowest)}), "
                 f"all runs together {total_cycles / total_wall / 1e6:.2f} M/s — "
                 f"{'met' if min(speeds) >= SPEED_TARGET else 'NOT met'} (judged on the slowest run)")
    lines += ["", "Single-buffer ablation beside double buffering (same workload):", "",
              "| workload | double: cycles | utilization | single: cycles | utilization | single / double |",
              "|---|---:|---:|---:|---:|---:|"]
    for r in results:
        if r["bench"]["buffering"] != "double":
            continue
        w = r["bench"]["workload"]
        o = by.get(w + "/single")
        if o:
            lines.append(f"| {w} | {r['sim']['cycles']} | {100 * r['sim']['utilization']:.1f}% | {o['sim']['cycles']} | "
                         f"{100 * o['sim']['utilization']:.1f}% | {o['sim']['cycles'] / r['sim']['cycles']:.2f}x |")
    rows, d_ = 64, 64
    chunk_bytes = 2 * 64 * d_  # K and V of one 64-key chunk, i8
    load = chunk_bytes / cfg["dram_bytes_per_cycle"] + cfg["dram_latency_cycles"]
    compute = 2 * rows * 64 * d_ / cfg["lanes"]
    lines += ["", f"Why the ablation costs little here: a full 64-row tile computes {compute:.0f} cycles on one "
              f"64-key chunk, which takes about {load:.0f} cycles to load ({chunk_bytes} bytes at "
              f"{cfg['dram_bytes_per_cycle']} B/cycle + {cfg['dram_latency_cycles']} latency), so even serialized "
              "loads add a few percent. Double buffering pays off when DRAM is slow or tiles are short "
              "(try `--dram-bandwidth 1 --dram-latency 400`)."]
    lines += ["", "Cycle counts are deterministic; `bench/sim/baseline.json` keeps them and the key counters, and "
              "`bench/sim/run.sh --check` re-runs every workload on the model and compares.", ""]
    write_atomic(md_path, "\n".join(lines))
    baseline = {
        "schema": "sattn.bench/v1",
        "producer": {"tool": "bench/sim/run.sh", "version": results[0]["producer"]["version"]},
        "config": cfg,
        "workloads": {key(r): counters(r) for r in results},
    }
    write_atomic(baseline_path, json.dumps(baseline, indent=2, sort_keys=True) + "\n")
    print(f"wrote {md_path} and {baseline_path}")
    return 0


if __name__ == "__main__":
    mode = sys.argv[1]
    res = load(sys.argv[2])
    if mode == "check":
        sys.exit(check(res, sys.argv[3]))
    sys.exit(report(res, sys.argv[3], sys.argv[4], sys.argv[5]))
