# sattn-emit: artifacts for every spec, read back by numpy and validated against the JSON
# Schemas; the same artifacts from a bare op and from `sattn-select | sattn-emit`; options; and
# every error path with its exit code and no partial output.
source "$(dirname "$0")/lib.sh"
: "${BUILD:?BUILD must point at the build directory}"
EMIT="$BUILD/bin/sattn-emit"
SELECT="$BUILD/bin/sattn-select"
SPECS="dense sliding_window bsr block_local_global nm_structured topk_per_query lsh landmark quest"

# check.py DIR [STDOUT]: the envelope(s) validate against schemas/artifacts.schema.json (with
# op.schema.json); the file copy is the stdout copy without "dir"; every .npy loads with numpy;
# row_ptr reproduces nnz, per-layout nnz and sorted, unique, in-range rows; the .desc and
# indices.txt agree with the arrays.
cat >"$T/check.py" <<'P'
import json, os, sys
import numpy as np, jsonschema
src, d = sys.argv[1], sys.argv[2]
load = lambda p: json.load(open(p))
art, op = load(f"{src}/schemas/artifacts.schema.json"), load(f"{src}/schemas/op.schema.json")
resolver = jsonschema.RefResolver.from_schema(art, store={art["$id"]: art, op["$id"]: op})
validator = jsonschema.Draft202012Validator(art, resolver=resolver)
env = load(f"{d}/artifacts.json")
validator.validate(env)
assert "dir" not in env, "the file copy carries no dir"
if len(sys.argv) > 3:
    lines = [json.loads(l) for l in open(sys.argv[3]) if l.strip()]
    assert len(lines) == 1, f"{len(lines)} envelopes on stdout"
    validator.validate(lines[0])
    lines[0].pop("dir")
    assert lines[0] == env, "stdout envelope differs from artifacts.json"
csr = env["layout"]["format"] == "csr"
pn, iname = ("row_ptr", "col_idx") if csr else ("block_row_ptr", "block_col_idx")
ptr = np.load(f"{d}/{env['arrays'][pn]['path']}")
idx = np.load(f"{d}/{env['arrays'][iname]['path']}")
assert ptr.dtype == np.int64 and idx.dtype == np.int32, (ptr.dtype, idx.dtype)
assert list(ptr.shape) == env["arrays"][pn]["shape"] and list(idx.shape) == env["arrays"][iname]["shape"]
layouts, rows, cols = env["layout"]["layouts"], env["layout"]["rows"], env["layout"]["cols"]
assert ptr.shape == (layouts, rows + 1)
nnz = int(ptr[-1, -1])
assert nnz == len(idx) == env["nnz"], (nnz, len(idx), env["nnz"])
for L in range(layouts):
    lay = idx[ptr[L, 0]:ptr[L, -1]]                  # layout L's indices
    counts = np.diff(ptr[L])                          # entries per row
    assert (counts >= 0).all() and len(lay) == env["stats"]["per_layout"][L]["nnz"]
    assert ((lay >= 0) & (lay < cols)).all()
    row_of = np.repeat(np.arange(rows), counts)
    same_row = row_of[1:] == row_of[:-1]
    assert (np.diff(lay)[same_row] > 0).all(), "rows sorted and unique"
    if L > 0:
        assert ptr[L, 0] == ptr[L - 1, -1]
desc = {}
for line in open(f"{d}/{env['files']['desc']}"):
    if " = " in line and not line.startswith("#"):
        k, v = line.rstrip("\n").split(" = ", 1)
        desc[k] = v
assert int(desc["nnz"]) == nnz and int(desc["layouts"]) == layouts and int(desc["rows"]) == rows
assert [int(desc[f"nnz_{L}"]) for L in range(layouts)] == [int(ptr[L, -1] - ptr[L, 0]) for L in range(layouts)]
assert desc["spec_name"] == env["spec"]
for n in "qkv":
    if n in env["arrays"]:
        a = np.load(f"{d}/{env['arrays'][n]['path']}")
        assert a.dtype == np.float32 and list(a.shape) == env["arrays"][n]["shape"]
# indices.txt lists the same rows as the arrays (FIRST-LAST expanded), one section per layout.
text = [l.rstrip("\n") for l in open(f"{d}/{env['files']['indices']}")]
assert text[0].startswith("# sattn indices v1")
body = [l for l in text if not l.startswith("#")]
assert len(body) == layouts * (rows + 1), (len(body), layouts, rows)
for L in range(layouts):
    title, lines = body[L * (rows + 1)], body[L * (rows + 1) + 1:(L + 1) * (rows + 1)]
    assert title.startswith(f"layout {L}: ") and title.endswith(f" nnz={int(ptr[L, -1] - ptr[L, 0])}"), title
    for r, line in enumerate(lines):
        head, rest = line.split(":")
        keys = []
        for t in rest.split():
            first, _, last = t.partition("-")
            keys += range(int(first), int(last or first) + 1)
        assert int(head) == r and keys == idx[ptr[L, r]:ptr[L, r + 1]].tolist(), (L, r, line)
print("ok", env["spec"], nnz)
P
valid() { run "$PY" "$T/check.py" "$SRC" "$@"; expect_rc 0 "artifacts in $1 valid (numpy + schema)"; }

# Every spec emits (forced, whatever the selector would choose), for its example op.
for spec in $SPECS; do
  run "$EMIT" --force-spec "$spec" "$SRC/examples/$spec.mlir" --out-dir "$T/spec.$spec"
  expect_rc 0 "emit $spec"
  expect_out "\"spec\":\"$spec\"" "$spec envelope names the spec"
  echo "$out" >"$T/spec.$spec.json"
  valid "$T/spec.$spec" "$T/spec.$spec.json"
done
# Data travels with the data-dependent layouts only.
expect_file "$T/spec.topk_per_query/q.npy" "topk carries q"
expect_file "$T/spec.quest/k.npy" "quest carries k"
expect_file "$T/spec.quest/block_col_idx.npy" "quest is a BSR layout of pages"
expect_no_file "$T/spec.sliding_window/q.npy" "sliding_window carries no q"
expect_file "$T/spec.block_local_global/block_col_idx.npy" "BSR arrays named block_*"

# The umbrella runs the same tool; the op's own spec comes from the selector.
run "$SATTN" emit "$SRC/examples/op.yaml" --out-dir "$T/yaml"
expect_rc 0 "sattn emit op.yaml"
valid "$T/yaml"

# Bare op and select | emit give identical artifacts (and the same envelope but for "dir").
for f in dense sliding_window bsr block_local_global nm_structured topk_per_query lsh landmark ring gqa_causal multi; do
  run "$EMIT" "$SRC/examples/$f.mlir" --out-dir "$T/direct.$f"
  expect_rc 0 "emit $f.mlir"
  run bash -c "\"$SELECT\" \"$SRC/examples/$f.mlir\" | \"$EMIT\" --out-dir \"$T/piped.$f\""
  expect_rc 0 "select | emit $f"
  run diff -r "$T/direct.$f" "$T/piped.$f"
  expect_rc 0 "emit $f.mlir and select | emit give identical files"
done
run bash -c "\"$SELECT\" --force-spec lsh \"$SRC/examples/dense.mlir\" | \"$EMIT\" --out-dir \"$T/piped.forced\""
expect_rc 0 "forced plan piped"
run "$EMIT" --force-spec lsh "$SRC/examples/dense.mlir" --out-dir "$T/direct.forced"
run diff -r "$T/direct.forced" "$T/piped.forced"
expect_rc 0 "--force-spec on emit = --force-spec on select"
# A plan is taken as it is: emit's own selection flags apply to bare ops only.
run bash -c "\"$SELECT\" --force-spec lsh \"$SRC/examples/dense.mlir\" | \"$EMIT\" --force-spec bsr --out-dir \"$T/plan.kept\""
expect_out '"spec":"lsh"' "plan's spec kept"

# Several ops: one subdirectory per op name, one envelope line each, all or nothing.
run "$EMIT" "$SRC/examples/multi.mlir" --out-dir "$T/multi"
expect_rc 0 "multi-op emit"
[[ $(wc -l <<<"$out") -eq 3 ]] && ok || fail "three envelope lines"
expect_out '"dir":"[^"]*/multi/bsr_i8"' "dir of the second op"
for n in sw_bf16 bsr_i8 blg; do valid "$T/multi/$n"; done

# --out-stem names indices.txt/indices.desc; the arrays and artifacts.json keep their names.
run "$EMIT" "$SRC/examples/ring.mlir" --out-stem "$T/stem/ring"
expect_rc 0 "--out-stem"
expect_file "$T/stem/ring.txt" "stem .txt"
expect_file "$T/stem/ring.desc" "stem .desc"
expect_out '"indices":"ring.txt"' "envelope names the stem files"
run grep -q '^indices_file = ring.txt$' "$T/stem/ring.desc"
expect_rc 0 ".desc names the stem file"
valid "$T/stem"

# indices.txt: the header, then one line per query row (a ring window of 16: 33 keys per row).
run sed -n '10,13p' "$T/stem/ring.txt"
expect_out '^# nnz: 16896$' "nnz in the header (512 rows x 33)"
expect_out '^layout 0: shared nnz=16896$' "layout line"
expect_out '^0: 0-16 496-511$' "row 0 wraps around"

# --data: arrays written by numpy are used, checked and carried; --seed picks synthetic data.
"$PY" - "$T/data" <<'P'
import numpy as np, os, sys
d = sys.argv[1]; os.makedirs(d)
rng = np.random.default_rng(3)
for n in "qkv":
    np.save(os.path.join(d, n + ".npy"), rng.standard_normal((1, 4, 512, 64)).astype(np.float32))
P
run "$EMIT" "$SRC/examples/topk_per_query.mlir" --data "$T/data" --out-dir "$T/withdata"
expect_rc 0 "emit with --data"
expect_out '"data":\{"carried":true,"dir":"[^"]*","source":"npy","used_by_layout":true\}' "data provenance"
run "$PY" -c "import numpy as np; print(all((np.load('$T/data/'+n+'.npy') == np.load('$T/withdata/'+n+'.npy')).all() for n in 'qkv'))"
expect_out '^True$' "the q/k/v carried are the ones given"
run "$EMIT" "$SRC/examples/ring.mlir" --data "$T/data" --out-dir "$T/swdata"
expect_rc 0 "given data is carried even for a data-independent spec"
expect_file "$T/swdata/v.npy" "v carried"
run "$EMIT" "$SRC/examples/bsr.mlir" --seed 11 --out-dir "$T/seed11"
run "$EMIT" "$SRC/examples/bsr.mlir" --seed 11 --out-dir "$T/seed11b"
run diff -r "$T/seed11" "$T/seed11b"
expect_rc 0 "a seed gives the same artifacts"
run cmp -s "$T/seed11/q.npy" "$T/direct.bsr/q.npy"
expect_rc 1 "another seed gives other data"

# -o and --format text.
run "$EMIT" "$SRC/examples/lsh.mlir" --out-dir "$T/o" -o "$T/o.json"
expect_rc 0 "-o"
expect_no_out "-o leaves stdout empty"
run "$PY" "$T/check.py" "$SRC" "$T/o" "$T/o.json"
expect_rc 0 "-o file holds the envelope"
run "$EMIT" "$SRC/examples/lsh.mlir" --out-dir "$T/t" --format text
expect_out '^op +spec +format +layouts +nnz +density' "text table header"
expect_out '^lsh +lsh +csr +4 ' "text table row"

# Re-emitting into a previous output replaces the directory whole (issue 18: old and new files
# are never mixed; tests/cli/paths.sh has the other cases).
echo mine >"$T/o/notes.txt"
run "$EMIT" "$SRC/examples/lsh.mlir" --out-dir "$T/o"
expect_rc 0 "emit into an existing directory"
expect_no_file "$T/o/notes.txt" "the old directory is replaced whole"
valid "$T/o"

# Errors: exit code, message with its location, and nothing written.
err_case() {  # err_case RC REGEX NAME -- ARGS...
  local want=$1 re=$2 name=$3
  shift 4
  run "$EMIT" "$@" --out-dir "$T/fail/out" -o "$T/fail/env.json"
  expect_rc "$want" "$name"
  expect_err "$re" "$name message"
  expect_no_file "$T/fail/out" "$name leaves no output directory"
  expect_no_file "$T/fail/env.json" "$name leaves no -o file"
}
mkdir -p "$T/fail"
err_case 3 "^sattn-emit: error: .*missing_brace\.mlir:3:75: " "malformed MLIR" -- "$SRC/tests/bad/missing_brace.mlir"
err_case 3 "unknown_spec\.mlir:3:39: attribute 'spec': unknown spec 'diagonal'" "unknown spec" -- "$SRC/tests/bad/unknown_spec.mlir"
err_case 3 "keep_ratio_range\.mlir:5:5: attribute 'keep_ratio': must be in \(0, 1\]" "out-of-range attribute" -- \
  "$SRC/tests/bad/keep_ratio_range.mlir"
err_case 3 "schema_v2\.json:1:12: unsupported schema major version 2" "unknown op schema major" -- "$SRC/tests/bad/schema_v2.json"
"$SELECT" "$SRC/examples/lsh.mlir" | sed 's#sattn.plan/v1#sattn.plan/v7#' >"$T/plan_v7.json"
err_case 3 "plan_v7\.json:1:[0-9]+: unsupported schema major version 7" "unknown plan schema major" -- "$T/plan_v7.json"
cp -r "$T/data" "$T/bad_data"
"$PY" -c "import numpy as np; np.save('$T/bad_data/k.npy', np.zeros((1, 4, 100, 64), np.float32))"
err_case 3 "bad_data/k\.npy: shape \[1, 4, 100, 64\] does not match the op" "--data shape mismatch" -- \
  "$SRC/examples/topk_per_query.mlir" --data "$T/bad_data"
err_case 2 "unknown spec 'diagonal'" "unknown --force-spec" -- --force-spec diagonal "$SRC/examples/lsh.mlir"
run "$EMIT" "$SRC/examples/lsh.mlir"
expect_rc 2 "no --out-dir"
expect_err "give exactly one of --out-dir DIR and --out-stem DIR/NAME" "no --out-dir message"
run "$EMIT" "$SRC/examples/lsh.mlir" --out-dir "$T/a" --out-stem "$T/b/x"
expect_rc 2 "--out-dir with --out-stem"
echo x >"$T/fail/file"
run "$EMIT" "$SRC/examples/lsh.mlir" --out-dir "$T/fail/file/sub"
expect_rc 1 "unwritable output directory"
expect_err "^sattn-emit: error: .*fail/file/sub: cannot create directory" "unwritable message"
run "$EMIT" "$SRC/examples/multi.mlir" --out-dir "$T/fail/file/sub"
expect_rc 1 "unwritable output directory, several ops"
run find "$T/fail" -mindepth 1
[[ $out == "$T/fail/file" ]] && ok || fail "failures leave nothing but the test's own file (no staging directories)"

finish
