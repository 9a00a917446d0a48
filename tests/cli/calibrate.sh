# `sattn calibrate`: every flag, the --apply round trip through `sattn run`, and bad data.
source "$(dirname "$0")/lib.sh"

cat >"$T/op.mlir" <<'M'
"sattn.sparse_attention"() { name = "a", heads = 2 : i64, seq_len = 128 : i64, head_dim = 32 : i64, spec = "dense" } : () -> ()
M
cat >"$T/op4.mlir" <<'M'
"sattn.sparse_attention"() { name = "b", heads = 4 : i64, seq_len = 256 : i64, head_dim = 64 : i64, spec = "dense" } : () -> ()
M
# Data written by numpy: Gaussian samples, outlier-heavy samples, and broken ones.
"$PY" - "$T" <<'P'
import numpy as np, os, sys
t = sys.argv[1]
rng = np.random.default_rng(5)
shape = (1, 2, 128, 32)
def save(d, **arrays):
    os.makedirs(os.path.join(t, d), exist_ok=True)
    for n, a in arrays.items(): np.save(os.path.join(t, d, n + ".npy"), np.asarray(a, np.float32))
def outliers(a):
    m = rng.random(a.shape) < 1e-3
    a = a.copy(); a[m] = rng.choice([-1, 1], m.sum()) * rng.uniform(10, 20, m.sum()); return a
g = lambda: rng.standard_normal(shape)
save("gauss", q=g(), k=g(), v=g())
for s in range(3):
    g4 = lambda: rng.standard_normal((1, 4, 256, 64))  # for op4.mlir
    save(f"outl/s{s}", q=outliers(g4()), k=outliers(g4()), v=outliers(g4()))
nan = g(); nan[0, 1, 5, 7] = np.nan
inf = g(); inf[0, 0, 3, 2] = np.inf
save("nan", q=g(), k=nan, v=g())
save("inf", q=g(), k=g(), v=inf)
save("zeros", q=g(), k=g(), v=np.zeros(shape))
save("shape", q=g(), k=rng.standard_normal((1, 2, 64, 32)), v=g())
save("trunc", q=g(), k=g(), v=g())
raw = open(os.path.join(t, "trunc", "q.npy"), "rb").read()
open(os.path.join(t, "trunc", "q.npy"), "wb").write(raw[: len(raw) // 2])
P

# Default: every method runs, the recommended one is reported.
run "$SATTN" calibrate "$T/op.mlir" --data "$T/gauss"
expect_rc 0 "default run"
expect_out '"schema":"sattn.calibration/v1"' "calibration schema"
expect_out '"recommended":"(absmax|percentile|mse|kl)"' "recommended method named"
[[ $(grep -o '"method":' <<<"$out" | wc -l) -eq 1 ]] && ok || fail "only the recommended method without --compare"
expect_out '"precision":"i8"' "default precision i8 for an fp32 op"
expect_out '"granularity":"tensor"' "default granularity"
expect_out '"sqnr_db":[0-9.]+' "SQNR reported"
expect_out '"attention_error":\{"max_abs":[0-9.e-]+,"max_rel":[0-9.e-]+,"mean_rel"' "end-to-end error reported"

# --compare: all four, exactly one marked best, and it is the recommended one.
run "$SATTN" calibrate "$T/op.mlir" --data "$T/gauss" --compare
expect_rc 0 "--compare"
for m in absmax percentile mse kl; do expect_out "\"method\":\"$m\"" "--compare runs $m"; done
run "$PY" -c "
import json, sys
r = json.loads(sys.stdin.read())
best = [m['method'] for m in r['methods'] if m['best']]
errs = {m['method']: m['attention_error']['max_rel'] for m in r['methods']}
assert best == [r['recommended']], best
assert errs[best[0]] <= min(errs.values()) * 1.01, errs
print('ok')" <<<"$out"
expect_out '^ok$' "--compare marks the lowest-error method as best"

# --method, --precision, --percentile: absmax scales are absmax/127 of the data (numpy).
run "$SATTN" calibrate "$T/op.mlir" --data "$T/gauss" --method absmax --precision i4
expect_rc 0 "--method absmax --precision i4"
run "$PY" -c "
import json, sys, numpy as np
r = json.loads(sys.stdin.read())
assert r['precision'] == 'i4' and r['quant_max'] == 7
for n in 'qkv':
    want = np.abs(np.load('$T/gauss/' + n + '.npy')).max() / 7
    got = r['methods'][0]['tensors'][n]['scale']
    assert abs(got - want) <= 1e-6 * want, (n, got, want)
print('ok')" <<<"$out"
expect_out '^ok$' "absmax scales match numpy"
run "$SATTN" calibrate "$T/op.mlir" --data "$T/gauss" --method percentile --percentile 50
expect_rc 0 "--percentile 50"
run "$PY" -c "
import json, sys, numpy as np
r = json.loads(sys.stdin.read())
want = np.percentile(np.abs(np.load('$T/gauss/k.npy')), 50)
got = r['methods'][0]['tensors']['k']['clip']
assert abs(got - want) <= 1e-5 * want, (got, want)
assert r['options']['percentile'] == 50
print('ok')" <<<"$out"
expect_out '^ok$' "percentile clip matches numpy.percentile"
for m in mse kl; do
  run "$SATTN" calibrate "$T/op.mlir" --data "$T/gauss" --method $m
  expect_rc 0 "--method $m"
  expect_out "\"method\":\"$m\"" "--method $m reported"
done
# The op's precision is the default.
run bash -c "echo '{\"heads\":2,\"seq_len\":128,\"head_dim\":32,\"spec\":\"dense\",\"precision\":\"i4\"}' | \"$SATTN\" calibrate --data \"$T/gauss\""
expect_rc 0 "op precision from stdin"
expect_out '"precision":"i4"' "the op's i4 precision is used"

# --granularity head: one scale per head.
run "$SATTN" calibrate "$T/op.mlir" --data "$T/gauss" --granularity head --method absmax
expect_rc 0 "--granularity head"
expect_out '"granularity":"head"' "granularity echoed"
expect_out '"q":\{"clip":\[[0-9.e-]+,[0-9.e-]+\],"scale":\[[0-9.e-]+,[0-9.e-]+\]' "two per-head scales"

# Several samples: repeated --data, a shell glob, a quoted glob; they agree.
run "$SATTN" calibrate "$T/op4.mlir" --method mse --data "$T/outl/s0" --data "$T/outl/s1" --data "$T/outl/s2"
expect_rc 0 "repeated --data"
expect_out '"samples":3' "three samples"
repeated=$out
run "$SATTN" calibrate "$T/op4.mlir" --method mse --data "$T"/outl/*
expect_rc 0 "shell-expanded glob"
[[ $out == "$repeated" ]] && ok || fail "a shell glob gives the same report as repeated --data"
run "$SATTN" calibrate "$T/op4.mlir" --method mse --data "$T/outl/*"
expect_rc 0 "quoted glob"
[[ $out == "$repeated" ]] && ok || fail "a quoted glob gives the same report as repeated --data"
run "$SATTN" calibrate "$T/op.mlir" --data "$T/nothing/*"
expect_rc 2 "a glob that matches nothing"
expect_err "matches no directory" "glob message"

# Synthetic data and --seed.
run "$SATTN" calibrate "$T/op.mlir" --method absmax
expect_rc 0 "synthetic"
expect_out '"seed":23159,"source":"synthetic"' "default seed"
s1=$out
run "$SATTN" calibrate "$T/op.mlir" --method absmax --seed 9
expect_out '"seed":9' "--seed echoed"
[[ $out != "$s1" ]] && ok || fail "another seed gives other scales"
run "$SATTN" calibrate "$T/op.mlir" --seed 9 --data "$T/gauss"
expect_rc 2 "--seed excludes --data"

# --format text, -o, -q, --threads.
run "$SATTN" calibrate "$T/op.mlir" --data "$T/gauss" --compare --format text -q --threads 1
expect_rc 0 "text"
expect_out '^op +prec +gran +method +scale_q +scale_k +scale_v +sqnr_q +sqnr_k +sqnr_v +max_rel_err +best' "table header"
[[ $(grep -c '\*$' <<<"$out") -eq 1 ]] && ok || fail "one row marked best"
run "$SATTN" calibrate "$T/op.mlir" --data "$T/gauss" -o "$T/cal.json"
expect_rc 0 "-o"
expect_no_out "-o leaves stdout empty"
grep -q '"schema":"sattn.calibration/v1"' "$T/cal.json" && ok || fail "-o file written"

# Outlier-heavy data (0.1% of the values at 10..20 sigma), i4: a clipping method beats absmax end
# to end. (At i8 absmax often stays best in max-norm on such data: see sattn-calibrate(1).)
run "$SATTN" calibrate "$T/op4.mlir" --data "$T/outl/*" --compare --precision i4
expect_rc 0 "outliers --compare"
run "$PY" -c "
import json, sys
r = json.loads(sys.stdin.read())
e = {m['method']: m['attention_error']['max_rel'] for m in r['methods']}
assert r['recommended'] != 'absmax' and e[r['recommended']] < e['absmax'], e
print('ok')" <<<"$out"
expect_out '^ok$' "recommended beats absmax on outliers"

# --apply: select | calibrate --apply | run. The plan carries the scales; sattn run uses them
# and measures the error the calibration reported.
run bash -c "\"$SATTN\" select \"$T/op4.mlir\" | \"$SATTN\" calibrate --apply --data \"$T/outl/s0\" --precision i4"
expect_rc 0 "--apply"
expect_out '"schema":"sattn.plan/v1"' "--apply writes plans"
expect_out '"precision":"i4"' "precision applied"
expect_out '"scale_q":[0-9.e-]+' "scale_q applied"
expect_out '"scale_k":[0-9.e-]+' "scale_k applied"
expect_out '"scale_v":[0-9.e-]+' "scale_v applied"
echo "$out" >"$T/plan.jsonl"
run "$SATTN" calibrate "$T/op4.mlir" --data "$T/outl/s0" --precision i4
echo "$out" >"$T/report.json"
# The applied scales are per-tensor: the per-tensor scheme uses them (the default scheme computes
# its own per-token scales at run time, sattn-quant(7)).
run "$SATTN" run "$T/plan.jsonl" --data "$T/outl/s0" --quant-scheme per-tensor
echo "$out" >"$T/result.json"
run "$PY" - "$T/plan.jsonl" "$T/report.json" "$T/result.json" <<'P'
import json, sys
plan, report, result = (json.loads(open(f).read()) for f in sys.argv[1:])
m = report["methods"][0]
for n in "qkv":
    assert plan["op"]["scale_" + n] == m["tensors"][n]["scale"], n
    assert result["op"]["scale_" + n] == m["tensors"][n]["scale"], n
# i4 per-tensor is checked against the same-quantized reference; its fp32 error is reported beside.
want, got = m["attention_error"]["max_rel"], result["check"]["fp32_reference"]["max_rel_error"]
assert abs(got - want) <= 0.01 * want, (got, want)
print("ok", got, want)
P
expect_out '^ok ' "sattn run uses the applied scales and measures the reported error"
# Plans round-trip: --apply on its own output keeps spec and selection.
run bash -c "\"$SATTN\" calibrate --apply --data \"$T/outl/s1\" --method absmax <\"$T/plan.jsonl\""
expect_rc 0 "--apply on an applied plan"
expect_out '"spec":"dense"' "spec kept"
expect_out '"precision":"i4"' "the plan's i4 precision kept"
run "$SATTN" calibrate --apply --granularity head "$T/op.mlir"
expect_rc 2 "--apply with per-head scales"
expect_err "needs per-tensor scales" "per-head --apply message"
run "$SATTN" calibrate --apply --format text "$T/op.mlir"
expect_rc 2 "--apply --format text"

# Usage errors.
for args in "--method bogus" "--precision bf16" "--granularity row" "--percentile 0" "--percentile 101" \
  "--compare --method mse" "--format yaml"; do
  run "$SATTN" calibrate "$T/op.mlir" $args
  expect_rc 2 "usage: $args"
done

# Bad data: exit 3 naming the file, nothing written to -o.
check_bad() {  # DIR FILE PATTERN
  rm -f "$T/bad.json"
  run "$SATTN" calibrate "$T/op.mlir" --data "$T/$1" -o "$T/bad.json"
  expect_rc 3 "bad data $1"
  expect_err "$T/$1/$2.*$3" "bad data $1 names the file"
  expect_no_file "$T/bad.json" "bad data $1 writes nothing"
}
check_bad nan k.npy "NaN"
check_bad inf v.npy "Inf"
check_bad zeros v.npy "every value is zero"
check_bad shape k.npy "does not match the op"
check_bad trunc q.npy ""
# A bad sample among good ones fails the whole run.
run "$SATTN" calibrate "$T/op.mlir" --data "$T/gauss" --data "$T/zeros" --apply -o "$T/bad.json"
expect_rc 3 "one bad sample"
expect_no_file "$T/bad.json" "one bad sample writes nothing"
# A malformed op is exit 3 too.
echo '"sattn.sparse_attention"() { heads = -1 : i64 } : () -> ()' >"$T/bad.mlir"
run "$SATTN" calibrate "$T/bad.mlir"
expect_rc 3 "malformed op"
expect_err "bad.mlir:1:" "malformed op location"

# The real activations (data/real, issue 20) beside the synthetic data: every layer calibrates
# from its calibration window (every method, SQNR above 20 dB on all three
# tensors); scales from the calibration window applied to the plan hold the i8 tolerance on the
# held-out window for layers 0 and 1. (Layers 2 and 3 exceed it even on their calibration window
# with per-tensor absmax scales: their outlier channels; README "How much does sparsity cost in
# accuracy?".)
for layer in 0 1 2 3; do
  run "$SATTN" calibrate "$SRC/data/real/ops/layer$layer.json" --data "$SRC/data/real/calib/layer$layer" --compare -o "$T/real$layer.json"
  expect_rc 0 "real layer $layer: calibrate"
done
run $PY - "$T" <<'PY'
import json, sys
for layer in range(4):
    d = json.loads(open(f"{sys.argv[1]}/real{layer}.json").readline())
    text = json.dumps(d)
    sq = [float(x) for x in __import__("re").findall(r'"sqnr_db": ([0-9.]+)', text)]
    assert len(sq) >= 12 and min(sq) > 20, (layer, sq)
print("ok")
PY
expect_rc 0 "real layers: SQNR above 20 dB for every method and tensor"
for layer in 0 1; do
  run "$SATTN" calibrate "$SRC/data/real/ops/layer$layer.json" --data "$SRC/data/real/calib/layer$layer" --apply -o "$T/real-plan$layer.json"
  expect_rc 0 "real layer $layer: --apply"
  run "$SATTN" run "$T/real-plan$layer.json" --data "$SRC/data/real/eval/layer$layer" --format json
  expect_rc 0 "real layer $layer: i8 with calibration-window scales on the held-out window"
  expect_out '"precision":"i8"' "real layer $layer: run at i8"
  expect_out '"passed":true' "real layer $layer: within the i8 tolerance"
done

finish
