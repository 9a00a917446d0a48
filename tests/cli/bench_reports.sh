# bench/results/*.md are generated from the committed JSON, never typed: regenerating each report
# from its JSON gives the committed file byte for byte (and `make bench-reports` does the same).
source "$(dirname "$0")/lib.sh"
R="$SRC/bench/results"
PY3=/usr/bin/python3

same() {  # GENERATED COMMITTED NAME
  if cmp -s "$1" "$2"; then ok; else fail "$3 differs from what its generator writes from the JSON:"; diff "$2" "$1" | head -20 >&2; fi
}

run $PY3 "$SRC/bench/cpu/report.py" "$R/cpu.json" "$T/cpu.md"
expect_rc 0 "bench/cpu/report.py"
same "$T/cpu.md" "$R/cpu.md" bench/results/cpu.md

run $PY3 "$SRC/bench/fidelity/report.py" "$R/fidelity.json" "$T/fidelity.md"
expect_rc 0 "bench/fidelity/report.py"
same "$T/fidelity.md" "$R/fidelity.md" bench/results/fidelity.md
grep -q "Pareto" "$T/fidelity-pareto.svg" && ok || fail "fidelity-pareto.svg drawn"

run $PY3 "$SRC/bench/emit/report.py" "$R/emit.json" "$T/emit.md"
expect_rc 0 "bench/emit/report.py"
same "$T/emit.md" "$R/emit.md" bench/results/emit.md

run $PY3 "$SRC/bench/scaling/report.py" report "$T/scaling.md"
expect_rc 0 "bench/scaling/report.py"
same "$T/scaling.md" "$R/scaling.md" bench/results/scaling.md

mkdir -p "$T/roof"
run $PY3 "$SRC/bench/sim/roofline.py" "$R/roofline.json" "$T/roof"
expect_rc 0 "bench/sim/roofline.py"
same "$T/roof/roofline.md" "$R/roofline.md" bench/results/roofline.md
for p in highperf lowpower imc; do
  [[ -s "$T/roof/roofline-$p.svg" && -s "$T/roof/roofline-$p.png" ]] && ok || fail "roofline-$p.svg/png drawn"
done

run $PY3 "$SRC/bench/sim/report.py" report "$R/sim.jsonl" "$T/sim-baseline.json" "$T/sim.md" -
expect_rc 0 "bench/sim/report.py"
same "$T/sim.md" "$R/sim.md" bench/results/sim.md
same "$T/sim-baseline.json" "$SRC/bench/sim/baseline.json" bench/sim/baseline.json

if [[ -f "$R/rvv.json" ]]; then
  run $PY3 "$SRC/bench/rvv/report.py" report-json "$R/rvv.json" "$T/rvv.md" "$T/rvv-baseline.json"
  expect_rc 0 "bench/rvv/report.py report-json"
  same "$T/rvv.md" "$R/rvv.md" bench/results/rvv.md
  same "$T/rvv-baseline.json" "$SRC/bench/rvv/baseline.json" bench/rvv/baseline.json
fi

# The roofline fits say what docs/roofline.md states: cycles linear in allowed pairs, at the
# compute floor 2 * head_dim / LANES within 10%, R^2 >= 0.999, under every profile.
$PY3 - "$T/roof/roofline.md" <<'EOF' && ok || fail "roofline fits: linear in pairs near the floor"
import re, sys
text = open(sys.argv[1]).read()
for prof, floor in (("highperf", 4), ("lowpower", 16), ("imc", 16)):
    sec = text.split(f"## Profile {prof}:")[1].split("## Profile")[0]
    fits = re.findall(r"^\| [^|]+: \d+ \| ([0-9.]+) \| [-0-9]+ \| ([0-9.]+) \|", sec, re.M)
    assert len(fits) == 4, (prof, fits)
    for a, r2 in fits:
        assert floor <= float(a) <= 1.1 * floor and float(r2) >= 0.999, (prof, a, r2)
EOF

# The accelerator grid's report (bench/grid/report.py) and its plots.
mkdir -p "$T/grid"
run $PY3 "$SRC/bench/grid/report.py" "$R/grid.json" "$T/grid"
expect_rc 0 "bench/grid/report.py"
same "$T/grid/grid.md" "$R/grid.md" bench/results/grid.md
for p in speedup efficiency; do
  [[ -s "$T/grid/grid-$p.svg" && -s "$T/grid/grid-$p.png" ]] && ok || fail "grid-$p.svg/png drawn"
done

finish
