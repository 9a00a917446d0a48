# sattn-run-rvv: RVV kernels under qemu-riscv64 with the instruction-count plugin; every flag and
# every error path (sattn-run-rvv(1)).
source "$(dirname "$0")/lib.sh"
: "${BUILD:?BUILD must point at the build tree}"
RVV="$BUILD/bin/sattn-run-rvv"
# Every run's scratch goes here; it must be empty after each run unless --keep-workdir.
export TMPDIR="$T/tmp"
mkdir -p "$TMPDIR"
expect_tmp_empty() { [[ -z $(ls -A "$TMPDIR") ]] && ok || { fail "$1: TMPDIR not empty: $(ls -A "$TMPDIR")"; rm -rf "${TMPDIR:?}"/*; }; }
# json EXPR: evaluates a Python expression over the first result line of $out (bound to r).
json() { "$PY" -c "import json,sys; r=json.loads(sys.stdin.readline()); print($1)" <<<"$out"; }

cat >"$T/sw.mlir" <<'EOF'
"sattn.sparse_attention"() { name = "sw", spec = "sliding_window", window_size = 8 : i64, seq_len = 96 : i64, kv_len = 96 : i64, heads = 2 : i64, kv_heads = 2 : i64, head_dim = 32 : i64 } : () -> ()
EOF
cat >"$T/bsr.json" <<'EOF'
{"name": "b", "spec": "bsr", "block_size": 16, "keep_ratio": 0.25, "seq_len": 96, "heads": 2, "head_dim": 32}
EOF

# Bare op, JSON result: the common keys of sattn.result/v1 and the rvv section.
run "$RVV" "$T/sw.mlir"
expect_rc 0 "bare op"
expect_out '"schema":"sattn.result/v1"' "result schema"
expect_out '"backend":"rvv"' "backend rvv"
run json "r['rvv']['kernel'], r['rvv']['vlen'], r['check']['passed'], r['rvv']['instructions']['regions'], r['layout']['granularity']"
expect_out "^rvv 256 True 1 row$" "defaults: rvv kernel, VLEN 256, passed, one region"
run "$RVV" "$T/sw.mlir"
run json "sum(r['rvv']['instructions']['classes'].values()) == r['rvv']['instructions']['total'] > 0, r['rvv']['modelled_cycles'] > 0"
expect_out "^True True$" "classes add up to the total; cycles modelled"
[[ -z $err ]] && ok || fail "no progress on a non-TTY stderr"
expect_tmp_empty "bare op"

# Plans and artifacts on stdin, and the block kind.
run bash -c "\"$SATTN\" select \"$T/bsr.json\" | \"$RVV\" -"
expect_rc 0 "plan on stdin"
expect_out '"spec":"bsr"' "bsr plan"
run bash -c "\"$SATTN\" emit \"$T/bsr.json\" --out-dir \"$T/art\" >/dev/null && \"$RVV\" \"$T/art/artifacts.json\""
expect_rc 0 "artifacts"
run json "r['layout']['granularity'], r['data']['source']"
expect_out "^block artifacts$" "artifacts carry layout and data"

# --vlen: the vector instruction count falls as VLEN grows (on rows long enough to fill 1024 bits).
cat >"$T/wide.mlir" <<'EOF'
"sattn.sparse_attention"() { name = "wide", spec = "sliding_window", window_size = 32 : i64, seq_len = 128 : i64, kv_len = 128 : i64, heads = 1 : i64, kv_heads = 1 : i64, head_dim = 64 : i64 } : () -> ()
EOF
prev=""
for v in 128 256 512 1024; do
  run "$RVV" "$T/wide.mlir" --vlen $v --lmul 1
  expect_rc 0 "vlen $v"
  run json "r['rvv']['vlen'], r['rvv']['instructions']['vector'], r['rvv']['runner']['vlenb'], r['rvv']['core_model']['vlen']"
  read -r got vec vlenb model <<<"$out"
  [[ $got == "$v" && $vlenb == $((v / 8)) ]] && ok || fail "vlen $v echoed and seen by the runner ($out)"
  [[ $model == "$v" ]] && ok || fail "the recorded core model has the VLEN run ($v), not its default ($model)"
  [[ -z $prev || $vec -lt $prev ]] && ok || fail "vector instructions fall from $prev at VLEN $v ($vec)"
  prev=$vec
done
run "$RVV" "$T/sw.mlir" --vlen 384
expect_rc 2 "vlen 384 is a usage error"
expect_err "vlen must be 128, 256, 512 or 1024" "vlen message"

# --kernel: scalar has no vector instructions; autovec runs the scalar source vectorized.
run "$RVV" "$T/sw.mlir" --kernel scalar
expect_rc 0 "scalar kernel"
scalar_total=$(json "r['rvv']['instructions']['total']")
run json "r['rvv']['kernel'], r['rvv']['instructions']['vector'], r['check']['passed']"
expect_out "^scalar 0 True$" "scalar kernel: no vector instructions"
run "$RVV" "$T/sw.mlir" --kernel autovec
expect_rc 0 "autovec kernel"
run "$RVV" "$T/sw.mlir" --kernel rvv
run json "r['rvv']['instructions']['total'] < $scalar_total"
expect_out "^True$" "rvv needs fewer instructions than scalar"
run "$RVV" "$T/sw.mlir" --kernel neon
expect_rc 2 "unknown kernel"

# --precision: every precision passes its tolerance; the quantized-reference error is reported.
for p in fp32 bf16 i8 i4; do
  run "$RVV" "$T/sw.mlir" --precision $p
  expect_rc 0 "precision $p"
  run json "r['precision'], r['rvv']['runner']['precision'], r['check']['passed'], r['check']['quantized_reference'] is None"
  [[ $p == fp32 ]] && want="fp32 fp32 True True" || want="$p $p True False"
  [[ $out == "$want" ]] && ok || fail "precision $p: got '$out'"
done
run "$RVV" "$T/sw.mlir" --precision fp8
expect_rc 2 "unknown precision"

# --tile-rows (and the prior-art alias --tile_rows), --lmul.
run "$RVV" "$T/sw.mlir" --tile-rows 2 --lmul 2
expect_rc 0 "tile-rows 2 lmul 2"
run json "r['rvv']['tile_rows'], r['rvv']['lmul']"
expect_out "^2 2$" "tile_rows and lmul reach the runner"
run "$RVV" "$T/sw.mlir" --tile_rows 8
run json "r['rvv']['tile_rows']"
expect_out "^8$" "--tile_rows alias"
run "$RVV" "$T/sw.mlir" --tile-rows 3
expect_rc 2 "tile-rows 3 is a usage error"

# --autotune: the chosen configuration is the passing sweep entry of fewest modelled cycles.
run "$RVV" "$T/sw.mlir" --autotune
expect_rc 0 "autotune"
run json "len(r['rvv']['autotune']['sweep']) > 4, r['rvv']['modelled_cycles'] == min(s['modelled_cycles'] for s in r['rvv']['autotune']['sweep'] if s['passed'])"
expect_out "^True True$" "autotune sweeps and picks the fewest cycles"
run "$RVV" "$T/sw.mlir" --autotune --tile-rows 4
run json "sorted({s['tile_rows'] for s in r['rvv']['autotune']['sweep']})"
expect_out "^\[4\]$" "autotune keeps a fixed tile_rows"
expect_tmp_empty "autotune"

# --core-model: a wider datapath gives fewer modelled cycles for the same instructions.
run "$RVV" "$T/sw.mlir" --lmul 4
base_cycles=$(json "r['rvv']['modelled_cycles']")
printf 'name: wide\ndlen: 1024\nmem_bits: 1024\n' >"$T/wide.yaml"
run "$RVV" "$T/sw.mlir" --lmul 4 --core-model "$T/wide.yaml"
expect_rc 0 "core model file"
run json "r['rvv']['core_model']['name'], r['rvv']['core_model']['dlen'], r['rvv']['modelled_cycles'] < $base_cycles"
expect_out "^wide 1024 True$" "core model applied"
printf 'dlen: 256\nlanes: 2\nissue_width: 2\n' >"$T/bad.yaml"
run "$RVV" "$T/sw.mlir" --core-model "$T/bad.yaml"
expect_rc 3 "bad core model"
expect_err "bad\.yaml:3:1: unknown key 'issue_width'" "bad core model names file:line:col"
printf 'dlen: wide\n' >"$T/bad2.yaml"
run "$RVV" "$T/sw.mlir" --core-model "$T/bad2.yaml"
expect_rc 3 "bad core model type"
expect_err "bad2\.yaml:1:7: dlen must be an integer" "wrong type names file:line:col"
printf 'vlen: 512\n' >"$T/v512.yaml"
run "$RVV" "$T/sw.mlir" --core-model "$T/v512.yaml"
run json "r['rvv']['vlen']"
expect_out "^512$" "the core model's vlen is the default VLEN"

# --profile: its rvv: section is the core model (below --core-model); bad keys there are exit 3.
printf 'schema: sattn.profile/v1\nrvv:\n  name: from-profile\n  lanes: 4\n' >"$T/prof.yaml"
run "$RVV" "$T/sw.mlir" --profile "$T/prof.yaml"
expect_rc 0 "profile rvv section"
run json "r['rvv']['core_model']['name'], r['rvv']['core_model']['lanes']"
expect_out "^from-profile 4$" "profile's core model applied"
run "$RVV" "$T/sw.mlir" --profile "$T/prof.yaml" --core-model "$T/wide.yaml"
run json "r['rvv']['core_model']['name'], r['rvv']['core_model']['lanes'], r['rvv']['core_model']['dlen']"
expect_out "^wide 4 1024$" "--core-model over the profile"
printf 'schema: sattn.profile/v1\nrvv:\n  lanes: many\n' >"$T/badprof.yaml"
run "$RVV" "$T/sw.mlir" --profile "$T/badprof.yaml"
expect_rc 3 "bad profile rvv section"
expect_err "badprof\.yaml:3:10: lanes must be an integer" "bad profile section names file:line:col"

# --data and --seed.
mkdir -p "$T/data"
$PY - "$T/data" <<'PYEOF'
import sys, numpy as np
r = np.random.default_rng(7)
for name in "qkv":
    np.save(f"{sys.argv[1]}/{name}.npy", r.standard_normal((1, 2, 96, 32)).astype(np.float32))
PYEOF
run "$RVV" "$T/sw.mlir" --data "$T/data"
expect_rc 0 "--data"
expect_out '"source":"npy"' "data source recorded"
run "$RVV" "$T/sw.mlir" --seed 99
expect_out '"seed":99' "seed recorded"

# -o (atomic; nothing on stdout), --format text, -q.
run "$RVV" "$T/sw.mlir" -o "$T/result.jsonl"
expect_rc 0 "-o"
expect_no_out "-o leaves stdout empty"
expect_file "$T/result.jsonl" "-o writes the file"
run "$RVV" "$T/sw.mlir" --format text
expect_out "^op +spec +prec +kernel +vlen +tile +lmul +instructions +vector +cycles" "text table header"
expect_out "^sw +sliding_window +fp32 +rvv +256 " "text table row"
run "$RVV" "$T/sw.mlir" --format yaml
expect_rc 2 "bad format"

# Exit 5: one outlier in Q makes the per-tensor i8 scale so coarse that the check fails honestly
# (the per-tensor scheme named; the default scheme passes, below).
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
run "$RVV" "$T/sw.mlir" --precision i8 --quant-scheme per-tensor --data "$T/outlier" -o "$T/fail.jsonl"
expect_rc 5 "i8 per-tensor outside tolerance is a check failure"
expect_err "output differs from the reference: max relative error .* > tolerance 5\.0e-02" "check failure message"
run cat "$T/fail.jsonl"
expect_out '"passed":false' "failed result still written"
run "$RVV" "$T/sw.mlir" --precision i8 --quant-scheme per-tensor --data "$T/outlier" -q
expect_rc 5 "-q: still exit 5"
[[ -z $err ]] && ok || fail "-q silences the check-failure message"
# The default scheme (smooth: per-token scales after smoothing) holds the tolerance on the same data.
run "$RVV" "$T/sw.mlir" --precision i8 --data "$T/outlier" -q
expect_rc 0 "the default i8 scheme passes where per-tensor fails"
expect_out '"quant_scheme":"smooth"' "the default is smooth"
expect_tmp_empty "check failure"

# qemu missing, crashing, hanging: exit 4 with the fix or the tail of its stderr.
run "$RVV" "$T/sw.mlir" --qemu /nonexistent/qemu-riscv64
expect_rc 4 "missing qemu"
expect_err "apt-get install qemu-user" "missing qemu names the package"
expect_no_out "missing qemu: no output"
printf '#!/bin/sh\necho "guest exploded at pc 0x1234" >&2\nkill -SEGV $$\n' >"$T/crash-qemu"
chmod +x "$T/crash-qemu"
run "$RVV" "$T/sw.mlir" --qemu "$T/crash-qemu"
expect_rc 4 "crashing qemu"
expect_err "killed by signal 11" "crash: the signal"
expect_err "guest exploded at pc 0x1234" "crash: the tail of its stderr"
expect_tmp_empty "crash"
printf '#!/bin/sh\necho "still thinking" >&2\nexec sleep 30\n' >"$T/slow-qemu"
chmod +x "$T/slow-qemu"
run "$RVV" "$T/sw.mlir" --qemu "$T/slow-qemu" --timeout 1
expect_rc 4 "hanging qemu"
expect_err "timed out after 1 s" "timeout named"
expect_err "still thinking" "timeout: the tail of its stderr"
expect_tmp_empty "timeout"
# The plugin and runners missing (an install without libexec): exit 4 saying how to get them.
mkdir -p "$T/empty-libexec"
run env SATTN_LIBEXEC_DIR="$T/empty-libexec" "$RVV" "$T/sw.mlir"
expect_rc 4 "missing plugin"
expect_err "libsattn-insn-count\.so is missing" "missing plugin named"
cp "$BUILD/libexec/sattn/libsattn-insn-count.so" "$T/empty-libexec/"
run env SATTN_LIBEXEC_DIR="$T/empty-libexec" "$RVV" "$T/sw.mlir"
expect_rc 4 "missing runner"
expect_err "apt-get install clang-16 gcc-riscv64-linux-gnu" "missing runner names the packages"
expect_tmp_empty "missing runner"

# --keep-workdir: the work directory stays, named on stderr, with the runner's files in it.
run "$RVV" "$T/sw.mlir" --keep-workdir
expect_rc 0 "keep-workdir"
kept=$(sed -n 's/.*work directory kept: //p' <<<"$err")
[[ -n $kept && -f $kept/insn-count.json && -f $kept/runner.json && -f $kept/job.txt && -f $kept/o.npy ]] && ok ||
  fail "kept work directory holds job.txt, o.npy, runner.json, insn-count.json ($kept)"
rm -rf "${TMPDIR:?}"/*

# Bad input files: exit 3 naming the file.
printf '"sattn.sparse_attention"() { seq_len = -4 : i64 } : () -> ()\n' >"$T/bad.mlir"
run "$RVV" "$T/bad.mlir"
expect_rc 3 "bad op"
expect_err "bad\.mlir:1:" "bad op location"
expect_tmp_empty "bad op"

# Issue 18: --vlen 0 is not a silent "default" (--help says 128-1024); a "qemu" that exits 0
# without running the runner (/bin/true) is an external-tool failure, exit 4, not exit 1.
run "$RVV" "$SRC/examples/sliding_window.mlir" --vlen 0
expect_rc 2 "--vlen 0"
expect_err "--vlen must be 128, 256, 512 or 1024 \(got 0\)" "--vlen 0 message"
run "$RVV" "$SRC/examples/sliding_window.mlir" --qemu /bin/true -o "$T/true.json"
expect_rc 4 "--qemu /bin/true"
expect_err "under /bin/true exited 0 but wrote no output" "--qemu /bin/true message"
expect_no_file "$T/true.json" "--qemu /bin/true: no output"

finish
