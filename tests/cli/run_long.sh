# Long runs (issue 21, item 1): the work estimate (--dry-run), the --max-pairs / --max-seconds
# guards, --check full|sample|none (sample by default above 2^23 reference pairs) and progress
# with an ETA on a terminal only.
source "$(dirname "$0")/lib.sh"
field() { "$PY" -c 'import json,sys; d=json.loads(open(sys.argv[1]).readline()); print(eval(sys.argv[2]))' "$@"; }

# Dense at seq_len 2^20: 2^40 pairs. The dry run says so at once, builds nothing, exits 0.
echo '{"name":"huge","spec":"dense","seq_len":1048576,"heads":1,"head_dim":16}' >"$T/huge.json"
run "$SATTN" run "$T/huge.json" --dry-run --threads 1
expect_rc 0 "--dry-run"
echo "$out" >"$T/est.json"
[[ $(field "$T/est.json" 'd["schema"]') == sattn.estimate/v1 ]] && ok || fail "estimate schema"
[[ $(field "$T/est.json" 'int(d["pairs"])') == 1099511627776 ]] && ok || fail "dense pairs: 2^40"
[[ $(field "$T/est.json" 'int(d["macs"])') == $((1099511627776 * 32)) ]] && ok || fail "macs = pairs * 2 * head_dim"
[[ $(field "$T/est.json" 'd["check"]["mode"]') == sample ]] && ok || fail "the check would be sampled"
[[ $(field "$T/est.json" 'd["seconds"]["total"] > 3600 and not d["would_run"]') == True ]] && ok ||
  fail "over an hour: the default --max-seconds would refuse it"
run "$SATTN" run "$T/huge.json" --dry-run --threads 1 --format text
expect_rc 0 "--dry-run --format text"
expect_out '^op +backend +spec +pairs +check +run +check_time +total +limits' "estimate table header"
expect_out '^huge +cpu +dense +1\.10e\+12 +sample .* refused \(--max-seconds\)$' "estimate row"

# Without --dry-run it is refused before any data exists: exit 1, no output, the way out named.
run "$SATTN" run "$T/huge.json" --threads 1 --format text
expect_rc 1 "refused by the default --max-seconds"
expect_no_out "refused: no output"
expect_err "^sattn run: error: $T/huge\.json:1:1: op 'huge': estimated [0-9.]+ h \(1\.10e\+12 query-key pairs, dense on cpu, check sample\) exceeds --max-seconds 3600 \(the default\)" "refusal names the estimate and the limit"
expect_err "pass --max-seconds 0 for no limit" "refusal says how to override"
run "$SATTN" run "$T/huge.json" --threads 1 --max-seconds 0 --max-pairs 1e9
expect_rc 1 "refused by --max-pairs"
expect_err "op 'huge': estimated 1\.10e\+12 query-key pairs \(dense on cpu, check sample, about .*\) exceeds --max-pairs 1000000000; raise --max-pairs, pass --max-pairs 0 for no limit" "--max-pairs named"

# Small ops: the guards can be set low, and 0 lifts them.
echo '{"name":"small","spec":"sliding_window","seq_len":512,"heads":2,"head_dim":16,"window_size":8}' >"$T/small.json"
run "$SATTN" run "$T/small.json" --max-pairs 1000
expect_rc 1 "a low --max-pairs"
run "$SATTN" run "$T/small.json" --max-pairs 0 --max-seconds 0 -o "$T/r0.json"
expect_rc 0 "no limits"
[[ $(field "$T/r0.json" 'd["check"]["mode"]') == full ]] && ok || fail "a small op is checked in full"
[[ $(field "$T/r0.json" 'd["check"]["rows_checked"]') == 512 ]] && ok || fail "full: every row"

# --check sample: 256 seeded rows of every (batch, head), the same rows every run.
run "$SATTN" run "$T/small.json" --check sample -o "$T/r1.json"
expect_rc 0 "--check sample"
[[ $(field "$T/r1.json" '(d["check"]["mode"], d["check"]["rows_checked"], d["check"]["rows"], d["check"]["passed"])') == "('sample', 256, 512, True)" ]] &&
  ok || fail "sample: mode, rows checked, rows, passed"
[[ $(field "$T/r1.json" 'd["check"]["sample"]') == "{'rows': 256, 'seed': 23159}" ]] && ok || fail "sample: its size and seed recorded"
run "$SATTN" run "$T/small.json" --check sample --format text
expect_out ' - +ok \(sample\)$' "table: no speedup, ok (sample)"

# --check none: no reference at all, and the result says so.
run "$SATTN" run "$T/small.json" --check none -o "$T/r2.json"
expect_rc 0 "--check none"
[[ $(field "$T/r2.json" '(d["check"]["mode"], d["check"]["passed"], d["check"]["rows_checked"], d["timing"]["reference_ms"] == 0)') == "('none', None, 0, True)" ]] &&
  ok || fail "none: no check, passed null"
run "$SATTN" run "$T/small.json" --check none --format text
expect_out 'unchecked$' "table: unchecked"
run "$SATTN" run "$T/small.json" --check partly
expect_rc 2 "an unknown --check mode is a usage error"

# auto: dense at 4096 is 2^24 reference pairs, above 2^23: sampled; at 2048 (2^22): full.
echo '{"name":"d4k","spec":"dense","seq_len":4096,"heads":1,"head_dim":16}' >"$T/d4k.json"
run "$SATTN" run "$T/d4k.json" -o "$T/r3.json"
expect_rc 0 "dense 4096"
[[ $(field "$T/r3.json" '(d["check"]["mode"], d["check"]["passed"])') == "('sample', True)" ]] && ok || fail "auto samples above 2^23 pairs"
echo '{"name":"d2k","spec":"dense","seq_len":2048,"heads":1,"head_dim":16}' >"$T/d2k.json"
run "$SATTN" run "$T/d2k.json" -o "$T/r4.json"
[[ $(field "$T/r4.json" 'd["check"]["mode"]') == full ]] && ok || fail "auto checks in full at 2^22 pairs"

# Progress: on a terminal (script(1) gives the run a pty) a long op shows its stage, percentage
# and time left on stderr; in a pipe nothing. The op: dense 32768 x 2 heads, one thread (seconds even on a fast core).
echo '{"name":"slow","spec":"dense","seq_len":32768,"heads":2,"head_dim":32}' >"$T/slow.json"
run script -q -e -c "'$SATTN' run '$T/slow.json' --threads 1 --check none -o '$T/r5.json'" "$T/typescript"
expect_rc 0 "a run on a terminal"
grep -qE 'slow: kernel [0-9]+% \(about .* left\)' "$T/typescript" && ok || fail "progress with an ETA on the terminal: $(tr '\r' '\n' <"$T/typescript" | tail -3)"
# A long full check reports too (the reference in slices).
echo '{"name":"checked","spec":"dense","seq_len":8192,"heads":1,"head_dim":16}' >"$T/checked.json"
run script -q -e -c "'$SATTN' run '$T/checked.json' --check full -o '$T/r8.json'" "$T/typescript3"
expect_rc 0 "a full check on a terminal"
grep -qE 'checked: check [0-9]+% \(about .* left\)' "$T/typescript3" && ok || fail "progress of the check: $(tr '\r' '\n' <"$T/typescript3" | tail -3)"
[[ $(field "$T/r8.json" '(d["check"]["mode"], d["check"]["rows_checked"], d["check"]["passed"])') == "('full', 8192, True)" ]] && ok ||
  fail "the sliced full check: every row, passed"
run "$SATTN" run "$T/slow.json" --threads 1 --check none -o "$T/r6.json"
expect_rc 0 "the same run in a pipe"
[[ -z $err ]] && ok || fail "no progress when stderr is not a terminal"
run script -q -e -c "'$SATTN' run '$T/slow.json' --threads 1 --check none -q -o '$T/r7.json'" "$T/typescript2"
! grep -q 'kernel' "$T/typescript2" && ok || fail "-q: no progress on a terminal either"

finish
