# Profiles (sattn-profile(5)): lookup order, inheritance, validation errors with file:line:col,
# and the precedence flags > environment > profile > defaults, checked on real selections.
source "$(dirname "$0")/lib.sh"
for v in SATTN_FORCE_SPEC SATTN_DISABLE_SW SATTN_DISABLE_BSR SATTN_DISABLE_NM SATTN_DISABLE_TOPK \
  SATTN_DISABLE_LSH SATTN_DISABLE_BLG SATTN_DISABLE_LANDMARK SATTN_PREFER_BSR SATTN_PREFER_SW SATTN_HW_L1_BYTES; do
  unset "$v"
done
export XDG_CONFIG_HOME="$T/xdg"
# field FILE EXPR: a value from FILE, a JSON document or JSON Lines (then the first line); EXPR
# indexes the parsed document `d`.
field() {
  "$PY" -c "
import json, sys
text = open(sys.argv[1]).read()
try:
    d = json.loads(text)
except ValueError:
    d = json.loads(text.splitlines()[0])
print($2)" "$1"
}

# The shipped profiles, found from the source tree (./profiles) and from the build tree's share/.
cd "$SRC" || exit 1
run "$SATTN" profile list
expect_rc 0 "profile list"
for p in highperf lowpower imc; do expect_out "^$p " "lists $p"; done
run "$SATTN" profile list -q
expect_out "^highperf$" "list -q prints bare names"
cd "$T" || exit 1
run "$SATTN" profile list --format json
expect_rc 0 "list from elsewhere"
expect_out "share/sattn/profiles/highperf.yaml" "the installed (share/) profiles are found outside the source tree"
run "$SATTN" profile validate highperf lowpower imc
expect_rc 0 "shipped profiles validate"
# ... and against schemas/profile.schema.json, which rejects what sattn rejects.
run "$PY" - "$SRC/schemas/profile.schema.json" "$SRC"/profiles/*.yaml <<'P'
import json, sys, yaml
from jsonschema import Draft202012Validator
schema = json.load(open(sys.argv[1]))
Draft202012Validator.check_schema(schema)
v = Draft202012Validator(schema)
for f in sys.argv[2:]:
    for e in v.iter_errors(yaml.safe_load(open(f))):
        print(f"{f}: {e.message}")
        sys.exit(1)
bad = {"schema": "sattn.profile/v1", "select": {"prefr": "bsr"}}
sys.exit(0 if list(v.iter_errors(bad)) else 2)
P
expect_rc 0 "shipped profiles match the schema; a typo does not"

# Inheritance: imc has base lowpower; show merges child over base.
run "$SATTN" profile show imc --format json
expect_rc 0 "show imc"
echo "$out" >"$T/imc.json"
[[ $(field "$T/imc.json" 'd["defaults"]["precision"]') == i8 ]] && ok || fail "imc overrides lowpower's precision"
[[ $(field "$T/imc.json" 'd["defaults"]["tile_rows"]') == 4 ]] && ok || fail "imc inherits lowpower's tile_rows"
[[ $(field "$T/imc.json" 'len(d["inherits"])') == 2 ]] && ok || fail "show lists both files"

# The accelerator's section is rocc: (shipped profiles); accel:, its deprecated name, is still
# read (one warning) and shown as rocc; a file with both is an error at the old key.
run "$SATTN" profile show lowpower --format json
[[ $(field <(echo "$out") 'd["rocc"]["lanes"]') == 8 && $(field <(echo "$out") '"accel" in d') == False ]] && ok ||
  fail "shipped profiles: the rocc section"
printf 'schema: sattn.profile/v1\nbase: lowpower\naccel:\n  lanes: 32\n' >"$T/oldsec.yaml"
run "$SATTN" profile show "$T/oldsec.yaml" --format json
expect_rc 0 "a profile with accel:"
[[ $(field <(echo "$out") '(d["rocc"]["lanes"], "accel" in d)') == "(32, False)" ]] && ok || fail "accel: shown as rocc, over its base's rocc:"
expect_err "^sattn profile: warning: .*oldsec\.yaml:3:1: profile section 'accel': backend name 'accel' is deprecated" "accel: warns"
printf 'schema: sattn.profile/v1\nrocc:\n  lanes: 8\naccel:\n  lanes: 16\n' >"$T/both.yaml"
run "$SATTN" profile validate "$T/both.yaml"
expect_rc 3 "rocc: and accel: in one file"
expect_err "both\.yaml:5:3: both 'rocc' and its deprecated name 'accel': keep 'rocc'" "names the old key"

# Lookup order: ./profiles, then $XDG_CONFIG_HOME/sattn/profiles, then share/. A user profile in
# XDG may inherit a shipped one.
mkdir -p "$T/xdg/sattn/profiles" "$T/work/profiles"
printf 'schema: sattn.profile/v1\ndescription: mine (xdg)\nbase: highperf\nselect:\n  l1_bytes: 12345\n' >"$T/xdg/sattn/profiles/mine.yaml"
run "$SATTN" profile show mine --format json
expect_rc 0 "xdg profile found"
expect_out '"l1_bytes": 12345' "xdg profile's own value"
expect_out '"precision": "i8"' "inherited from the shipped highperf"
printf 'schema: sattn.profile/v1\ndescription: mine (cwd)\nselect:\n  l1_bytes: 777\n' >"$T/work/profiles/mine.yaml"
(cd "$T/work" && "$SATTN" profile show mine --format json) >"$T/out" 2>&1
grep -q '"l1_bytes": 777' "$T/out" && ok || fail "./profiles comes before XDG"
(cd "$T/work" && "$SATTN" profile list) >"$T/out" 2>&1
grep -q "mine (shadowed)" "$T/out" && ok || fail "the XDG copy is listed as shadowed"

# Errors: unknown profile (usage, lists what exists), unknown key, wrong type, bad schema,
# inheritance cycle; each invalid file gives file:line:col and exit 3.
run "$SATTN" profile show nosuch
expect_rc 2 "unknown profile"
expect_err "no profile named 'nosuch' \(searched profiles, .*\); available: .*highperf" "unknown profile message"
printf 'schema: sattn.profile/v1\nselect:\n  prefr: bsr\n' >"$T/typo.yaml"
run "$SATTN" profile validate "$T/typo.yaml"
expect_rc 3 "unknown key"
expect_err "typo.yaml:3:3: unknown key 'prefr' in select \(known: prefer, l1_bytes, backend, disable, min_recall, recall_confidence, recall_bound\)" "unknown key message"
printf 'schema: sattn.profile/v1\ndefaults:\n  tile_rows: many\n' >"$T/type.yaml"
run "$SATTN" profile validate "$T/type.yaml"
expect_rc 3 "wrong type"
expect_err "type.yaml:3:14: defaults.tile_rows must be an integer \(got 'many'\)" "wrong type message"
printf 'schema: sattn.profile/v1\nselect:\n  l1_bytes: 0\n' >"$T/range.yaml"
run "$SATTN" profile validate "$T/range.yaml"
expect_rc 3 "out of range"
expect_err "range.yaml:3:13: select.l1_bytes = 0 is out of range" "range message"
printf 'schema: sattn.profile/v2\n' >"$T/v2.yaml"
run "$SATTN" profile validate "$T/v2.yaml"
expect_rc 3 "unknown major version"
expect_err "v2.yaml:1:9: unsupported profile version 'sattn.profile/v2'" "version message"
printf 'description: no schema\n' >"$T/noschema.yaml"
run "$SATTN" profile validate "$T/noschema.yaml"
expect_rc 3 "missing schema"
printf 'schema: sattn.profile/v1\nbase: %s/b.yaml\n' "$T" >"$T/a.yaml"
printf 'schema: sattn.profile/v1\nbase: %s/a.yaml\n' "$T" >"$T/b.yaml"
run "$SATTN" profile validate "$T/a.yaml"
expect_rc 3 "inheritance cycle"
expect_err "profile inheritance cycle" "cycle message"
printf 'schema: sattn.profile/v1\nselect: [1, 2\n' >"$T/broken.yaml"
run "$SATTN" profile validate "$T/broken.yaml"
expect_rc 3 "malformed YAML"
expect_err "broken.yaml:[0-9]+:[0-9]+: " "malformed YAML has a position"
run "$SATTN" profile frobnicate
expect_rc 2 "unknown action"

# Precedence on a real selection: l1_bytes from defaults < profile < SATTN_HW_L1_BYTES < --l1-bytes.
OP="$SRC/examples/op.json"
l1() { field "$1" '[c["terms"]["l1_bytes"] for c in d["selection"]["candidates"]][0]'; }
"$SATTN" select "$OP" >"$T/p0" && [[ $(l1 "$T/p0") == 32768 ]] && ok || fail "default l1_bytes (cpu: 32768)"
"$SATTN" select "$OP" --profile lowpower >"$T/p1" && [[ $(l1 "$T/p1") == 16384 ]] && ok || fail "profile l1_bytes"
SATTN_HW_L1_BYTES=24576 "$SATTN" select "$OP" --profile lowpower >"$T/p2" && [[ $(l1 "$T/p2") == 24576 ]] && ok ||
  fail "environment over profile"
SATTN_HW_L1_BYTES=24576 "$SATTN" select "$OP" --profile lowpower --l1-bytes 8192 >"$T/p3" && [[ $(l1 "$T/p3") == 8192 ]] &&
  ok || fail "flag over environment"
grep -q 'profile lowpower: select.l1_bytes: 16384' "$T/p1" && ok || fail "the reason names the profile"

# prefer: profile (sw) < SATTN_PREFER_BSR < --prefer-sw, read from the prefer factor of sliding_window.
sw_factor() { field "$1" '[c["terms"]["prefer_factor"] for c in d["selection"]["candidates"] if c["spec"]=="sliding_window"][0]'; }
"$SATTN" select "$OP" --profile lowpower >"$T/q1" && [[ $(sw_factor "$T/q1") == 0.75 ]] && ok || fail "profile prefer sw"
SATTN_PREFER_BSR=1 "$SATTN" select "$OP" --profile lowpower >"$T/q2" && [[ $(sw_factor "$T/q2") == 1.1 ]] && ok ||
  fail "environment prefer over profile prefer"
SATTN_PREFER_BSR=1 "$SATTN" select "$OP" --profile lowpower --prefer-sw >"$T/q3" && [[ $(sw_factor "$T/q3") == 0.75 ]] &&
  ok || fail "flag prefer over environment"

# defaults.precision fills ops without a precision attribute only; --backend beats select.backend.
echo '{"seq_len":128,"heads":2,"head_dim":32,"window_size":8}' >"$T/noprec.json"
"$SATTN" select "$T/noprec.json" --profile lowpower >"$T/r1"
[[ $(field "$T/r1" 'd["op"]["precision"]') == i4 ]] && ok || fail "profile default precision"
"$SATTN" select "$OP" --profile lowpower >"$T/r2"
[[ $(field "$T/r2" 'd["op"]["precision"]') == fp32 ]] && ok || fail "the op's own precision wins"
"$SATTN" select "$OP" --profile imc >"$T/r3"
[[ $(field "$T/r3" 'd["backend"]') == imc ]] && ok || fail "profile select.backend"
"$SATTN" select "$OP" --profile imc --backend rvv >"$T/r4"
[[ $(field "$T/r4" 'd["backend"]') == rvv ]] && ok || fail "--backend over the profile"
run "$SATTN" select "$OP" --profile "$T/typo.yaml"
expect_rc 3 "a bad profile fails selection with its position"
expect_err "typo.yaml:3:3:" "position of the bad key"

# Backend sections: the profile sets the accelerator and its energies; a flag outranks it.
echo '{"seq_len":64,"heads":1,"head_dim":16,"block_size":16,"keep_ratio":0.5,"precision":"i8"}' >"$T/tiny.json"
"$SATTN" sim "$T/tiny.json" --model-only --profile lowpower >"$T/s1" 2>/dev/null
[[ $(field "$T/s1" 'd["sim"]["lanes"]') == 8 ]] && ok || fail "profile accel.lanes"
[[ $(field "$T/s1" 'd["sim"]["energy_model"]["mac_i8_pj"]') == 0.15 ]] && ok || fail "profile energy.mac_i8_pj"
"$SATTN" sim "$T/tiny.json" --model-only --profile lowpower --lanes 16 >"$T/s2" 2>/dev/null
[[ $(field "$T/s2" 'd["sim"]["lanes"]') == 16 ]] && ok || fail "--lanes over the profile"
"$SATTN" sim "$T/tiny.json" --model-only --profile highperf >"$T/s3" 2>/dev/null
[[ $(field "$T/s3" 'd["sim"]["lanes"]') == 32 ]] && ok || fail "highperf accel.lanes"

# Issue 18: a key given twice and a YAML tag are errors at their position (as in op files); a
# relative base: is relative to the profile that names it, wherever the command runs.
printf 'schema: sattn.profile/v1\nselect:\n  l1_bytes: 1024\n  l1_bytes: 2048\n' >"$T/dup.yaml"
run "$SATTN" profile validate "$T/dup.yaml"
expect_rc 3 "duplicate key in a profile"
expect_err "dup\.yaml:4:3: duplicate key 'l1_bytes'" "duplicate key position"
printf 'schema: sattn.profile/v1\nselect:\n  l1_bytes: !!str 1024\n' >"$T/tag.yaml"
run "$SATTN" profile validate "$T/tag.yaml"
expect_rc 3 "a YAML tag in a profile"
expect_err "tag\.yaml:3:13: YAML tags are not part of sattn's formats" "tag position"
mkdir -p "$T/rel/sub" "$T/elsewhere"
printf 'schema: sattn.profile/v1\nselect:\n  l1_bytes: 4321\n' >"$T/rel/sub/parent.yaml"
printf 'schema: sattn.profile/v1\nbase: sub/parent.yaml\n' >"$T/rel/child.yaml"
run bash -c "cd '$T/elsewhere' && '$SATTN' profile show '$T/rel/child.yaml' --format json"
expect_rc 0 "relative base: from another directory"
expect_out '"l1_bytes": 4321' "relative base: resolved against the profile's folder"

# `profile show X | profile validate -` round-trips: show's `inherits` list is accepted (issue 21).
for fmt in text json; do
  run bash -o pipefail -c "'$SATTN' profile show highperf --format $fmt | '$SATTN' profile validate -"
  expect_rc 0 "profile show highperf --format $fmt | profile validate -"
done
# Numbers are plain YAML scalars in profiles, as in ops: a quoted "256" is refused at its position.
printf 'schema: sattn.profile/v1\nrvv:\n  vlen: "256"\n' >"$T/quoted.yaml"
run "$SATTN" profile validate "$T/quoted.yaml"
expect_rc 3 "quoted vlen"
expect_err "^sattn profile: error: $T/quoted.yaml:3:9: vlen must be an integer, not the string '256' \(drop the quotes\)$" "quoted vlen: file:line:col"
printf '{"seq_len": "64"}\n' >"$T/quoted-op.json"
run "$SATTN" select "$T/quoted-op.json"
[[ $rc -eq 3 ]] && ok || fail "an op's quoted number is refused too (exit $rc)"
printf 'schema: sattn.profile/v1\ninherits: 3\n' >"$T/badinherits.yaml"
run "$SATTN" profile validate "$T/badinherits.yaml"
expect_rc 3 "inherits must be a list"

finish
