# sattn eval / sattn-eval (issue 20): recall, oracle recall and output error against a direct
# numpy computation on small cases; the oracle bounds every spec's recall (random data, every
# grid point); sattn.eval/v1 validates; the gnuplot plot renders; the real activations; bad input
# (data shape, NaN) exits 3 naming the file.
source "$(dirname "$0")/lib.sh"
BIN="$(dirname "$SATTN")"
H="$SRC/tests/cli/eval"
SCHEMA="$SRC/schemas/eval.schema.json"
validate() { $PY -c "import json,jsonschema,sys; jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))" "$1" "$SCHEMA"; }

# 1. Small cases against numpy: GQA, causal with kv_len > seq_len, non-causal, float16 input.
mkdir -p "$T/a" "$T/b" "$T/c"
$PY "$H/make_data.py" "$T/a" 1 4 2 37 45 16 1
$PY "$H/make_data.py" "$T/b" 1 3 3 29 29 8 2
$PY "$H/make_data.py" "$T/c" 1 2 1 33 33 16 3 f16
cat >"$T/a.json" <<'J'
{"schema": "sattn.op/v1", "name": "a", "heads": 4, "kv_heads": 2, "seq_len": 37, "kv_len": 45, "head_dim": 16, "causal": true, "window_size": 5, "topk_k": 7}
J
cat >"$T/b.json" <<'J'
{"schema": "sattn.op/v1", "name": "b", "heads": 3, "kv_heads": 3, "seq_len": 29, "head_dim": 8, "causal": false, "window_size": 3, "topk_k": 4}
J
cat >"$T/c.json" <<'J'
{"schema": "sattn.op/v1", "name": "c", "heads": 2, "kv_heads": 1, "seq_len": 33, "head_dim": 16, "causal": true, "window_size": 2, "topk_k": 6}
J
check_case() {  # NAME CAUSAL WINDOW TOPK
  for spec in sliding_window topk_per_query; do
    run "$SATTN" eval "$T/$1.json" --data "$T/$1" --spec $spec -o "$T/$1-$spec.json"
    expect_rc 0 "$1 $spec: eval"
    local param=$3
    [[ $spec == topk_per_query ]] && param=$4
    run $PY "$H/numpy_check.py" "$T/$1-$spec.json" "$T/$1" $spec $param $2
    expect_rc 0 "$1 $spec: recall, oracle, error and density agree with numpy"
    validate "$T/$1-$spec.json" && ok || fail "$1 $spec: sattn.eval/v1 validates"
  done
}
check_case a true 5 7
check_case b false 3 4
check_case c true 2 6

# 2. The oracle bounds every spec's recall, row by row, so also its min, p10 and mean: every grid
# point on random data of several shapes and seeds (the per-row bound is a doctest:
# tests/unit/fidelity).
for seed in 11 12 13; do
  mkdir -p "$T/r$seed"
  $PY "$H/make_data.py" "$T/r$seed" 1 4 2 200 200 32 $seed
  cat >"$T/r$seed.json" <<J
{"schema": "sattn.op/v1", "name": "r$seed", "heads": 4, "kv_heads": 2, "seq_len": 200, "head_dim": 32, "causal": $([[ $seed == 12 ]] && echo false || echo true)}
J
  run "$BIN/sattn-eval" "$T/r$seed.json" --data "$T/r$seed" --grid -o "$T/r$seed-eval.json" --plot "$T/r$seed.gp"
  expect_rc 0 "seed $seed: the grid"
  run $PY - "$T/r$seed-eval.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
n = 0
specs = set()
for r in doc["results"]:
    specs.add(r["spec"])
    for h in r["samples"][0]["heads"] + [r["summary"]]:
        for s in ("min", "p10", "mean"):
            assert h["oracle"][s] >= h["recall"][s] - 1e-12, (r["spec"], r["label"], h)
        n += 1
    if r["spec"] == "dense":
        assert r["summary"]["recall"]["min"] == 1 and r["summary"]["error"]["max_rel"] < 1e-12, r["summary"]
assert specs == {"sliding_window", "bsr", "topk_per_query", "dense"}, specs
assert n > 100, n
print(n)
PY
  expect_rc 0 "seed $seed: oracle >= recall for every grid point and head (min, p10, mean); dense keeps everything"
  validate "$T/r$seed-eval.json" && ok || fail "seed $seed: the grid validates"
done
# The plot: gnuplot renders it to an SVG with a Pareto front.
(cd "$T" && gnuplot r11.gp) && ok || fail "gnuplot runs the --plot script"
expect_file "$T/r11.svg" "the plot's SVG"
grep -q "Pareto front" "$T/r11.svg" && ok || fail "the SVG shows the Pareto front"

# 3. The real activations (data/real): two samples, and a table.
run "$SATTN" eval "$SRC/data/real/ops/layer2.json" --spec bsr --data "$SRC/data/real/calib/layer2" --data "$SRC/data/real/eval/layer2" -o "$T/real.json"
expect_rc 0 "real layer 2, two samples"
validate "$T/real.json" && ok || fail "real: validates"
run $PY -c "import json,sys; d=json.load(open('$T/real.json')); r=d['results'][0]; assert len(d['samples'])==2 and len(r['samples'])==2 and r['summary']['heads']==12, r['summary']; print(r['summary']['recall'])"
expect_rc 0 "real: both samples, 6 heads each"
run "$BIN/sattn-eval" --format text "$SRC/data/real/ops/layer2.json" --spec sliding_window --data "$SRC/data/real/eval/layer2"
expect_rc 0 "real: text table"
expect_out "real_layer2 +sliding_window +window_size=64 +0 +all" "the table has a summary row"

# 4. Bad input: exit 3, the file named, nothing written.
mkdir -p "$T/nan" "$T/short"
$PY "$H/make_data.py" "$T/nan" 1 4 2 37 45 16 1 nan
$PY "$H/make_data.py" "$T/short" 1 4 2 30 45 16 1
run "$SATTN" eval "$T/a.json" --data "$T/nan" -o "$T/none.json"
expect_rc 3 "NaN in the data"
expect_err "sattn eval: error: $T/nan/k.npy.*NaN" "the NaN's file is named"
expect_no_file "$T/none.json" "no output after an error"
run "$BIN/sattn-eval" "$T/a.json" --data "$T/short"
expect_rc 3 "data shape does not match the op"
expect_err "sattn-eval: error: $T/short/q.npy.*does not match the op" "the mismatching file is named"
run "$BIN/sattn-eval" "$T/a.json" --data "$T/missing"
expect_rc 1 "a data directory without q.npy (an I/O failure)"
expect_err "missing/q.npy" "the missing file is named"
run "$BIN/sattn-eval" --version
expect_rc 0 "--version"
expect_out "^sattn-eval [0-9]" "--version prints the version"
finish
