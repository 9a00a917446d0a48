# Schemas (issue 21, item 5): every JSON document a tool prints validates against schemas/, with
# /usr/bin/python3's jsonschema, offline: $ids and $refs are relative file names resolved beside
# the schema files (tests/cli/schemas/validate.py fails on any http(s) fetch).
# (`sattn profile show --format json` is left to tests/cli/profile.sh.)
source "$(dirname "$0")/lib.sh"
BIN="$(dirname "$SATTN")"
V=("$PY" "$SRC/tests/cli/schemas/validate.py" "$SRC/schemas")

# --- The schema files themselves ---------------------------------------------------------------
run "$PY" - "$SRC/schemas" <<'PY'
import json, pathlib, re, sys
import jsonschema
d = pathlib.Path(sys.argv[1])
files = sorted(d.glob("*.schema.json"))
assert len(files) >= 14, files
for f in files:
    s = json.loads(f.read_text())
    jsonschema.Draft202012Validator.check_schema(s)
    assert s["$id"] == f.name, f"{f.name}: $id is {s['$id']!r}, not its own file name"
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema", f.name
    kind = f.name[:-len(".schema.json")]
    assert s["title"].startswith(f"sattn.{kind}/v1"), (f.name, s["title"])
    text = f.read_text()
    for ref in re.findall(r'"\$ref":\s*"([^"]*)"', text):
        assert not re.match(r"^[a-z]+:", ref), f"{f.name}: $ref {ref} is not a relative reference"
        target = ref.split("#")[0]
        assert not target or (d / target).is_file(), f"{f.name}: $ref {ref} names no file in schemas/"
    # No network host anywhere but the standard meta-schema URI.
    hosts = set(re.findall(r"https?://[^\"/]+", text)) - {"https://json-schema.org"}
    assert not hosts, f"{f.name}: names {hosts}"
print(len(files), "schemas")
PY
expect_rc 0 "schema files: valid, local \$ids and \$refs"
expect_out "^[0-9]+ schemas$" "schemas counted"
# The install rule ships them.
grep -q 'install(DIRECTORY schemas/ DESTINATION ${CMAKE_INSTALL_DATADIR}/sattn/schemas' "$SRC/CMakeLists.txt" && ok ||
  fail "CMakeLists.txt installs schemas/"

# --- Real output of every tool ---------------------------------------------------------------------
OP="$T/op.json"
echo '{"schema": "sattn.op/v1", "name": "s", "heads": 2, "kv_heads": 1, "seq_len": 48, "head_dim": 16, "causal": true, "spec": "bsr", "block_size": 16, "keep_ratio": 0.5}' >"$OP"
echo '{"schema": "sattn.op/v1", "name": "w", "heads": 2, "seq_len": 32, "head_dim": 16, "spec": "sliding_window", "window_size": 4}' >"$T/w.json"
files=()
produce() {  # produce NAME CMD...: runs CMD (stdout to $T/NAME), expects exit 0
  local name=$1; shift
  "$@" >"$T/$name" 2>"$T/$name.err"
  local code=$?
  [[ $code -eq 0 ]] && ok || { rc=$code; out=$(head -c 500 "$T/$name"); err=$(cat "$T/$name.err"); fail "$name: $*"; }
  files+=("$T/$name")
}
produce run_cpu.jsonl "$SATTN" run "$OP" --format json
produce run_all.jsonl "$SATTN" run "$T/w.json" --backend all --format json -q
produce run_none.jsonl "$SATTN" run "$OP" --check none --format json
produce run_sample.jsonl "$SATTN" run "$OP" --check sample --format json
produce dry_run.jsonl "$SATTN" run "$OP" --backend all --dry-run --format json
"$SATTN" run "$OP" --out-dir "$T/od" -q >/dev/null 2>&1; files+=("$T/od/result.json")
produce plan.jsonl "$BIN/sattn-select" "$OP" "$T/w.json"
produce recall_plan.jsonl "$BIN/sattn-select" "$OP" --min-recall 0.9
produce emit.jsonl "$BIN/sattn-emit" "$OP" --out-dir "$T/art"
files+=("$T/art/artifacts.json")
produce run_rvv.jsonl "$BIN/sattn-run-rvv" "$T/w.json" --vlen 128 --format json
produce sim.jsonl "$BIN/sattn-sim" "$T/w.json" --format json
produce probe.json "$BIN/sattn-sim" --probe --format json
produce calibrate.json "$BIN/sattn-calibrate" "$OP" --precision i8 --format json
produce imc.jsonl "$BIN/sattn-imc" "$OP" --format json
produce eval.json "$SATTN" eval "$OP" --format json
produce model.json bash -c "cd \"\$0\" && \"\$1\" model gpt2 --seq 256 --format json" "$SRC" "$SATTN"
"$SATTN" bench --backend cpu --specs sliding_window --seq-lens 32 --heads 1 --head-dim 8 --out-dir "$T/bench" -q >/dev/null 2>&1
files+=("$T/bench/bench.json")
"$SATTN" doctor --format json >"$T/doctor.json" 2>/dev/null   # exit 4 where a tool is missing: the JSON is the same kind
files+=("$T/doctor.json")

run "${V[@]}" "${files[@]}"
expect_rc 0 "every document validates"
for kind in result estimate plan artifacts probe calibration imc eval model bench doctor; do
  expect_out "^ok sattn\.$kind/v1 " "a sattn.$kind/v1 document was checked"
done
expect_out "^ok sattn\.result/v1 $T/run_none\.jsonl$" "check none (passed null) is valid"
[[ $(grep -c '"backend":"\(cpu\|rvv\|rocc\)"' "$T/run_all.jsonl") -eq 3 ]] && ok || fail "run --backend all gave cpu, rvv and rocc results"

# The validator can fail: documents with a required member missing or a wrong type are refused.
"$PY" - "$T" <<'PY'
import json, sys
t = sys.argv[1]
r = json.loads(open(f"{t}/run_cpu.jsonl").readline())
del r["check"]
open(f"{t}/bad_result.json", "w").write(json.dumps(r))
r = json.loads(open(f"{t}/run_cpu.jsonl").readline())
r["layout"]["density"] = 2
open(f"{t}/bad_density.json", "w").write(json.dumps(r))
r = json.loads(open(f"{t}/run_cpu.jsonl").readline())
r["op"]["heads"] = 0   # checked through the $ref to op.schema.json
open(f"{t}/bad_op.json", "w").write(json.dumps(r))
e = json.loads(open(f"{t}/dry_run.jsonl").readline())
e["would_run"] = "yes"
open(f"{t}/bad_estimate.json", "w").write(json.dumps(e))
PY
for b in bad_result bad_density bad_op bad_estimate; do
  run "${V[@]}" "$T/$b.json"
  expect_rc 1 "$b is refused"
done
expect_err "FAIL: .*bad_estimate\.json document 0 \(sattn\.estimate/v1\): 'yes' is not of type 'boolean' at /would_run" "names the member"
run "${V[@]}" "$T/bad_op.json"
expect_err "at /op/heads$" "the op is checked through op.schema.json"

# A plain validator given only the schema directory resolves every reference without a network.
run "$PY" - "$SRC/schemas" "$T/art/artifacts.json" <<'PY'
import json, pathlib, sys, jsonschema
d = pathlib.Path(sys.argv[1]).resolve()
def no_network(uri): raise SystemExit(f"network fetch of {uri}")
schema = json.loads((d / "artifacts.schema.json").read_text())
store = {json.loads(f.read_text())["$id"]: json.loads(f.read_text()) for f in d.glob("*.schema.json")}
resolver = jsonschema.RefResolver.from_schema(schema, store=store, handlers={"http": no_network, "https": no_network})
jsonschema.Draft202012Validator(schema, resolver=resolver).validate(json.load(open(sys.argv[2])))
print("store ok")
PY
expect_rc 0 "an in-memory store keyed by \$id resolves the references too"
expect_out "^store ok$" "store"
finish
