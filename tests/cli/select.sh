# sattn-select: plans for every example op, every override and hint, --explain, errors with
# their exit codes and positions, atomic -o, and real outputs validated against
# schemas/plan.schema.json. Expected costs come from the formulas in sattn-select(1) (worked out
# in the comments of tests/cli/select/*.mlir and tests/unit/test_select.cpp).
source "$(dirname "$0")/lib.sh"
EX="$SRC/examples"
IN="$SRC/tests/cli/select"
SELECT="$(dirname "$SATTN")/sattn-select"
# The selector's environment must not leak in from the caller.
for v in SATTN_FORCE_SPEC SATTN_DISABLE_SW SATTN_DISABLE_BSR SATTN_DISABLE_NM SATTN_DISABLE_TOPK \
  SATTN_DISABLE_LSH SATTN_DISABLE_BLG SATTN_DISABLE_LANDMARK SATTN_PREFER_BSR SATTN_PREFER_SW SATTN_HW_L1_BYTES; do
  unset "$v"
done

# The chosen spec is the plan's last key (nlohmann sorts keys): `"spec":"X"}` at the end of a line.
chosen() { expect_out "\"spec\":\"$1\"}\$" "$2: chose $1"; }
kind() { expect_out "\"kind\":\"$1\"" "$2: selection kind $1"; }

# validate FILE: every line is a sattn.plan/v1 valid against the schema, its params belong to its
# spec, and its op is a sattn.op/v1.
validate() {
  "$PY" - "$SRC/schemas/plan.schema.json" "$1" <<'P'
import json, sys
from jsonschema import Draft202012Validator
schema = json.load(open(sys.argv[1]))
Draft202012Validator.check_schema(schema)
v = Draft202012Validator(schema)
n = 0
for line in open(sys.argv[2]):
    plan = json.loads(line)
    errors = sorted(v.iter_errors(plan), key=lambda e: list(e.path))
    for e in errors:
        print("invalid:", list(e.path), e.message[:300])
    assert not errors
    assert plan["params"]["spec"] == plan["spec"], "params belong to another spec"
    assert plan["producer"]["tool"] == "sattn-select"
    n += 1
assert n > 0
print("valid", n)
P
}

# ---- every example: the spec and how it was chosen ----------------------------------------------
while read -r file spec how; do
  run "$SATTN" select "$EX/$file"
  expect_rc 0 "$file"
  chosen "$spec" "$file"
  kind "$how" "$file"
  echo "$out" >>"$T/all.jsonl"
done <<'L'
dense.mlir dense override
sliding_window.mlir sliding_window cost
ring.mlir sliding_window cost
bsr.mlir bsr cost
gqa_causal.mlir bsr override
block_local_global.mlir block_local_global rule
nm_structured.mlir nm_structured rule
topk_per_query.mlir topk_per_query rule
lsh.mlir lsh rule
landmark.mlir landmark rule
quest.mlir quest rule
op.json sliding_window cost
op.yaml bsr cost
L
# sliding_window.mlir on cpu (causal, w 32, dilation 2, tile_D 32): 33 keys per query, less at
# the start (row i < 64 has floor(i/2)+1): pairs 960*33 + 2*(1+...+32) = 32736 per head; compute
# 4*32736*128/16 = 1047552, memory 4*64*80*512/16 = 655360, gathers 4*32736*2*2 = 523776 ->
# 2226688 cycles, against dense 17907712 (1024*1025/2 causal pairs).
run "$SATTN" select "$EX/sliding_window.mlir"
expect_out '"pairs":32736' "window pairs"
expect_out '"cost":2226688,"feasible":true,"spec":"sliding_window"' "window cost"
expect_out 'cheapest on cpu: sliding_window 2.23e\+06 < dense 1.79e\+07 cycles' "cost reason"
expect_out '"why_not":"not compared: the op describes no bsr' "undescribed bsr is not compared"
# bsr.mlir: keep 4 of 16 blocks per row, 64 blocks of 4096 pairs; compression blocks of 16 make
# 4 sub-blocks per candidate: score_macs = 4*(2048*64 + 256*64*4) = 786432.
run "$SATTN" select "$EX/bsr.mlir"
expect_out '"kept_blocks":64' "bsr kept blocks"
expect_out '"score_macs":786432' "bsr scoring with compression blocks"
expect_out '"params":\{"block_size":64,"comp_block_size":16,"global_tokens":0,"keep_ratio":0.25,"spec":"bsr"\}' "bsr params"

# Several ops per input, one line each, in order.
run "$SATTN" select "$EX/multi.mlir"
expect_rc 0 "multi"
[[ $(wc -l <<<"$out") -eq 3 ]] && ok || fail "three plans for three ops"
[[ $(grep -oE '"spec":"[a-z_]+"}$' <<<"$out" | tr '\n' ' ') == '"spec":"sliding_window"} "spec":"bsr"} "spec":"block_local_global"} ' ]] \
  && ok || fail "multi: specs in op order"
echo "$out" >>"$T/all.jsonl"

# Every spec appears among the example plans.
for s in dense sliding_window bsr block_local_global nm_structured topk_per_query lsh landmark quest; do
  grep -q "\"spec\":\"$s\"}\$" "$T/all.jsonl" && ok || fail "no example plan chose $s"
done

# ---- overrides -------------------------------------------------------------------------------------
run "$SATTN" select "$IN/forced_attr.mlir"
chosen dense "spec attribute"
expect_out 'forced by the op.s spec attribute \(dense, [^)]*forced_attr.mlir:6:5\)' "attribute reason with position"
run env SATTN_FORCE_SPEC=bsr "$SATTN" select "$IN/forced_attr.mlir"
chosen bsr "SATTN_FORCE_SPEC over the attribute"
expect_out 'SATTN_FORCE_SPEC=bsr, which overrides the op.s spec attribute \(dense\)' "env force reason"
run env SATTN_FORCE_SPEC=bsr "$SATTN" select --force-spec sliding_window "$IN/forced_attr.mlir"
chosen sliding_window "flag over environment"
expect_out 'forced by --force-spec sliding_window, which overrides the op.s spec attribute' "flag force reason"
run "$SATTN" select --spec topk "$IN/forced_attr.mlir"
chosen topk_per_query "--spec alias and the prototype's spec name"
run "$SATTN" select --disable dense "$IN/forced_attr.mlir"
chosen sliding_window "a disabled spec attribute is ignored"
expect_out 'is disabled by --disable dense' "disabled attribute reason"
run env SATTN_DISABLE_BSR=1 "$SATTN" select --force-spec bsr "$IN/forced_attr.mlir"
chosen bsr "flag force over env disable"
expect_out 'which overrides SATTN_DISABLE_BSR=1' "force-over-disable reason"
run env SATTN_FORCE_SPEC=bsr "$SATTN" select --disable bsr "$IN/forced_attr.mlir"
chosen dense "flag disable over env force: the op's own spec attribute decides again"
expect_out 'SATTN_FORCE_SPEC=bsr \(overridden by --disable bsr\); forced by the op.s spec attribute' "dropped force reason"

# Rules in order; each SATTN_DISABLE_* (and --disable) falls through to the next.
run "$SATTN" select "$IN/rules.mlir"
chosen block_local_global "first rule"
kind rule "first rule"
run env SATTN_DISABLE_BLG=1 "$SATTN" select "$IN/rules.mlir"
chosen nm_structured "BLG disabled"
expect_out 'global_tokens = 16 > 0 would select block_local_global, but it is disabled by SATTN_DISABLE_BLG=1' "fall-through reason"
run env SATTN_DISABLE_BLG=yes SATTN_DISABLE_NM=true "$SATTN" select "$IN/rules.mlir"
chosen topk_per_query "BLG, NM disabled"
run env SATTN_DISABLE_BLG=1 SATTN_DISABLE_NM=1 SATTN_DISABLE_TOPK=1 "$SATTN" select "$IN/rules.mlir"
chosen lsh "BLG, NM, TOPK disabled"
run env SATTN_DISABLE_BLG=1 SATTN_DISABLE_NM=1 SATTN_DISABLE_TOPK=1 SATTN_DISABLE_LSH=1 "$SATTN" select "$IN/rules.mlir"
chosen landmark "BLG, NM, TOPK, LSH disabled"
run env SATTN_DISABLE_BLG=1 SATTN_DISABLE_NM=1 SATTN_DISABLE_TOPK=1 SATTN_DISABLE_LSH=1 SATTN_DISABLE_LANDMARK=1 \
  "$SATTN" select "$IN/rules.mlir"
chosen bsr "every rule disabled: the cost model, global_tokens describing bsr"
kind cost "every rule disabled"
run "$SATTN" select --disable blg,nm --disable topk_per_query "$IN/rules.mlir"
chosen lsh "--disable, comma-separated and repeated"
run env SATTN_DISABLE_SW=1 "$SATTN" select "$EX/sliding_window.mlir"
expect_rc 0 "window disabled"
expect_out '"feasible":false,"spec":"sliding_window","terms".*"why_not":"disabled by SATTN_DISABLE_SW=1"' "disabled candidate says why"
expect_out 'no spec the op describes is usable' "disabled window: the rest compared with defaults"

# Hints: prefer flags and variables, L1 size, GQA, backend.
run "$SATTN" select "$IN/close_call.mlir"
chosen sliding_window "close call"
expect_out '"cost":4456384,"feasible":true,"spec":"sliding_window"' "close call window cost"
expect_out '"cost":4530176,"feasible":true,"spec":"bsr"' "close call bsr cost"
run "$SATTN" select --prefer-bsr "$IN/close_call.mlir"
chosen bsr "--prefer-bsr"
expect_out '"cost":3397632,"feasible":true,"spec":"bsr"' "bsr cost x 0.75"
run env SATTN_PREFER_BSR=1 "$SATTN" select "$IN/close_call.mlir"
chosen bsr "SATTN_PREFER_BSR"
expect_out 'SATTN_PREFER_BSR=1' "prefer source in the reason"
run env SATTN_PREFER_BSR=1 "$SATTN" select --prefer-sw "$IN/close_call.mlir"
chosen sliding_window "--prefer-sw over SATTN_PREFER_BSR"
run "$SATTN" select "$IN/gqa.mlir"
chosen bsr "GQA"
expect_out '"cost":4302848,"feasible":true,"spec":"bsr"' "GQA bsr cost"
run env SATTN_PREFER_SW=on "$SATTN" select "$IN/gqa.mlir"
chosen sliding_window "SATTN_PREFER_SW"
run "$SATTN" select "$IN/l1_window.mlir"
chosen bsr "32 KiB L1"
expect_out '"l1_fit":false' "window spills L1"
run "$SATTN" select --l1-bytes 65536 "$IN/l1_window.mlir"
chosen sliding_window "--l1-bytes 65536"
expect_out '"cost":3799552,"feasible":true,"spec":"sliding_window"' "fitting window cost"
run env SATTN_HW_L1_BYTES=65536 "$SATTN" select "$IN/l1_window.mlir"
chosen sliding_window "SATTN_HW_L1_BYTES"
run env SATTN_HW_L1_BYTES=65536 "$SATTN" select --l1-bytes 32768 "$IN/l1_window.mlir"
chosen bsr "--l1-bytes over SATTN_HW_L1_BYTES"
run "$SATTN" select --backend rocc "$EX/ring.mlir"
expect_out '"backend":"rocc"' "backend echoed"
# The accelerator's deprecated names select for rocc, with one warning each.
for alias in sim accel; do
  run "$SATTN" select --backend $alias "$EX/ring.mlir"
  expect_rc 0 "--backend $alias"
  expect_out '"backend":"rocc"' "--backend $alias selects for rocc"
  expect_err "^sattn select: warning: backend name '$alias' is deprecated and will be removed in the next release; use 'rocc'$" "--backend $alias warns"
  [[ $(grep -c . <<<"$err") -eq 1 ]] && ok || fail "--backend $alias: one warning line"
done
for b in cpu rvv rocc imc; do
  run "$SATTN" select --backend $b "$EX/multi.mlir" -o "$T/multi.$b.jsonl"
  expect_rc 0 "backend $b"
  cat "$T/multi.$b.jsonl" >>"$T/all.jsonl"
done
run "$SATTN" select "$IN/one_token.mlir"
chosen dense "one token: bsr infeasible"
expect_out '"why_not":"bsr needs at least 2 key blocks to select among; kv_len 1 with block_size 1 gives 1"' "infeasible bsr says why"
run "$SATTN" select "$IN/rules.mlir" "$IN/one_token.mlir" "$IN/forced_attr.mlir" --disable blg
echo "$out" >>"$T/all.jsonl"

# ---- schema: every plan produced above ---------------------------------------------------------------
run validate "$T/all.jsonl"
expect_rc 0 "plans valid against schemas/plan.schema.json"
expect_out '^valid [0-9]+$' "validator ran"

# ---- plans as input: re-selected through their op; pipelines ----------------------------------------
run bash -c "\"$SATTN\" select \"$EX/multi.mlir\" | \"$SATTN\" select -"
expect_rc 0 "plan on stdin"
[[ $out == "$(cat "$T/multi.cpu.jsonl")" ]] && ok || fail "re-selecting plans gives the same plans"
run "$SELECT" "$EX/bsr.mlir"
[[ $out == "$("$SATTN" select "$EX/bsr.mlir")" ]] && ok || fail "sattn-select and sattn select agree"

# ---- --explain and --format text ----------------------------------------------------------------------
run "$SATTN" select --explain "$IN/close_call.mlir"
expect_rc 0 "--explain"
expect_err "^work: [0-9.]+e[+-][0-9]+ query-key pairs; sattn run --backend cpu: about ([0-9.]+ (ms|s|min|h)|< 1 ms)" "--explain: the work estimate"
chosen sliding_window "--explain keeps the plan on stdout"
expect_err '^op close_call \(.*close_call.mlir:4:3\) on cpu: sliding_window \[cost\]$' "explain header"
expect_err '^reason: cheapest on cpu: sliding_window 4.46e\+06 < bsr 4.53e\+06 < dense' "explain reason"
expect_err '^ +candidate +feasible +pairs +macs +kv_bytes +gathers +score_macs +working_set +l1_fit +compute +memory +gather +chunks +scoring +prefer +total$' "explain columns"
expect_err '^\* +sliding_window +yes +3.75e\+04 .* 4.46e\+06$' "chosen row marked"
expect_err '^ +bsr +yes .* 4.53e\+06$' "other row"
run "$SATTN" select --format text "$IN/rules.mlir" --disable blg
expect_rc 0 "--format text"
expect_out '^op rules .* nm_structured \[rule\]$' "text header"
expect_out '^  block_local_global: disabled by --disable block_local_global$' "text why_not"
[[ -z $err ]] && ok || fail "--format text writes nothing on stderr"

# ---- errors ----------------------------------------------------------------------------------------------
run "$SATTN" select "$SRC/tests/bad/missing_brace.mlir" -o "$T/e1.jsonl"
expect_rc 3 "malformed MLIR"
expect_err '^sattn select: error: .*missing_brace\.mlir:3:75: ' "malformed MLIR position"
expect_no_file "$T/e1.jsonl" "no output for malformed input"
run "$SELECT" "$SRC/tests/bad/keep_ratio_range.mlir"
expect_rc 3 "keep_ratio out of range"
expect_err '^sattn-select: error: .*keep_ratio_range\.mlir:5:5: .*keep_ratio' "range error position"
run "$SATTN" select "$SRC/tests/bad/unknown_spec.mlir"
expect_rc 3 "unknown spec attribute"
expect_err 'unknown_spec\.mlir:3:39: .*diagonal' "unknown spec attribute position"
run "$SATTN" select "$SRC/tests/bad/schema_v2.json"
expect_rc 3 "unknown op schema major"
expect_err 'schema_v2\.json:1:12: unsupported schema major version 2' "op schema major message"
"$SATTN" select "$EX/bsr.mlir" | sed 's|"sattn.plan/v1"|"sattn.plan/v7"|' >"$T/plan_v7.jsonl"
run "$SATTN" select "$T/plan_v7.jsonl"
expect_rc 3 "unknown plan schema major"
expect_err 'plan_v7\.jsonl:1:[0-9]+: unsupported schema major version 7' "plan schema major message"
run "$SATTN" select --force-spec bsr "$IN/one_token.mlir" -o "$T/e2.jsonl"
expect_rc 3 "forced infeasible spec"
expect_err 'one_token\.mlir:3:3: cannot use bsr \(--force-spec bsr\): bsr needs at least 2 key blocks' "forced infeasible message"
expect_no_file "$T/e2.jsonl" "no output for an infeasible forced spec"
printf '"sattn.sparse_attention"() { seq_len = 64 : i64,\n  window_size = 100 : i64 } : () -> ()\n' >"$T/wide.mlir"
run "$SATTN" select "$T/wide.mlir"
expect_rc 3 "window beyond kv_len"
expect_err 'wide\.mlir:2:3: attribute .window_size.: 100 exceeds kv_len \(64\)' "window range message"
run "$SATTN" select --force-spec nonsense "$EX/bsr.mlir"
expect_rc 2 "unknown forced spec"
expect_err "--force-spec: unknown spec 'nonsense'" "unknown forced spec message"
run "$SATTN" select --disable striped "$EX/bsr.mlir"
expect_rc 2 "unknown disabled spec"
run "$SATTN" select --backend gpu "$EX/bsr.mlir"
expect_rc 2 "unknown backend"
run "$SATTN" select --format yaml "$EX/bsr.mlir"
expect_rc 2 "unknown format"
run "$SATTN" select --prefer-bsr --prefer-sw "$EX/bsr.mlir"
expect_rc 2 "both prefer flags"
run "$SATTN" select --l1-bytes 0 "$EX/bsr.mlir"
expect_rc 2 "zero L1"
# --use-hw-probe: tests/cli/select_probe.sh.
for bad in SATTN_HW_L1_BYTES=abc SATTN_HW_L1_BYTES=-5 SATTN_DISABLE_SW=maybe SATTN_PREFER_BSR=2 SATTN_FORCE_SPEC=diagonal; do
  run env "$bad" "$SATTN" select "$EX/bsr.mlir"
  expect_rc 2 "invalid $bad"
  expect_err "error: ${bad%%=*}: expected .*, got '${bad#*=}'" "$bad names the variable and value"
done
run env SATTN_PREFER_BSR=1 SATTN_PREFER_SW=1 "$SATTN" select "$EX/bsr.mlir"
expect_rc 2 "both prefer variables"
run env SATTN_FORCE_SPEC=bsr SATTN_DISABLE_BSR=1 "$SATTN" select "$EX/bsr.mlir"
expect_rc 2 "forced and disabled at the same level"
expect_err 'bsr is both forced \(SATTN_FORCE_SPEC=bsr\) and disabled \(SATTN_DISABLE_BSR=1\)' "contradiction message"
run "$SATTN" select --disable sw,bsr,dense "$EX/sliding_window.mlir"
expect_rc 2 "nothing left to select"
run "$SATTN" select "$T/does-not-exist.mlir"
expect_rc 1 "missing input"
expect_err 'does-not-exist\.mlir: cannot open' "missing input message"
run "$SATTN" select "$EX/bsr.mlir" -o "$T/no/such/dir/p.jsonl"
expect_rc 1 "unwritable output"

# ---- -o: written whole, atomically; a failed run leaves the old file untouched --------------------------
run "$SATTN" select "$EX/multi.mlir" -o "$T/p.jsonl"
expect_rc 0 "-o"
expect_no_out "-o writes nothing on stdout"
[[ $(wc -l <"$T/p.jsonl") -eq 3 ]] && ok || fail "-o file holds the three plans"
cp "$T/p.jsonl" "$T/p.before"
run "$SATTN" select "$EX/bsr.mlir" "$SRC/tests/bad/keep_ratio_range.mlir" -o "$T/p.jsonl"
expect_rc 3 "second input bad"
cmp -s "$T/p.jsonl" "$T/p.before" && ok || fail "a failed run leaves the existing file untouched"
ls -a "$T" | grep -q '\.tmp' && fail "no temporary file left behind" || ok

# ---- warnings and -q ------------------------------------------------------------------------------------
printf '"sattn.sparse_attention"() { seq_len = 64 : i64, windw_size = 4 : i64 } : () -> ()\n' >"$T/typo.mlir"
run "$SATTN" select "$T/typo.mlir"
expect_rc 0 "unknown attribute"
expect_err '^sattn select: warning: .*typo\.mlir:1:[0-9]+: .*windw_size' "unknown attribute warns with the tool's prefix"
run "$SATTN" select -q "$T/typo.mlir"
[[ -z $err ]] && ok || fail "-q silences warnings"

finish
