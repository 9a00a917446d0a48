# The performance regression check: the canonical workloads match bench/baseline.json (their
# counts are deterministic), and a count more than 5% above its baseline fails naming the
# workload and both numbers.
source "$(dirname "$0")/lib.sh"
run "$SRC/bench/check.sh" "$BUILD"
expect_rc 0 "every canonical workload within 5% of bench/baseline.json"
expect_out "bench-check: ok sim.bsr.i8.lanes16: " "the accelerator workloads ran"
expect_out "bench-check: ok rvv.sliding_window.fp32.vlen128: " "the RVV workloads ran"
[[ $(grep -c "^bench-check: ok " <<<"$out") -ge 10 ]] && ok || fail "at least 10 canonical workloads"
# A baseline 10% below today's count makes today's count a regression.
$PY - "$SRC/bench/baseline.json" "$T/lower.json" <<'P'
import json, sys
d = json.load(open(sys.argv[1]))
w = d["workloads"]["rvv.bsr.i8.vlen256"]
w["value"] = int(w["value"] / 1.1)
json.dump(d, open(sys.argv[2], "w"))
P
run "$SRC/bench/check.sh" --baseline "$T/lower.json" "$BUILD"
expect_rc 1 "a regression fails"
expect_out "REGRESSION rvv.bsr.i8.vlen256: rvv.instructions.total [0-9]+ -> [0-9]+ \(\+10\.0%\)" "names the workload and both numbers"
finish
