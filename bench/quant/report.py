#!/usr/bin/python3
"""bench/results/quant.json -> bench/results/quant.md (no measuring: bench/quant/run.py measures)."""
import json
import os

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rocc_section(path):
    """The "Accelerator (rocc)" section from bench/results/quant-rocc.json (bench/quant/rocc.py)."""
    doc = json.load(open(path))
    m = doc["machine"]
    out = ["", "## Accelerator (rocc)", "",
           "From `bench/results/quant-rocc.json` (`bench/quant/rocc.py`, part of `make bench-quant`), measured "
           f"{doc['date']} on {m['cpu']} (load {' '.join(m['loadavg_before'])} before, "
           f"{' '.join(m['loadavg_after'])} after; cycles do not depend on the load). LANES 16, DRAM latency 40. "
           "Cycles are the bit-exact model's (equal to the RTL's: the cross-check below and the tests). The "
           "accelerator runs every scheme whose P.V it has (pv=fp32, pv=fix16): Q/K scale words and the mean-Q "
           "bias rows are DMA'd per tile and per chunk (hw/README.md \"Quantization schemes\"); pv=i8 (sage) is "
           "refused, exit 3. An integer op without a quant_scheme runs the recommended scheme (smooth at i8, "
           "smooth,block=2 at i4), its tables computed by the host driver from the data; per-tensor when named."]
    ov = doc["overhead"]
    if ov:
        out += ["", "**Cost of the scales**: bsr (block 64, keep 0.125), seq 4096, 4 query / 2 KV heads, head_dim 64; "
                "per-tensor vs the recommended scheme (the default), side by side (target: at most +5% cycles):", "",
                "| prec | causal | DRAM B/cycle | scheme | cycles | vs per-tensor | DMA bytes in | scale+bias bytes | "
                "stall_dma | check |",
                "|---|---|---:|---|---:|---:|---:|---:|---:|---|"]
        base = {(r["precision"], r["causal"], r["dram_bytes_per_cycle"]): r for r in ov if r["scheme"] == "per-tensor"}
        for r in ov:
            b = base[(r["precision"], r["causal"], r["dram_bytes_per_cycle"])]
            pct = 100.0 * (r["cycles"] - b["cycles"]) / b["cycles"]
            out.append(f"| {r['precision']} | {'yes' if r['causal'] else 'no'} | {r['dram_bytes_per_cycle']} | "
                       f"{r['scheme']} | {r['cycles']} | {pct:+.3f}% | {r['dma_bytes_in']} | "
                       f"{r['scale_and_bias_bytes']} | {r['stall_dma']} | {'pass' if r['passed'] else 'FAIL'} |")
    if doc["rtl"]:
        out += ["", "**RTL cross-check** (Verilator, bsr keep 0.25, seq 512, causal, 4/2 heads): RTL == model on "
                "every output bit and counter:", "",
                "| prec | scheme | cycles | vs per-tensor | model_match |", "|---|---|---:|---:|---|"]
        base = {r["precision"]: r for r in doc["rtl"] if r["scheme"] == "per-tensor"}
        for r in doc["rtl"]:
            pct = 100.0 * (r["cycles"] - base[r["precision"]]["cycles"]) / base[r["precision"]]["cycles"]
            out.append(f"| {r['precision']} | {r['scheme']} | {r['cycles']} | {pct:+.3f}% | {r['model_match']} |")
    acc = doc["accuracy"]
    if acc:
        out += ["", "**Accuracy and cycles on the data sets** (the op above: dense, causal, seq 1024, 6/2 heads), "
                "against the fp32 reference (sattn-sim's check):", "",
                "| data | prec | scheme | max-norm | rel-L1 | cosine | check | rocc Mcycles | vs per-tensor |",
                "|---|---|---|---:|---:|---:|---|---:|---:|"]
        base = {(r["data"], r["precision"]): r for r in acc if r["scheme"] == "per-tensor" and r["exit"] != 3}
        for r in acc:
            if r["exit"] == 3:
                out.append(f"| {r['data']} | {r['precision']} | {r['scheme']} | - | - | - | refused (exit 3: pv=i8) | - | - |")
                continue
            b = base[(r["data"], r["precision"])]
            out.append(f"| {r['data']} | {r['precision']} | {r['scheme']} | {r['max_rel']:.3g} | {r['rel_l1']:.3g} | "
                       f"{r['cosine']:.5f} | {'pass' if r['passed'] else 'FAIL'} | {r['cycles'] / 1e6:.2f} | "
                       f"{r['cycles'] / b['cycles']:.3f}x |")
    return out


def backend_costs(doc):
    """The cost of each scheme per backend (issue 23): cpu kernel time (median over the data sets of
    the median of 3), rvv dynamic instructions, imc energy; each against per-tensor at the same
    precision."""
    rvv = {(r["precision"], r["scheme"]): r for r in doc.get("rvv", [])}
    # rocc: model cycles of bsr seq 4096, non-causal (bench/quant/rocc.py part 2), at 16 and 4 B/cycle.
    rocc = {}
    rocc_path = os.path.join(SRC, "bench", "results", "quant-rocc.json")
    if os.path.exists(rocc_path):
        for r in json.load(open(rocc_path)).get("overhead", []):
            if not r["causal"]:
                rocc[(r["precision"], r["scheme"], r["dram_bytes_per_cycle"])] = r["cycles"]
    imc = {(r["precision"], r["scheme"]): r for r in doc.get("imc", [])}
    if not rvv and not imc:
        return []
    cpu_key = "cpu_time_ms" if all("cpu_time_ms" in r for r in doc["rows"]) else "cpu_kernel_ms"
    cpu = {}
    for r in doc["rows"]:
        cpu.setdefault((r["precision"], r["scheme"]), []).append(r[cpu_key])
    med = {k: sorted(v)[len(v) // 2] for k, v in cpu.items()}
    seq = next(iter(rvv.values()))["seq_len"] if rvv else "?"
    out = ["## Cost per backend", "",
           "Each scheme's cost on every backend that runs it, and its ratio to per-tensor at the same precision. "
           f"cpu: the {'CPU time (data, quantization, kernel)' if cpu_key == 'cpu_time_ms' else 'kernel wall time'} "
           "above, median over the seven data sets. rvv: dynamic instructions of the "
           f"rvv kernel region (QEMU plugin, exact; VLEN 256, the same op at seq {seq}, seed-1 Gaussian data; "
           "`sattn run-rvv --quant-scheme S`), and the kernel's max-norm error against the same-scheme reference. "
           "imc: the crossbar model's energy of the full op (`sattn run --backend imc`; sattn-imc(1) QUANTIZATION "
           "SCHEMES): P.V input bits, total, ADC and peripheral (accumulation + buffer) energy. rocc: the "
           "accelerator's cycles on bsr at seq 4096 (non-causal; the section below), against per-tensor at 16 and "
           "at 4 DRAM bytes per cycle, for the schemes measured there.", "",
           "| prec | scheme | cpu ms | cpu vs pt | rvv instr | rvv vs pt | rvv vs same-scheme ref | "
           "imc P.V bits | imc energy nJ | imc vs pt | imc ADC nJ | imc periph nJ | rocc Mcycles | rocc vs pt (16 / 4 B/cyc) |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (precision, scheme) in sorted(med, key=lambda k: (k[0] != "i8", list(med).index(k))):
        c, cb = med[(precision, scheme)], med.get((precision, "per-tensor"))
        r, rb = rvv.get((precision, scheme)), rvv.get((precision, "per-tensor"))
        m, mb = imc.get((precision, scheme)), imc.get((precision, "per-tensor"))
        default = {"i8": "smooth", "i4": "smooth,block=2"}.get(precision) == scheme
        cells = [precision, scheme + (" (default)" if default else ""), f"{c:.1f}", f"{c / cb:.2f}x" if cb else "-"]
        if r and rb:
            err = r.get("same_scheme_max_rel")
            cells += [f"{r['instructions']:,}", f"{r['instructions'] / rb['instructions']:.2f}x",
                      f"{err:.2g}" if isinstance(err, (int, float)) else "-"]
        else:
            cells += ["-", "-", "-"]
        if m and mb:
            cells += [str(m["pv_input_bits"] or "-"), f"{m['energy_pj'] / 1e3:,.0f}", f"{m['energy_pj'] / mb['energy_pj']:.2f}x",
                      f"{m['adc_energy_pj'] / 1e3:,.0f}", f"{m['peripheral_energy_pj'] / 1e3:,.0f}"]
        else:
            cells += ["-"] * 5
        c16, b16 = rocc.get((precision, scheme, 16)), rocc.get((precision, "per-tensor", 16))
        c4, b4 = rocc.get((precision, scheme, 4)), rocc.get((precision, "per-tensor", 4))
        if c16 and b16 and c4 and b4:
            cells += [f"{c16 / 1e6:.2f}", f"{100 * (c16 / b16 - 1):+.3f}% / {100 * (c4 / b4 - 1):+.2f}%"]
        else:
            cells += ["-", "-"]
        out.append("| " + " | ".join(cells) + " |")
    out += ["", "imc P.V bits: the P input (and V weight) bits of the P.V crossbars; per-tensor uses the op's "
            "(8 or 4).", ""]
    return out


def main():
    doc = json.load(open(os.path.join(SRC, "bench", "results", "quant.json")))
    m, s = doc["machine"], doc["shape"]
    out = ["# Quantization schemes: accuracy and cost (generated)", "",
           "Generated by `bench/quant/report.py` from `bench/results/quant.json` (`make bench-quant`, "
           "`bench/quant/run.py`). Schemes and their exact math: `man/sattn-quant.7.scd`.", "",
           f"Measured {doc['date']} on {m['cpu']} ({m['cores']} cores shared with other jobs; load "
           f"{' '.join(m['loadavg_before'])} before, {' '.join(m['loadavg_after'])} after).", "",
           f"Op: batch {s['batch']}, {s['heads']} query heads, {s['kv_heads']} KV heads, seq {s['seq_len']}, "
           f"head_dim {s['head_dim']}, causal, {s['spec']} layout. Errors of the output against a float64 numpy "
           "reference (bench/quant/run.py), every row: max-norm relative error (max|o-r|/max|r|), relative L1 "
           "(sum|o-r|/sum|r|), cosine. Cost, one thread, measured side by side in one run (the ratio to "
           "per-tensor is what carries over to other machines): the cpu kernel's wall time (median of 3; the "
           "load of the shared machine moves it a lot) and the CPU time of reading the data, quantizing and the "
           "kernel (the process's user + sys time less a --dry-run's, medians of 5: what the load barely moves).", "",
           "| data | prec | scheme | max-norm | rel-L1 | cosine | check | cpu wall ms | vs per-tensor | cpu time ms | vs per-tensor |",
           "|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|"]
    base = {(r["data"], r["precision"]): r for r in doc["rows"] if r["scheme"] == "per-tensor"}
    for r in doc["rows"]:
        b = base[(r["data"], r["precision"])]
        ratio = r["cpu_kernel_ms"] / b["cpu_kernel_ms"] if b["cpu_kernel_ms"] > 0 else float("nan")
        cpu, bcpu = r.get("cpu_time_ms"), b.get("cpu_time_ms")
        cpu_cells = f"{cpu:.1f} | {cpu / bcpu:.2f}x" if cpu is not None and bcpu else "- | -"
        out.append(f"| {r['data']} | {r['precision']} | {r['scheme']} | {r['max_rel']:.3g} | {r['rel_l1']:.3g} | "
                   f"{r['cosine']:.5f} | {'pass' if r['passed'] else 'FAIL'} | {r['cpu_kernel_ms']:.1f} | {ratio:.2f}x | "
                   f"{cpu_cells} |")
    out += ["", "Recommended scheme (the default of `sattn run --precision i8|i4` on every backend: cpu, rvv, imc "
            "and rocc): `smooth` at i8, `smooth,block=2` at i4 (docs/decisions.md). The check column is `sattn run`'s own verdict with the precision's "
            "metrics (docs/decisions.md): i8 max-norm <= 5e-2; i4 relative L1 <= 2e-1 and cosine >= 0.98; "
            "i4 per-tensor only against the same-quantized reference.", "",
            ]
    out += backend_costs(doc)
    out += ["## Schemes a backend refuses", "",
            "rocc runs every scheme whose P.V datapath it has (the section below); it refuses the others before any "
            "work (`sattn run --backend B --quant-scheme S`, exit 3):", "",
            "| backend | scheme | exit | message |", "|---|---|---:|---|"]
    for r in doc["backends"]:
        msg = r["message"].replace("|", "\\|")
        out.append(f"| {r['backend']} | {r['scheme']} | {r['exit']} | {msg} |")
    rocc = os.path.join(SRC, "bench", "results", "quant-rocc.json")
    if os.path.exists(rocc):
        out += rocc_section(rocc)
    out.append("")
    with open(os.path.join(SRC, "bench", "results", "quant.md"), "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
