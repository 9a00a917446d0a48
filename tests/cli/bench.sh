# sattn bench: sweeps, bench.json against its schema, CSV, job lists run by bash and by
# xargs -P2 (a stand-in for GNU parallel) then --collect, plots, failing points, SIGINT.
source "$(dirname "$0")/lib.sh"
SCHEMA="$SRC/schemas/bench.schema.json"
SMALL=(--head-dim 16 --heads 2 -q)

validate() {  # FILE: validates against the schema
  $PY - "$SCHEMA" "$1" <<'EOF'
import json, sys, jsonschema
jsonschema.Draft202012Validator(json.load(open(sys.argv[1]))).validate(json.load(open(sys.argv[2])))
EOF
}

# The comparable content of records: id, status, and the deterministic figures (not timings).
summary() {
  $PY - "$1" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for r in sorted(d["records"], key=lambda r: r["id"]):
    f = r["figures"]
    print(r["id"], r["status"], f.get("density"), f.get("allowed_pairs"), f.get("passed"))
EOF
}

# --- a tiny cpu sweep: 2 specs x 2 seq_lens (+ the dense and the OpenBLAS baseline of each size) ---
run "$SATTN" bench --backend cpu --specs sliding_window,bsr --seq-lens 32,64 "${SMALL[@]}" --out-dir "$T/sweep"
expect_rc 0 "cpu sweep"
expect_file "$T/sweep/bench.json" "bench.json"
validate "$T/sweep/bench.json" && ok || fail "bench.json validates against schemas/bench.schema.json"
# Header and one row per point: 3 specs (dense baseline added) + OpenBLAS dense, x 2 sizes.
head -1 "$T/sweep/bench.csv" | grep -q '^id,backend,spec,seq_len,precision,kernel,vlen,lanes,params,baseline,status,exit_code,wall_s,' &&
  ok || fail "bench.csv header"
[[ $(tail -n +2 "$T/sweep/bench.csv" | wc -l) -eq 8 ]] && ok || fail "bench.csv has 8 rows"
# Densities from the definitions (not from the code): sliding_window n=32, window 32/16=2,
# non-causal: rows 0,31 see 3 keys, rows 1,30 see 4, the other 28 see 5 -> 154/1024.
# bsr n=64: block 64/16=4, 16 block columns, keep ceil(0.25*16)=4 of each row -> 1/4.
$PY - "$T/sweep/bench.json" <<'EOF' && ok || fail "cpu densities and speedups"
import json, sys
d = json.load(open(sys.argv[1]))
r = {x["id"]: x for x in d["records"]}
assert abs(r["cpu-sliding_window-n32-fp32"]["figures"]["density"] - 154 / 1024) < 1e-12
assert abs(r["cpu-bsr-n64-fp32"]["figures"]["density"] - 0.25) < 1e-12
assert r["cpu-dense-n64-fp32"]["point"]["baseline"] is True
for x in r.values():
    f = x["figures"]
    n = x["point"]["seq_len"]
    assert x["status"] == "passed" and f["passed"] is True
    # speedups = the baseline's kernel time / this kernel time, from the records' own times
    blas = r["cpu-dense-n%d-fp32-openblas" % n]["figures"]["kernel_ms"]
    assert abs(f["speedup_vs_blas"] - blas / f["kernel_ms"]) < 1e-9 * f["speedup_vs_blas"]
    assert abs(f["gflops"] - 4 * 16 * f["allowed_pairs"] / (f["kernel_ms"] * 1e6)) < 1e-9 * f["gflops"]
    if x["point"]["kernel"] == "openblas":
        # dense attention by OpenBLAS: every pair, checked against the fast dense kernel
        assert x["point"]["baseline"] and f["density"] == 1 and f["allowed_pairs"] == 2 * n * n, x
        assert f["max_rel_error"] <= f["tolerance"] == 1e-4 and "speedup_vs_dense" not in f
        continue
    dense = r["cpu-dense-n%d-fp32" % n]["figures"]["kernel_ms"]
    assert abs(f["speedup_vs_dense"] - dense / f["kernel_ms"]) < 1e-9 * f["speedup_vs_dense"]
p = d["provenance"]
assert p["parameters"]["seq_lens"] == [32, 64] and p["machine"]["cores"] >= 1 and p["git"]["revision"]
assert len(p["load_average"]["start"]) == 3 and len(p["load_average"]["end"]) == 3
assert d["summary"] == {"points": 8, "passed": 8, "check_failed": 0, "failed": 0, "exit_status": 0}
EOF

# --- job lists: run by plain bash, and by xargs -P2, then --collect: the same records ---
run "$SATTN" bench --backend cpu --specs sliding_window,bsr --seq-lens 32,64 "${SMALL[@]}" \
  --emit-jobs "$T/jobs.txt" --results-dir "$T/res1"
expect_rc 0 "--emit-jobs"
[[ $(wc -l <"$T/jobs.txt") -eq 8 ]] && ok || fail "8 job lines"
while IFS= read -r line; do bash -c "$line" || fail "job line: $line"; done <"$T/jobs.txt"
run "$SATTN" bench --collect "$T/res1" --out-dir "$T/coll1" -q
expect_rc 0 "--collect (bash)"
validate "$T/coll1/bench.json" && ok || fail "collected bench.json validates"
[[ "$(summary "$T/coll1/bench.json")" == "$(summary "$T/sweep/bench.json")" ]] && ok || fail "collected records = direct sweep"
sed "s|$T/res1|$T/res2|" "$T/jobs.txt" | xargs -P2 -d '\n' -n1 bash -c && ok || fail "jobs under xargs -P2"
run "$SATTN" bench --collect "$T/res2" -o "$T/coll2.json" -q
expect_rc 0 "--collect (xargs)"
[[ "$(summary "$T/coll2.json")" == "$(summary "$T/sweep/bench.json")" ]] && ok || fail "xargs-collected records = direct sweep"

# --- plots: non-empty SVG and PNG ---
run "$SATTN" bench --backend cpu --specs bsr --seq-lens 64 "${SMALL[@]}" --out-dir "$T/plot" --plot
expect_rc 0 "--plot"
[[ -s "$T/plot/plots/cpu_speedup.svg" && -s "$T/plot/plots/cpu_speedup.png" ]] && ok || fail "cpu_speedup.svg/png"
[[ -s "$T/plot/plots/cpu_gflops.svg" && -s "$T/plot/plots/cpu_gflops.png" ]] && ok || fail "cpu_gflops.svg/png"
grep -q '"openblas"' "$T/plot/plots/cpu_gflops.gp" && ok || fail "cpu_gflops has the OpenBLAS point"

# --- the OpenBLAS baseline: causal masking checked (against the fast dense kernel), and dropped on request ---
run "$SATTN" bench --backend cpu --specs sliding_window --seq-lens 48 --causal "${SMALL[@]}" -o "$T/causal.json"
expect_rc 0 "causal sweep"
$PY - "$T/causal.json" <<'EOF' && ok || fail "causal OpenBLAS point: half the pairs, within tolerance"
import json, sys
r = {x["id"]: x for x in json.load(open(sys.argv[1]))["records"]}
f = r["cpu-dense-n48-fp32-openblas"]["figures"]
assert f["passed"] is True and f["allowed_pairs"] == 2 * 48 * 49 // 2 and f["max_rel_error"] <= 1e-4, f
EOF
run "$SATTN" bench --backend cpu --specs bsr --seq-lens 32 --no-blas-baseline "${SMALL[@]}" --list
expect_rc 0 "--no-blas-baseline --list"
[[ "$out" == $'cpu-dense-n32-fp32\ncpu-bsr-n32-fp32' ]] && ok || fail "--no-blas-baseline: no openblas point ($out)"
run "$SATTN" bench --blas-dense "$T/missing.json"
[[ $rc -ne 0 ]] && ok || fail "--blas-dense on a missing op fails"
grep -q '<svg' "$T/plot/plots/cpu_speedup.svg" && ok || fail "an SVG document"
[[ $(head -c 4 "$T/plot/plots/cpu_speedup.png" | od -An -c | tr -d ' ') == '211PNG' ]] && ok || fail "a PNG file"

# --- a failing point is recorded, the sweep goes on, the exit status says so ---
run "$SATTN" bench --backend cpu --specs sliding_window --seq-lens 32 --param window_size=-1 "${SMALL[@]}" -o "$T/fail.json"
expect_rc 3 "a point with an impossible parameter: exit 3"
$PY - "$T/fail.json" <<'EOF' && ok || fail "failure recorded, dense point still ran"
import json, sys
d = json.load(open(sys.argv[1]))
r = {x["id"]: x for x in d["records"]}
bad = r["cpu-sliding_window-n32-fp32"]
assert bad["status"] == "failed" and bad["exit_code"] == 3 and "window_size" in bad["error"], bad
assert r["cpu-dense-n32-fp32"]["status"] == "passed"
assert d["summary"]["failed"] == 1 and d["summary"]["exit_status"] == 3
EOF
run "$SATTN" bench --backend gpu
expect_rc 2 "unknown backend: usage"
expect_err "unknown backend 'gpu'" "names the backend"
# sim, the accelerator's name before this release, is a deprecated alias of rocc: one warning.
run "$SATTN" bench --backend sim,rvv --specs bsr --seq-lens 64 --kernels rvv --vlens 128 --list
expect_rc 0 "--backend sim still sweeps"
expect_out "^rocc-bsr-n64-fp32-l16$" "--backend sim: rocc points"
expect_err "^sattn bench: warning: backend name 'sim' is deprecated and will be removed in the next release; use 'rocc'$" "sim: deprecation warning"
[[ $(grep -c . <<<"$err") -eq 1 ]] && ok || fail "sim: one warning line"

# --- one rvv point and one sim point (the real tools: QEMU and the Verilator harness) ---
run "$SATTN" bench --backend rvv --vlens 128 --kernels rvv --specs sliding_window --seq-lens 64 "${SMALL[@]}" -o "$T/rvv.json"
expect_rc 0 "rvv point"
$PY -c 'import json,sys; r=json.load(open(sys.argv[1]))["records"][0]["figures"]; assert r["instructions"] > r["vector_instructions"] > 0 and r["modelled_cycles"] > 0' "$T/rvv.json" &&
  ok || fail "rvv figures"
run "$SATTN" bench --backend rocc --lanes 16 --specs bsr --seq-lens 64 "${SMALL[@]}" -o "$T/sim.json"
expect_rc 0 "sim point"
# fp32 asked, i8 run (the accelerator is integer-only): plots name the precision used.
run "$SATTN" bench --backend rocc --lanes 16 --specs bsr --seq-lens 64 "${SMALL[@]}" --model-only --out-dir "$T/simplot" --plot
expect_rc 0 "sim plot"
grep -hE 'title "[^"]*n=64 i8' "$T"/simplot/plots/*.gp >/dev/null && ok || fail "sim plot legends say i8 (precision_used)"
grep -hE 'title "[^"]*n=64 fp32' "$T"/simplot/plots/*.gp >/dev/null && fail "a sim plot legend says fp32" || ok
# Roofline figures from the counters: bound = max(compute, memory); ratio = cycles / bound.
$PY -c '
import json,sys
f=json.load(open(sys.argv[1]))["records"][0]["figures"]
assert f["bound_cycles"] == max(f["compute_cycles"], f["memory_cycles"]) and f["cycles"] >= f["bound_cycles"]
assert abs(f["roofline_ratio"] - f["cycles"] / f["bound_cycles"]) < 1e-9 and abs(f["macs_per_cycle"] - f["macs_issued"] / f["cycles"]) < 1e-9' "$T/sim.json" &&
  ok || fail "sim roofline figures"
# Under a profile: the point takes the profile's lanes and DRAM figures (lowpower: 8 lanes, 4 B/cycle).
run "$SATTN" bench --backend rocc --model-only --profile lowpower --specs bsr --seq-lens 64 "${SMALL[@]}" -o "$T/simp.json"
expect_rc 0 "sim point under --profile lowpower"
$PY -c '
import json,sys
r=json.load(open(sys.argv[1]))["records"][0]
f=r["figures"]
assert r["id"] == "rocc-bsr-n64-fp32-lowpower" and r["point"]["backend"] == "rocc" and r["point"]["profile"] == "lowpower" and r["point"]["lanes"] is None, r["id"]
assert f["sim_lanes"] == 8 and f["dram_bytes_per_cycle"] == 4 and f["compute_cycles"] == f["macs_issued"] / 8, f' "$T/simp.json" &&
  ok || fail "sim figures under lowpower"

# --- SIGINT during a sweep: exit 130, no output files, nothing staged left behind ---
mkdir -p "$T/intr"
# Sizes up to 8192 so that no machine finishes the sweep before the signal; it is sent once the
# first point's subprocess is running (and at most ~20 s in).
"$SATTN" bench --backend cpu --specs sliding_window,bsr,nm_structured,topk_per_query --seq-lens 512,1024,4096,8192 \
  --head-dim 64 --heads 8 --reps 3 -q --out-dir "$T/intr/out" -o "$T/intr/b.json" 2>"$T/intr/err" &
pid=$!
wait_for_child "$pid" 200
sleep 0.5
kill -INT $pid
wait $pid
rc=$?
expect_rc 130 "SIGINT: exit 130"
[[ -z $(ls -A "$T/intr") || $(ls -A "$T/intr") == err ]] && ok || fail "SIGINT left files: $(ls -A "$T/intr")"
grep -q interrupted "$T/intr/err" && ok || fail "SIGINT message"

# --- load average: timed (cpu) points measured above the per-core threshold are flagged ---
run env SATTN_BENCH_HIGH_LOAD=-1 "$SATTN" bench --backend cpu --specs dense --seq-lens 64 --head-dim 16 --heads 2 \
  --no-blas-baseline --out-dir "$T/load"
expect_rc 0 "forced high load"
expect_err "^sattn bench: warning: cpu-dense-n64-fp32: measured at load average [0-9.]+ on [0-9]+ cores" "load warning on stderr"
head -1 "$T/load/bench.csv" | grep -q ',load_average,load_warning,' && ok || fail "CSV has load columns"
grep -q '^cpu-dense-n64-fp32,.*,measured at load average' "$T/load/bench.csv" && ok || fail "CSV row carries the warning"
run env SATTN_BENCH_HIGH_LOAD=1000000 "$SATTN" bench --backend cpu --specs dense --seq-lens 64 --head-dim 16 --heads 2 \
  --no-blas-baseline -o "$T/noload.json"
expect_rc 0 "threshold not reached"
grep -q 'warning' <<<"$err" && fail "no load warning below the threshold: $err" || ok
$PY -c 'import json,sys; r=json.load(open(sys.argv[1]))["records"][0]; assert r["load_warning"] is None and r["load_average"] >= 0' "$T/noload.json" &&
  ok || fail "record: load_average, no warning"

finish
