# Determinism (issue 9): the same inputs and seed give byte-identical plans, artifacts and
# results across runs and across thread counts; only wall time differs, and every wall-time field
# of a result lives in its one "timing" object, which is dropped before comparing.
source "$(dirname "$0")/lib.sh"
BIN="$(dirname "$SATTN")"
strip_timing() {  # strip_timing FILE: JSON lines without their wall-time fields
  "$PY" - "$1" <<'PYEOF'
import json, sys
WALL = {"timing"}
def strip(x):
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if k not in WALL}
    if isinstance(x, list):
        return [strip(v) for v in x]
    return x
text = open(sys.argv[1]).read()
try:
    docs = [json.loads(text)]
except ValueError:
    docs = [json.loads(l) for l in text.splitlines() if l.strip()]
for d in docs:
    print(json.dumps(strip(d), sort_keys=True))
PYEOF
}
same() {  # same NAME A B: byte-identical files
  cmp -s "$2" "$3" && ok || { out=""; err=$(diff <(head -c 3000 "$2") <(head -c 3000 "$3") | head -20); rc=1; fail "$1: differs"; }
}

# select and emit: identical bytes, every file of the out-dir (data-dependent specs included).
for ex in gqa_causal bsr topk_per_query lsh landmark multi; do
  "$BIN/sattn-select" "$SRC/examples/$ex.mlir" >"$T/$ex.plan1" 2>/dev/null
  "$BIN/sattn-select" "$SRC/examples/$ex.mlir" >"$T/$ex.plan2" 2>/dev/null
  same "select $ex" "$T/$ex.plan1" "$T/$ex.plan2"
  "$BIN/sattn-emit" "$T/$ex.plan1" --out-dir "$T/$ex.a1" >/dev/null 2>&1
  "$BIN/sattn-emit" "$T/$ex.plan1" --out-dir "$T/$ex.a2" >/dev/null 2>&1
  while IFS= read -r f; do
    same "emit $ex ${f#"$T/$ex.a1/"}" "$f" "$T/$ex.a2/${f#"$T/$ex.a1/"}"
  done < <(find "$T/$ex.a1" -type f | sort)
  [[ $(cd "$T/$ex.a1" && find . | sort) == $(cd "$T/$ex.a2" && find . | sort) ]] && ok || fail "emit $ex: different file sets"
done

# run on the CPU: the same output array and result across thread counts (1, 2, 3, 5, 7 and the
# default), for every spec (issue 18: lsh's row regrouping once followed the thread count). Each
# example as written (some are causal, GQA, with tails) and at fp32 and i8 (the integer path).
for ex in dense sliding_window bsr block_local_global nm_structured topk_per_query lsh landmark gqa_causal; do
  for prec in as-written i8; do
    op=$SRC/examples/$ex.mlir
    if [[ $prec == i8 ]]; then
      sed -e 's/precision = "[a-z0-9]*"/precision = "i8"/; t; s/seq_len =/precision = "i8", seq_len =/' "$op" >"$T/$ex.i8.mlir"
      op=$T/$ex.i8.mlir
    fi
    for th in 1 2 3 5 7 0; do
      "$SATTN" run "$op" --threads "$th" --out-dir "$T/run.$ex.$prec.$th" >/dev/null 2>&1
      strip_timing "$T/run.$ex.$prec.$th/result.json" >"$T/run.$ex.$prec.$th.json"
    done
    for th in 2 3 5 7 0; do
      same "run $ex ($prec) o.npy threads 1 vs $th" "$T/run.$ex.$prec.1/o.npy" "$T/run.$ex.$prec.$th/o.npy"
      same "run $ex ($prec) result threads 1 vs $th" "$T/run.$ex.$prec.1.json" "$T/run.$ex.$prec.$th.json"
    done
  done
done

# run-rvv, sim (the cycle-exact model), calibrate, imc: twice each, results equal.
twice() {  # twice NAME CMD...: runs CMD twice (stdout JSON), compares without wall-time fields
  local name=$1
  shift
  "$@" >"$T/$name.1" 2>/dev/null
  "$@" >"$T/$name.2" 2>/dev/null
  [[ -s $T/$name.1 ]] && ok || { out=""; err=""; rc=1; fail "$name: no output"; }
  strip_timing "$T/$name.1" >"$T/$name.1s"
  strip_timing "$T/$name.2" >"$T/$name.2s"
  same "$name twice" "$T/$name.1s" "$T/$name.2s"
}
twice rvv "$BIN/sattn-run-rvv" "$SRC/examples/bsr.mlir" --vlen 256
twice sim "$BIN/sattn-sim" "$SRC/examples/bsr.mlir" --precision i8 --model-only
twice imc "$BIN/sattn-imc" "$SRC/examples/bsr.mlir"
twice calibrate "$BIN/sattn-calibrate" "$SRC/examples/bsr.mlir"
finish
