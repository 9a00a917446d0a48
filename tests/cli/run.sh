# `sattn run --backend cpu`: results, outputs, data, and every error path with its exit code.
source "$(dirname "$0")/lib.sh"

cat >"$T/sw.mlir" <<'M'
module {
  // a causal, dilated sliding window with GQA
  "sattn.sparse_attention"() { seq_len = 200 : i64, heads = 4 : i64, kv_heads = 2 : i64,
     head_dim = 16 : i64, causal = true, window_size = 8 : i64, dilation = 2 : i64 } : () -> ()
}
M

run "$SATTN" run "$T/sw.mlir"
expect_rc 0 "run sliding window"
expect_out '"schema":"sattn.result/v1"' "result schema"
expect_out '"spec":"sliding_window"' "spec from window_size"
expect_out '"passed":true' "check passed"
[[ $(wc -l <<<"$out") -eq 1 ]] && ok || fail "one JSON line per op"

run "$SATTN" run --format text "$T/sw.mlir"
expect_rc 0 "text format"
expect_out '^op +spec +prec +density' "table header"
expect_out 'sliding_window +fp32 .* ok$' "table row"

# The spec can be forced; the result echoes resolved parameters.
run "$SATTN" run --spec bsr "$T/sw.mlir"
expect_rc 0 "forced bsr"
expect_out '"spec":"bsr"' "forced spec"
expect_out '"keep_ratio":0.125' "defaults filled in params"

# Stdin, JSON and every precision.
for p in fp32 bf16 i8; do
  run bash -c "echo '{\"schema\":\"sattn.op/v1\",\"seq_len\":96,\"heads\":2,\"head_dim\":32,\"topk_k\":16,\"precision\":\"$p\"}' | \"$SATTN\" run -"
  expect_rc 0 "stdin json precision $p"
  expect_out "\"precision\":\"$p\"" "precision $p echoed"
done
# i4 with the default (recommended) scheme: relative L1 and cosine against the fp32 reference.
run bash -c "echo '{\"seq_len\":96,\"heads\":2,\"head_dim\":32,\"topk_k\":16,\"precision\":\"i4\"}' | \"$SATTN\" run -"
expect_rc 0 "i4 with the recommended scheme is inside its tolerance"
expect_out '"metric":"rel_l1"' "i4 is checked by relative L1"
expect_out '"quant_scheme":"q=token,k=token,block=2,smooth=qk,rotate=1,pv=fix16,v=channel"' "i4 default scheme recorded"
# One outlier in Q makes a per-tensor absmax scale so coarse that every other query quantizes to
# 0: with --quant-scheme per-tensor at i8 the check fails honestly with exit 5, the result is
# still written, and stderr says why. The recommended scheme (per-token scales, Q smoothing by the
# block median when the mean would spread the outlier) keeps i8 within its tolerance. (At i4 this
# 5000-sigma outlier still costs it its check: relative L1 0.18, cosine 0.977.)
mkdir -p "$T/outlier"
$PY - "$T/outlier" <<'PYEOF'
import sys, numpy as np
r = np.random.default_rng(1)
q = (r.standard_normal((1, 2, 96, 32)) * 2).astype(np.float32)
k = (r.standard_normal((1, 2, 96, 32)) * 2).astype(np.float32)
v = r.standard_normal((1, 2, 96, 32)).astype(np.float32)
q[0, 0, 0, 0] = 1e4
for name, a in (("q", q), ("k", k), ("v", v)):
    np.save(f"{sys.argv[1]}/{name}.npy", a)
PYEOF
OUTLIER_OP='{"seq_len":96,"heads":2,"head_dim":32,"topk_k":16}'
run bash -c "echo '$OUTLIER_OP' | \"$SATTN\" run - --precision i8 --quant-scheme per-tensor --data \"$T/outlier\""
expect_rc 5 "i8 per-tensor outside tolerance is a check failure"
expect_out '"passed":false' "failed result still written"
expect_err "output differs from the reference: max relative error [0-9]\.[0-9]e-01 > tolerance 5\.0e-02" "check failure message"
run bash -c "echo '$OUTLIER_OP' | \"$SATTN\" run - --precision i8 --data \"$T/outlier\""
expect_rc 0 "i8 recommended scheme with an outlier passes"
# i4 per-tensor keeps no accuracy promise: checked against the same-quantized reference only.
run bash -c "echo '$OUTLIER_OP' | \"$SATTN\" run - --precision i4 --quant-scheme per-tensor --data \"$T/outlier\""
expect_rc 0 "i4 per-tensor: kernel checked against the same-quantized reference"
expect_out 'same-quantized reference' "i4 per-tensor reference named"
# Bad schemes: a usage error for the flag, exit 3 for a backend that runs per-tensor only.
run "$SATTN" run "$T/sw.mlir" --precision i8 --quant-scheme q=row
expect_rc 2 "bad --quant-scheme"
expect_err "valid granularities are tensor, head, block, token" "bad scheme named"
# The scheme travels in the op, the plan and the artifacts: select | emit | run.
echo '{"seq_len":64,"heads":2,"head_dim":32,"window_size":8,"precision":"i4","quant_scheme":"sage"}' >"$T/qs.json"
run bash -c "\"$SATTN\" select \"$T/qs.json\" | \"$SATTN\" emit - --out-dir \"$T/qs-art\" >/dev/null && \"$SATTN\" run \"$T/qs-art/artifacts.json\""
expect_rc 0 "scheme through the artifacts"
expect_out '"quant_scheme":"sage"' "artifacts keep the scheme"
run "$SATTN" run "$T/sw.mlir" --precision i8 --quant-scheme sage --backend rocc --dry-run
expect_rc 3 "rocc refuses a scheme it cannot run"
expect_err "backend rocc cannot run quant_scheme sage.*backends that can: cpu, rvv, imc" "refusal names the backends that can"
run bash -c "echo '{\"seq_len\":64,\"heads\":2,\"head_dim\":24,\"precision\":\"i8\",\"quant_scheme\":\"smooth\"}' | \"$SATTN\" run -"
expect_rc 3 "rotate needs a power-of-two head_dim"
expect_err "rotate=1 needs a power-of-two head_dim" "rotate error named"

# --out-dir: o.npy readable by numpy with the op's shape; result.json beside it.
run "$SATTN" run "$T/sw.mlir" --out-dir "$T/o1"
expect_rc 0 "out-dir"
expect_file "$T/o1/o.npy" "o.npy written"
expect_file "$T/o1/result.json" "result.json written"
run "$PY" -c "import numpy as np; a=np.load('$T/o1/o.npy'); print(a.shape, a.dtype, bool(np.isfinite(a).all()))"
expect_out '^\(1, 4, 200, 16\) float32 True$' "numpy reads o.npy"

# Several ops: one subdirectory each.
cat >"$T/two.mlir" <<'M'
"sattn.sparse_attention"() { name = "a", seq_len = 64 : i64, heads = 2 : i64, head_dim = 8 : i64 } : () -> ()
"sattn.sparse_attention"() { name = "b", seq_len = 64 : i64, heads = 2 : i64, head_dim = 8 : i64, keep_ratio = 0.5 : f64, block_size = 16 : i64 } : () -> ()
M
run "$SATTN" run "$T/two.mlir" --out-dir "$T/o2"
expect_rc 0 "two ops"
[[ $(wc -l <<<"$out") -eq 2 ]] && ok || fail "two JSON lines"
expect_file "$T/o2/two.a/o.npy" "first op's output"
expect_file "$T/o2/two.b/o.npy" "second op's output"

# --data: arrays written by numpy; the output matches numpy's own attention.
"$PY" - "$T/data" <<'P'
import numpy as np, os, sys
d = sys.argv[1]; os.makedirs(d)
rng = np.random.default_rng(7)
for n, h in (("q", 4), ("k", 2), ("v", 2)):
    np.save(os.path.join(d, n + ".npy"), rng.standard_normal((1, h, 200, 16)).astype(np.float32))
P
run "$SATTN" run "$T/sw.mlir" --spec dense --data "$T/data" --out-dir "$T/o3"
expect_rc 0 "run with --data"
run "$PY" - "$T/data" "$T/o3/o.npy" <<'P'
import numpy as np, sys
d, o = sys.argv[1], np.load(sys.argv[2])
q, k, v = (np.load(f"{d}/{n}.npy").astype(np.float64) for n in "qkv")
k = np.repeat(k, 2, axis=1); v = np.repeat(v, 2, axis=1)
s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(16)
s = np.where(np.tril(np.ones((200, 200), bool)), s, -np.inf)
p = np.exp(s - s.max(-1, keepdims=True)); p /= p.sum(-1, keepdims=True)
print("maxerr", float(np.abs(p @ v - o).max()))
P
"$PY" -c "import sys; e=float('$out'.split()[1]); sys.exit(0 if e < 1e-4 else 1)" && ok || fail "dense causal GQA output matches numpy"

# The pipeline: op, plan and artifacts give the same result (same spec, same output bits).
strip() { sed -E 's/"(timing|producer|data|selection)":\{[^}]*\},?//g'; }
run "$SATTN" run "$T/sw.mlir" --out-dir "$T/p1"
expect_rc 0 "run the bare op"
run bash -c "\"$SATTN\" select \"$T/sw.mlir\" | \"$SATTN\" run - --out-dir \"$T/p2\""
expect_rc 0 "select | run"
run bash -c "\"$SATTN\" select \"$T/sw.mlir\" | \"$SATTN\" emit --out-dir \"$T/a\" >/dev/null && \"$SATTN\" run \"$T/a/artifacts.json\" --out-dir \"$T/p3\""
expect_rc 0 "select | emit, then run the artifacts"
expect_out '"spec":"sliding_window"' "artifacts keep the spec"
run bash -c "\"$SATTN\" emit \"$T/sw.mlir\" --out-dir \"$T/a2\" | \"$SATTN\" run - --out-dir \"$T/p4\""
expect_rc 0 "emit | run (envelope lines on stdin)"
for d in p2 p3 p4; do
  cmp -s "$T/p1/o.npy" "$T/$d/o.npy" && ok || fail "o.npy from $d differs from the bare-op run"
done
# Data-dependent spec: the artifacts carry the Q/K/V the layout was built from.
run bash -c "\"$SATTN\" emit \"$SRC/examples/topk_per_query.mlir\" --out-dir \"$T/a3\" | \"$SATTN\" run - --format text"
expect_rc 0 "topk artifacts run"
expect_out 'topk_per_query .* ok$' "topk from artifacts checks"
# Selection flags reach bare ops; the environment too.
run "$SATTN" run "$T/sw.mlir" --disable sliding_window
expect_rc 0 "--disable sliding_window"
expect_out '"spec":"(bsr|dense)"' "a disabled spec is not chosen"
run env SATTN_FORCE_SPEC=dense "$SATTN" run "$T/sw.mlir"
expect_out '"spec":"dense"' "SATTN_FORCE_SPEC reaches run"

# Errors: each gets its exit code and a message naming the file (and position).
cp -r "$T/data" "$T/bad_shape" && "$PY" -c "import numpy as np; np.save('$T/bad_shape/k.npy', np.zeros((1,2,100,16), np.float32))"
run "$SATTN" run "$T/sw.mlir" --data "$T/bad_shape" -o "$T/r.json"
expect_rc 3 "shape mismatch"
expect_err "k\.npy: shape \[1, 2, 100, 16\] does not match the op" "shape mismatch message"
expect_no_file "$T/r.json" "no output on failure"

cp -r "$T/data" "$T/nan" && "$PY" -c "
import numpy as np; a=np.load('$T/nan/v.npy'); a[0,1,3,2]=np.nan; np.save('$T/nan/v.npy', a)"
run "$SATTN" run "$T/sw.mlir" --data "$T/nan"
expect_rc 3 "NaN input"
expect_err "v\.npy: element [0-9]+ is NaN" "NaN message"

printf '"sattn.sparse_attention"() { seq_len = 64 : i64,\n  keep_ratio = 1.5 : f64 } : () -> ()\n' >"$T/range.mlir"
run "$SATTN" run "$T/range.mlir" -o "$T/r2.json"
expect_rc 3 "keep_ratio out of range"
expect_err "range\.mlir:2:3: .*keep_ratio.*\(0, 1\]" "range error names file:line:col and attribute"
expect_no_file "$T/r2.json" "no output for bad input"

printf '"sattn.sparse_attention"() { seq_len = 64 : i64, window_size = 8 : i64 \n' >"$T/trunc.mlir"
run "$SATTN" run "$T/trunc.mlir"
expect_rc 3 "truncated MLIR"
expect_err "trunc\.mlir:[0-9]+:[0-9]+: " "truncated MLIR position"

printf '"sattn.sparse_attention"() { heads = 6 : i64, kv_heads = 4 : i64 } : () -> ()\n' >"$T/gqa.mlir"
run "$SATTN" run "$T/gqa.mlir"
expect_rc 3 "heads not divisible by kv_heads"
expect_err "divisible" "GQA message"

run "$SATTN" run "$T/sw.mlir" --spec nonsense
expect_rc 2 "unknown spec"
run "$SATTN" run "$T/does-not-exist.mlir"
expect_rc 1 "missing input file"
expect_err "does-not-exist\.mlir: cannot open" "missing file message"
run "$SATTN" run "$T/sw.mlir" -o "$T/no/such/dir/r.json"
expect_rc 1 "unwritable output"
run "$SATTN" run "$T/sw.mlir" --data "$T/data" --seed 3
expect_rc 2 "--data excludes --seed"

# --backend rvv|sim|imc|all: each backend's tool runs in-process on the same op (stdin kept for
# all of them) and the summary has one row per backend; the JSON stream carries every result.
SMALL='{"name":"small","seq_len":64,"heads":2,"kv_heads":1,"head_dim":16,"window_size":4,"causal":true,"precision":"i8"}'
run bash -c "echo '$SMALL' | \"$SATTN\" run - --backend all --format text"
expect_rc 0 "--backend all"
# Bare ops are selected for each backend's own cost model, so the spec may differ per row.
for b in cpu rvv rocc imc; do expect_out "^small +$b +[a-z_]+ +i8 " "summary row for $b"; done
expect_out "instr, .* cycles +ok" "rvv row: instructions and modelled cycles"
expect_out "cycles, .* nJ +ok" "rocc row: cycles and energy"
[[ -z $err || ! $err =~ deprecated ]] && ok || fail "no deprecation warning for the canonical names"
run bash -c "echo '$SMALL' | \"$SATTN\" run - --backend all"
expect_rc 0 "--backend all, JSON"
[[ $(grep -c '"schema":"sattn.result/v1"' <<<"$out") -eq 3 && $(grep -c '"schema":"sattn.imc/v1"' <<<"$out") -eq 1 ]] && ok ||
  fail "three results and one imc estimate"
expect_out '"backend":"rvv"' "the rvv result"
expect_out '"backend":"rocc"' "the rocc result"
# Every checked result says which check was made (small ops: every row).
"$PY" -c '
import json, sys
checks = [(r["backend"], r["check"]) for r in map(json.loads, sys.stdin) if "check" in r]
assert sorted(b for b, _ in checks) == ["cpu", "rocc", "rvv"], checks
assert all((c["mode"], c["rows_checked"], c["rows"]) == ("full", 64, 64) for _, c in checks), checks' <<<"$out" && ok ||
  fail "cpu, rvv and rocc results: check.mode full, 64 of 64 rows"
run bash -c "echo '$SMALL' | \"$SATTN\" run - --backend rvv --force-spec dense --format text"
expect_rc 0 "--backend rvv with a forwarded selection flag"
expect_out "^small +rvv +dense " "the flag reached the rvv tool"
# The profile's defaults.backend applies when --backend is not given (imc profile: imc).
run bash -c "echo '$SMALL' | \"$SATTN\" run - --profile imc"
expect_rc 0 "profile chooses the backend"
expect_out '"schema":"sattn.imc/v1"' "imc profile ran the imc backend"
run "$SATTN" run "$T/sw.mlir" --backend gpu
expect_rc 2 "unknown backend"
expect_err "--backend must be cpu, cuda, rvv, rocc, imc or all" "unknown backend message"
# The accelerator's names before this release, sim and accel, are deprecated aliases of rocc:
# the run is rocc's, with exactly one warning on stderr.
for alias in sim accel; do
  run bash -c "echo '$SMALL' | \"$SATTN\" run - --backend $alias --format text"
  expect_rc 0 "--backend $alias still runs"
  expect_out "^small +rocc " "--backend $alias runs rocc"
  expect_err "^sattn run: warning: backend name '$alias' is deprecated and will be removed in the next release; use 'rocc'\$" "--backend $alias: deprecation warning"
  [[ $(grep -c . <<<"$err") -eq 1 ]] && ok || fail "--backend $alias: one warning line"
done
# A profile that still says sim (defaults.backend) and accel (its section): one warning each.
printf 'schema: sattn.profile/v1\ndefaults:\n  backend: sim\naccel:\n  lanes: 8\n' >"$T/old.yaml"
run bash -c "echo '$SMALL' | \"$SATTN\" run - --profile '$T/old.yaml'"
expect_rc 0 "a profile with the old names"
expect_out '"backend":"rocc"' "defaults.backend sim runs rocc"
expect_out '"lanes":8' "the accel: section still applies"
expect_err "old\.yaml:3:12: backend name 'sim' is deprecated" "defaults.backend sim warns at its position"
expect_err "old\.yaml:4:1: profile section 'accel': backend name 'accel' is deprecated" "the accel: section warns at its position"
[[ $(grep -c . <<<"$err") -eq 2 ]] && ok || fail "a profile with the old names: two warnings"
run bash -c "echo '$SMALL' | \"$SATTN\" run - --backend rocc -o '$T/nope/x.jsonl'"
expect_rc 1 "unwritable output with another backend"

# -o with --format text: the table on stdout, the JSON results in the file.
run bash -c "echo '$SMALL' | \"$SATTN\" run - --backend all --format text -o '$T/all.jsonl'"
expect_rc 0 "--backend all -o"
expect_out "^small +rocc " "table on stdout"
[[ $(grep -c '"schema"' "$T/all.jsonl") -eq 4 ]] && ok || fail "four JSON results in the -o file"

# The table's vs_ref column: the reference's time over the kernel's, only for a full check; not
# called "speedup" (it is not one over dense attention). An op with only a shape says on stderr
# which spec it got, and why, in one line.
printf '{"seq_len": 128, "heads": 2, "head_dim": 16}\n' >"$T/shape-only.json"
run "$SATTN" run "$T/shape-only.json" --format text
expect_rc 0 "shape-only op"
expect_out "^op +spec +prec +density +max_rel_err +tol +ref_ms +fast_ms +vs_ref +check$" "table header names vs_ref"
expect_out "^op0 +bsr .* [0-9.]+x +ok$" "vs_ref shown for a full check"
expect_err "^sattn run: warning: $T/shape-only.json:1:1: op 'op0' names no spec and no pattern attribute: bsr \(block_size 64, keep_ratio 0.125\) by default; give spec = \"dense\" for exact attention \(--explain lists the candidates\)$" "default spec explained"
[[ $(grep -c . <<<"$err") -eq 1 ]] && ok || fail "one stderr line: $err"
printf '{"seq_len": 128, "heads": 2, "head_dim": 16, "spec": "dense"}\n' >"$T/dense-named.json"
run "$SATTN" run "$T/dense-named.json" --format text
[[ -z $err ]] && ok || fail "a named spec: nothing on stderr ($err)"

finish
