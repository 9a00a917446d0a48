# Paths (issue 18, items 2 and 8): op names never lead out of --out-dir (cleaned once, by
# support/io.cpp safe_file_name, for every tool) and never collide; the artifacts reader follows
# no absolute path and no '..'; an output directory is replaced whole (never old and new files
# mixed), a user's non-empty directory only with --force, a symlinked one through its target.
source "$(dirname "$0")/lib.sh"
BIN="$(dirname "$SATTN")"
EMIT=$BIN/sattn-emit

# --- Op names: traversal, collisions ------------------------------------------------------
mkdir -p "$T/names/work/D"
cat >"$T/names/ops.mlir" <<'OP'
"sattn.sparse_attention"() { name = "/../../../escape", seq_len = 32 : i64, head_dim = 8 : i64, window_size = 4 : i64 } : () -> ()
"sattn.sparse_attention"() { name = "a/b", seq_len = 32 : i64, head_dim = 8 : i64, window_size = 4 : i64 } : () -> ()
"sattn.sparse_attention"() { name = "a_b", seq_len = 32 : i64, head_dim = 8 : i64, window_size = 2 : i64 } : () -> ()
"sattn.sparse_attention"() { name = "..", seq_len = 32 : i64, head_dim = 8 : i64, window_size = 2 : i64 } : () -> ()
OP
cp "$T/names/ops.mlir" "$T/names/work/ops.mlir"
for tool in run emit; do
  rm -rf "$T/names/work/D"
  if [[ $tool == run ]]; then
    run "$SATTN" run "$T/names/work/ops.mlir" --out-dir "$T/names/work/D" -o "$T/names/$tool.json"
  else
    run "$EMIT" "$T/names/work/ops.mlir" --out-dir "$T/names/work/D" -o "$T/names/$tool.json"
  fi
  expect_rc 0 "$tool: ops with traversal names"
  # Nothing was created outside D: the work directory holds the input and D only, and no parent.
  [[ $(ls -A "$T/names/work" | tr '\n' ' ') == "D ops.mlir " ]] && ok || fail "$tool: wrote outside --out-dir: $(ls -A "$T/names/work")"
  [[ ! -e $T/escape && ! -e $T/names/escape && ! -e /tmp/escape ]] && ok || fail "$tool: the name escaped"
  # Four ops, four distinct folders, all inside D; a/b and a_b do not overwrite each other.
  n=$(find "$T/names/work/D" -mindepth 1 -maxdepth 1 -type d | wc -l)
  [[ $n -eq 4 ]] && ok || fail "$tool: expected 4 op folders, got $n: $(ls -A "$T/names/work/D")"
  [[ -z $(find "$T/names/work/D" -mindepth 1 -maxdepth 1 -name '.*') ]] && ok || fail "$tool: a hidden op folder"
done
# sattn run: "ops.a_b" and "ops.a_b.2" (first come, first named), each with its own result.
rm -rf "$T/names/work/D"
"$SATTN" run "$T/names/work/ops.mlir" --out-dir "$T/names/work/D" >/dev/null 2>&1
run "$PY" -c "
import json, sys
d = sys.argv[1]
a = json.load(open(d + '/ops.a_b/result.json'))['op']['name']
b = json.load(open(d + '/ops.a_b.2/result.json'))['op']['name']
print(a, b)" "$T/names/work/D"
expect_out '^a/b a_b$' "run: colliding names get .2 in input order"

# --- The artifacts reader stays inside the artifacts directory ---------------------------
"$EMIT" "$SRC/examples/topk_per_query.mlir" --out-dir "$T/art" >/dev/null 2>&1
cp "$T/art/q.npy" "$T/outside.npy"
escape() {  # escape NAME PYTHON-EDIT: edit a copy of the envelope, expect exit 3 naming the member
  local name=$1 edit=$2 member=$3
  rm -rf "$T/esc" && cp -r "$T/art" "$T/esc"
  "$PY" -c "
import json, sys
p = sys.argv[1]
e = json.load(open(p))
$edit
json.dump(e, open(p, 'w'))" "$T/esc/artifacts.json"
  run "$SATTN" run "$T/esc/artifacts.json" -o "$T/esc.out"
  expect_rc 3 "artifacts: $name"
  expect_err "esc/artifacts\.json: $member '.*' must be a relative path inside the artifacts directory" "artifacts: $name"
  expect_no_file "$T/esc.out" "artifacts: $name"
}
escape "absolute array path" "e['arrays']['q']['path'] = '$T/outside.npy'" '"arrays"\.q\.path'
escape "'..' array path" "e['arrays']['q']['path'] = '../outside.npy'" '"arrays"\.q\.path'
escape "'..' inside an array path" "e['arrays']['col_idx']['path'] = 'x/../../art/col_idx.npy'" '"arrays"\.col_idx\.path'
escape "absolute desc path" "e['files']['desc'] = '$T/art/indices.desc'" '"files"\.desc'
escape "'..' indices path" "e['files']['indices'] = '../art/indices.txt'" '"files"\.indices'
# An array the user linked in (a symlink inside the directory) is followed: it is their choice.
rm -rf "$T/esc" && cp -r "$T/art" "$T/esc" && rm "$T/esc/q.npy" && ln -s ../outside.npy "$T/esc/q.npy"
run "$SATTN" run "$T/esc/artifacts.json" -o "$T/esc.out"
expect_rc 0 "artifacts: a symlinked array inside the directory"

# --- An output directory is replaced whole ------------------------------------------------
"$EMIT" "$SRC/examples/lsh.mlir" --out-dir "$T/o" >/dev/null 2>&1
echo mine >"$T/o/notes.txt"
"$EMIT" "$SRC/examples/bsr.mlir" --out-dir "$T/o2" >/dev/null 2>&1
run "$EMIT" "$SRC/examples/bsr.mlir" --out-dir "$T/o"
expect_rc 0 "emit over a previous output"
[[ ! -e $T/o/notes.txt && ! -e $T/o/row_ptr.npy ]] && ok || fail "the old directory's files are mixed in: $(ls "$T/o")"
[[ $(cd "$T/o" && ls -A) == $(cd "$T/o2" && ls -A) ]] && ok || fail "the replaced directory is not exactly the new output"
[[ -z $(ls -A "$T" | grep '^\.sattn-') ]] && ok || fail "staging left: $(ls -A "$T")"
# A user's non-empty directory (no sattn output in it) is refused, untouched, unless --force.
mkdir -p "$T/mine" && echo keep >"$T/mine/thesis.tex"
run "$EMIT" "$SRC/examples/bsr.mlir" --out-dir "$T/mine"
expect_rc 1 "emit into a user's directory"
expect_err "sattn-emit: error: $T/mine: exists, is not empty and holds no sattn output: refusing to replace it \(--force" "emit into a user's directory"
[[ $(cat "$T/mine/thesis.tex") == keep && $(ls -A "$T/mine") == thesis.tex ]] && ok || fail "the user's directory changed"
run "$SATTN" run "$SRC/examples/bsr.mlir" --out-dir "$T/mine"
expect_rc 1 "run into a user's directory"
run "$EMIT" "$SRC/examples/bsr.mlir" --out-dir "$T/mine" --force
expect_rc 0 "emit --force"
[[ ! -e $T/mine/thesis.tex && -f $T/mine/artifacts.json ]] && ok || fail "--force should replace the directory whole"
# An empty directory is simply filled; the current directory is never replaced, even with --force.
mkdir "$T/empty"
run "$EMIT" "$SRC/examples/bsr.mlir" --out-dir "$T/empty"
expect_rc 0 "emit into an empty directory"
mkdir -p "$T/cwd/sub" && echo x >"$T/cwd/sub/f"
run bash -c "cd '$T/cwd' && '$EMIT' '$SRC/examples/bsr.mlir' --out-dir . --force"
expect_rc 1 "--out-dir . --force"
expect_err "refusing to replace the current directory" "--out-dir ."
[[ -f $T/cwd/sub/f ]] && ok || fail "--out-dir . removed the current directory's files"
# --out-stem DIR/NAME adds to DIR (the user's directory): other files stay.
mkdir -p "$T/stem" && echo keep >"$T/stem/notes.txt"
run "$EMIT" "$SRC/examples/ring.mlir" --out-stem "$T/stem/ring"
expect_rc 0 "--out-stem into a user's directory"
[[ -f $T/stem/notes.txt && -f $T/stem/ring.desc ]] && ok || fail "--out-stem should add to DIR"

# A symlinked --out-dir: its target is replaced, the link stays, the staging directory is made
# beside the target (so a link to another file system works: no cross-device rename).
mkdir -p "$T/real" "$T/links"
"$EMIT" "$SRC/examples/lsh.mlir" --out-dir "$T/real/out" >/dev/null 2>&1
ln -s ../real/out "$T/links/out"
run "$EMIT" "$SRC/examples/bsr.mlir" --out-dir "$T/links/out"
expect_rc 0 "emit into a symlinked directory"
[[ -L $T/links/out && -f $T/real/out/block_col_idx.npy && ! -e $T/real/out/col_idx.npy ]] && ok || fail "symlinked out-dir: target not replaced whole, or link replaced"
[[ $(ls -A "$T/links") == out ]] && ok || fail "symlinked out-dir: staged beside the link: $(ls -A "$T/links")"

# Two writers at once into one directory: each output is whole, never interleaved; the last to
# commit wins.
big() { sed -e "s/seq_len = [0-9]*/seq_len = $2/" "$SRC/examples/$1.mlir" >"$T/$1.big.mlir"; }
big sliding_window 16384
big bsr 4096
for round in 1 2 3; do
  rm -rf "$T/race"
  "$EMIT" "$T/sliding_window.big.mlir" --out-dir "$T/race" >/dev/null 2>"$T/race1.err" &
  p1=$!
  "$EMIT" "$T/bsr.big.mlir" --out-dir "$T/race" >/dev/null 2>"$T/race2.err" &
  p2=$!
  wait $p1
  r1=$?
  wait $p2
  r2=$?
  [[ $r1 -eq 0 && $r2 -eq 0 ]] && ok || { err="$(cat "$T/race1.err" "$T/race2.err")"; rc="$r1/$r2"; out=""; fail "race $round: a writer failed"; }
  run "$PY" - "$T/race" <<'PYEOF'
import json, os, sys
d = sys.argv[1]
env = json.load(open(os.path.join(d, "artifacts.json")))
named = {a["path"] for a in env["arrays"].values()} | set(env["files"].values()) | {"artifacts.json"}
present = set(os.listdir(d))
assert present == named, (sorted(present), sorted(named))
print(env["spec"])
PYEOF
  expect_rc 0 "race $round: the directory is one writer's output, whole"
done

finish
