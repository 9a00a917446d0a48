#!/usr/bin/python3
"""Roofline plots of the accelerator, one per profile, from committed JSON: the workloads'
counters in bench/sim/baseline.json (sattn-sim, LANES 16, 16 B/cycle) and each profile's accel
section (profiles/*.yaml, following `base:`). Writes bench/results/roofline-PROFILE.{svg,png}.

  bench/sim/roofline.py [OUT_DIR]        (default bench/results; needs gnuplot)
The points are the measured default-config runs (MAC/cycle of a LANES-16 array); each profile's
roof is its own peak (LANES MAC/cycle) and bandwidth (B/cycle). Per-cycle units make the
profiles comparable; multiply by clock_mhz for per-second rates.
"""
import json, os, subprocess, sys, tempfile
import yaml

src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(src, "bench/results")


def accel(name):
    d = yaml.safe_load(open(os.path.join(src, "profiles", name + ".yaml")))
    a = accel(d["base"]) if "base" in d else {}
    a.update(d.get("accel", {}))
    return a


base = json.load(open(os.path.join(src, "bench/sim/baseline.json")))
pts = []
for key, w in sorted(base["workloads"].items()):
    if not key.endswith("/double"):
        continue
    byts = w["dma_bytes_in"] + w["dma_bytes_out"]
    pts.append((key.split("/")[0], w["macs_issued"] / byts, w["macs_issued"] / w["cycles"]))
os.makedirs(out, exist_ok=True)
with tempfile.TemporaryDirectory() as t:
    dat = os.path.join(t, "points.dat")
    with open(dat, "w") as f:
        for name, x, y in pts:
            f.write(f"{x} {y} {name}\n")
    for prof in ["highperf", "lowpower", "imc"]:
        a = accel(prof)
        L, B, mhz = a["lanes"], a["dram_bytes_per_cycle"], a["clock_mhz"]
        for term, ext in [("svg size 800,560", "svg"), ("pngcairo size 800,560", "png")]:
            path = os.path.join(out, f"roofline-{prof}.{ext}")
            script = f"""set terminal {term}
set output '{path}.tmp'
set title "Accelerator roofline, profile {prof}: {L} MAC/cycle ({L*mhz/1000:g} GMAC/s), {B} B/cycle ({B*mhz/1000:g} GB/s)"
set logscale xy
set xlabel 'operational intensity (MACs per DRAM byte)'
set ylabel 'MACs per cycle'
set xrange [0.1:1000]
set yrange [0.1:64]
set key bottom right
set termoption noenhanced
roof(x) = x*{B} < {L} ? x*{B} : {L}
dflt(x) = x*16 < 16 ? x*16 : 16
plot roof(x) title 'roof of profile {prof}' lw 2, \\
     dflt(x) title 'roof of the measured config (LANES 16, 16 B/cycle)' dt 2, \\
     '{dat}' using 1:2 with points pt 7 title 'measured: bsr, sliding_window, block_local_global at 1024/4096'
"""
            subprocess.run(["gnuplot"], input=script, text=True, check=True)
            os.replace(path + ".tmp", path)
            print(path)
