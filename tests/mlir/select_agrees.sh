# Selection in MLIR is sattn-select's, on every example: for each file of examples/ (op.json and
# op.yaml written as MLIR from sattn-select's echo of their ops), each backend and each SATTN_*
# override, `sattn-opt -sattn-select-spec` and `sattn-select` choose the same spec for the same
# reason. And a module lowered by sattn-opt (rvv and rocc), read back by sattn-select, has the
# spec, parameters, shape, precision and scales of sattn-select's own plan.
source "$SRC/tests/cli/lib.sh"
BIN=$(dirname "$SATTN")
SEL() { "$BIN/sattn-select" "$@"; }
OPT() { "$BIN/sattn-opt" "$@"; }
SELECTIONS="$PY $SRC/tests/mlir/selections.py"
# The caller's overrides must not leak in.
while read -r v; do unset "$v"; done < <(env | grep -o '^SATTN_[A-Z0-9_]*' | grep -v '^SATTN_LIBEXEC_DIR$')

inputs=()
for ex in "$SRC"/examples/*.mlir; do inputs+=("$ex"); done
for ex in "$SRC"/examples/op.json "$SRC"/examples/op.yaml; do
  name=$(basename "$ex")
  SEL "$ex" >"$T/$name.plans" && $SELECTIONS mlir "$T/$name.plans" >"$T/$name.mlir"
  inputs+=("$T/$name.mlir")
done
[[ ${#inputs[@]} -ge 13 ]] && ok || fail "examples: ${#inputs[@]} inputs"

# compare LABEL ENV... -- SELECT-FLAGS -- PASS-OPTIONS: every input, both ways.
compare() {
  local label=$1 envs=() sel=() pass
  shift
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  while [[ $1 != -- ]]; do sel+=("$1"); shift; done
  pass=$2
  for ex in "${inputs[@]}"; do
    local what="$label: $(basename "$ex")"
    env "${envs[@]}" "$BIN/sattn-select" -q "${sel[@]}" "$ex" >"$T/plans" 2>"$T/sel.err"
    local sel_rc=$?
    env "${envs[@]}" "$BIN/sattn-opt" "$ex" "-sattn-select-spec=$pass" >"$T/opt.mlir" 2>"$T/opt.err"
    local opt_rc=$?
    if [[ $sel_rc -ne 0 ]]; then
      # Where sattn-select refuses (a forced spec the op cannot run), so does the pass.
      [[ $opt_rc -ne 0 ]] && ok || fail "$what: sattn-select failed ($(head -1 "$T/sel.err")), sattn-opt did not"
      continue
    fi
    [[ $opt_rc -eq 0 ]] || { fail "$what: sattn-opt failed: $(head -3 "$T/opt.err")"; continue; }
    if diff <($SELECTIONS select "$T/plans") <($SELECTIONS select "$T/opt.mlir") >"$T/diff"; then ok; else
      fail "$what: selections differ (< sattn-select, > sattn-opt):"; cat "$T/diff"
    fi
  done
}

for b in cpu rvv rocc imc; do
  compare "backend $b" -- --backend $b -- "backend=$b"
done
compare "default backend" -- -- ""
compare "prefer-sw" -- --prefer-sw -- "prefer-sw"
compare "prefer-bsr, rvv" -- --prefer-bsr --backend rvv -- "prefer-bsr backend=rvv"
compare "l1-bytes" -- --l1-bytes 65536 -- "l1-bytes=65536"
compare "force-spec" -- --force-spec sliding_window -- "force-spec=sliding_window"
compare "disable" -- --disable bsr,block_local_global -- "disable=bsr,block_local_global"
compare "profile" -- --profile "$SRC/profiles/lowpower.yaml" -- "profile=$SRC/profiles/lowpower.yaml"
compare "SATTN_DISABLE_*" SATTN_DISABLE_BSR=1 SATTN_DISABLE_NM=1 SATTN_DISABLE_LSH=1 -- -- ""
compare "SATTN_FORCE_SPEC" SATTN_FORCE_SPEC=dense -- -- ""
compare "SATTN_PREFER_SW" SATTN_PREFER_SW=1 -- --backend rocc -- "backend=rocc"
compare "SATTN_HW_L1_BYTES" SATTN_HW_L1_BYTES=16384 -- -- ""

# Lowered modules: what the backends will run is what sattn-select would have planned.
for b in rvv rocc; do
  for ex in "${inputs[@]}"; do
    what="lowered for $b: $(basename "$ex")"
    SEL --backend $b "$ex" >"$T/plans" 2>/dev/null || { fail "$what: sattn-select failed"; continue; }
    OPT "$ex" "-sattn-lower-$b" >"$T/lowered.mlir" 2>"$T/opt.err" || { fail "$what: $(head -3 "$T/opt.err")"; continue; }
    grep -q "sattn.sparse_attention" "$T/lowered.mlir" && fail "$what: an op was not lowered"
    grep -q "sattn.${b}_call" "$T/lowered.mlir" && ok || fail "$what: no sattn.${b}_call"
    SEL --backend $b - <"$T/lowered.mlir" >"$T/relowered" 2>"$T/sel.err" || { fail "$what: sattn-select cannot read it: $(cat "$T/sel.err")"; continue; }
    if diff <($SELECTIONS lowered "$T/plans") <($SELECTIONS lowered "$T/relowered") >"$T/diff"; then ok; else
      fail "$what: differs (< sattn-select, > lowered):"; cat "$T/diff"
    fi
    # The generic form reads the same.
    OPT "$ex" "-sattn-lower-$b" -mlir-print-op-generic | SEL --backend $b - >"$T/generic" 2>/dev/null
    if diff <($SELECTIONS lowered "$T/relowered") <($SELECTIONS lowered "$T/generic") >"$T/diff"; then ok; else
      fail "$what: the generic form reads differently:"; cat "$T/diff"
    fi
  done
done
finish
