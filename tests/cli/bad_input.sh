# Bad input corpus (tests/bad, issue 9): every bad file goes through every tool that reads that
# kind of input. Each must exit 3 with `TOOL: error: FILE[:LINE:COL]: message` naming the bad
# file (and its position or element), never crash or hang, and leave nothing in the output
# directory it was given (-o / --out-dir point into an empty directory that must stay empty).
source "$(dirname "$0")/lib.sh"
BAD=$SRC/tests/bad
BIN=$(dirname "$SATTN")

# A tool as a command line: the standalone binary where it was built, else `sattn TOOL`.
tool() {
  case $1 in
    run) echo "$SATTN run" ;;
    *) if [[ -x $BIN/sattn-$1 ]]; then echo "$BIN/sattn-$1"; else echo "$SATTN $1"; fi ;;
  esac
}
# The error prefix each tool prints: "sattn-emit: error:" or "sattn emit: error:".
prefix() { [[ $1 == run ]] && echo "sattn run" || echo "sattn[- ]$1"; }

# Output flags per tool, all into $O (which must stay empty). select/calibrate/imc write a file;
# emit writes a directory; run writes both; run-rvv and sim write a file.
outflags() {
  case $1 in
    emit) echo "--out-dir $O/dir -o $O/out" ;;
    run) echo "--out-dir $O/dir -o $O/out" ;;
    sim) echo "--model-only -o $O/out" ;;
    *) echo "-o $O/out" ;;
  esac
}

cases=0
# bad TOOLS FILE REGEX [EXTRA ARGS...]: run FILE through each tool in TOOLS (comma-separated),
# expect exit 3 and a stderr line `PREFIX: error: REGEX`, and an empty output directory.
bad() {
  local tools=$1 file=$2 regex=$3
  shift 3
  local t
  for t in ${tools//,/ }; do
    O=$T/o.$cases
    mkdir -p "$O"
    cases=$((cases + 1))
    # shellcheck disable=SC2046
    run timeout 60 $(tool "$t") "$file" "$@" $(outflags "$t")
    local what="$t $(basename "$file") $*"
    expect_rc 3 "$what"
    expect_err "^$(prefix "$t"): error: $regex" "$what"
    [[ -z $(ls -A "$O") ]] && ok || fail "$what: left output behind: $(ls -A "$O")"
    [[ $(wc -l <"$T/err") -le 3 ]] && ok || fail "$what: more than a short diagnostic on stderr"
  done
}

OPS=select,emit,run,run-rvv,sim,calibrate,imc  # every tool that reads ops
# Syntax errors come from the one reader every tool shares: by default they go through three
# tools (BAD_INPUT_ALL=1: all of them) to keep the test short.
SYNTAX=select,emit,sim
[[ ${BAD_INPUT_ALL:-0} == 1 ]] && SYNTAX=$OPS
E=$(printf '%q' "$BAD")  # for regexes: the path as printed
E=${E//./\\.}

# --- Malformed and truncated MLIR, JSON, YAML: file:line:col ---------------------------------
bad $SYNTAX "$BAD/truncated.mlir" "$E/truncated\.mlir:4:1: .*missing '\}'"
bad $SYNTAX "$BAD/unterminated.mlir" "$E/unterminated\.mlir:3:67: unterminated string"
bad $SYNTAX "$BAD/missing_brace.mlir" "$E/missing_brace\.mlir:3:75: "
bad $SYNTAX "$BAD/missing_module_brace.mlir" "$E/missing_module_brace\.mlir:4:1: "
bad $SYNTAX "$BAD/missing_signature.mlir" "$E/missing_signature\.mlir:4:1: "
bad $SYNTAX "$BAD/bad_number.mlir" "$E/bad_number\.mlir:3:46: attribute 'window_size': bad number"
bad $SYNTAX "$BAD/bad_type.mlir" "$E/bad_type\.mlir:5:19: attribute 'window_size': expected an integer"
bad $SYNTAX "$BAD/duplicate.mlir" "$E/duplicate\.mlir:3:55: duplicate attribute"
bad $SYNTAX "$BAD/empty_module.mlir" "$E/empty_module\.mlir:2:1: no sattn\.sparse_attention op"
bad $SYNTAX "$BAD/other_op.mlir" "$E/other_op\.mlir:3:3: "
bad $SYNTAX "$BAD/truncated.json" "$E/truncated\.json:3:[0-9]+: invalid JSON"
bad $SYNTAX "$BAD/malformed.json" "$E/malformed\.json:1:[0-9]+: invalid JSON"
bad $SYNTAX "$BAD/bad_type.json" "$E/bad_type\.json:3:[0-9]+: attribute 'causal': expected a boolean"
bad $SYNTAX "$BAD/bad.yaml" "$E/bad\.yaml:[45]:[0-9]+: invalid YAML"
bad $SYNTAX "$BAD/truncated.yaml" "$E/truncated\.yaml:4:12: attribute 'precision': unterminated string \(no closing \" before the end of the document\)"
bad $SYNTAX "$BAD/bad_type.yaml" "$E/bad_type\.yaml:3:11: attribute 'head_dim': expected an integer"

# --- Negative, zero and absurd parameters; GQA; unknown spec; unknown schema major ----------------
bad $OPS "$BAD/seq_len_zero.mlir" "$E/seq_len_zero\.mlir:3:32: attribute 'seq_len': must be >= 1 \(got 0\)"
bad $OPS "$BAD/seq_len_negative.mlir" "$E/seq_len_negative\.mlir:3:32: attribute 'seq_len': must be >= 1 \(got -16\)"
bad $OPS "$BAD/head_dim_huge.mlir" "$E/head_dim_huge\.mlir:3:69: attribute 'head_dim': must be <= 4096 \(got 100000\)"
bad $OPS "$BAD/window_too_large.mlir" "$E/window_too_large\.mlir:3:[0-9]+: .*attribute 'window_size': 64 exceeds kv_len \(16\)"
bad $OPS "$BAD/window_negative.mlir" "$E/window_negative\.mlir:3:89: attribute 'window_size': must be >= 1"
bad $OPS "$BAD/keep_ratio_zero.mlir" "$E/keep_ratio_zero\.mlir:3:[0-9]+: attribute 'keep_ratio': must be in \(0, 1\]"
bad $OPS "$BAD/keep_ratio_range.mlir" "$E/keep_ratio_range\.mlir:5:5: attribute 'keep_ratio': must be in \(0, 1\] \(got 1\.5"
bad $OPS "$BAD/keep_ratio_range.json" "$E/keep_ratio_range\.json:1:[0-9]+: attribute 'keep_ratio': must be in \(0, 1\]"
bad $OPS "$BAD/nm_m_zero.mlir" "$E/nm_m_zero\.mlir:3:105: attribute 'nm_m': must be >= 1 \(got 0\)"
bad $OPS "$BAD/nm_m_zero.yaml" "$E/nm_m_zero\.yaml:5:1: attribute 'nm_m': must be >= 1 \(got 0\)"
bad $OPS "$BAD/kv_heads_indivisible.mlir" "$E/kv_heads_indivisible\.mlir:3:69: attribute 'kv_heads': heads \(6\) must be divisible by kv_heads \(4\)"
bad $OPS "$BAD/gqa_indivisible.mlir" "$E/gqa_indivisible\.mlir:3:49: attribute 'gqa_group_size'"
bad $OPS "$BAD/unknown_spec.mlir" "$E/unknown_spec\.mlir:3:39: attribute 'spec': unknown spec 'diagonal'"
bad $OPS "$BAD/schema_v2.json" "$E/schema_v2\.json:1:12: unsupported schema major version 2"
bad $OPS "$BAD/plan_v7.json" "$E/plan_v7\.json:1:12: unsupported schema major version 7"

# --- Issue 18: nesting, encodings, types, ranges from the shape, YAML tags and keys -----------
bad $OPS "$BAD/deep.json" "$E/deep\.json:1:105: nested deeper than 64 levels"
bad $OPS "$BAD/deep.yaml" "$E/deep\.yaml:3:72: nested deeper than 64 levels"
bad $SYNTAX "$BAD/deep_indent.yaml" "$E/deep_indent\.yaml:4:301: indented 300 columns"
bad $OPS "$BAD/deep.mlir" "$E/deep\.mlir:2:139: attribute value nested deeper than 64 levels"
bad $SYNTAX "$BAD/deep_modules.mlir" "$E/deep_modules\.mlir:65:8: modules nested deeper than 64 levels"
bad $OPS "$BAD/name_not_utf8.mlir" "$E/name_not_utf8\.mlir:2:39: attribute 'name': not valid UTF-8 \(byte 3"
bad $SYNTAX "$BAD/name_not_utf8.yaml" "$E/name_not_utf8\.yaml:1:7: attribute 'name': not valid UTF-8"
bad $SYNTAX "$BAD/int_type_range.mlir" "$E/int_type_range\.mlir:2:42: attribute 'seq_len': integer 1000 does not fit type 'i8'"
bad $SYNTAX "$BAD/keep_ratio_overflow.mlir" "$E/keep_ratio_overflow\.mlir:2:79: attribute 'keep_ratio': number '1e999' out of range"
bad $OPS "$BAD/dilation_huge.mlir" "$E/dilation_huge\.mlir:2:75: attribute 'dilation': must be <= kv_len \(64\)"
bad $OPS "$BAD/window_blocks_huge.mlir" "$E/window_blocks_huge\.mlir:2:104: attribute 'window_blocks': must be <= kv_len \(64\)"
bad $OPS "$BAD/lsh_buckets_huge.mlir" "$E/lsh_buckets_huge\.mlir:2:52: attribute 'lsh_buckets': must be <= kv_len \(64\)"
bad $OPS "$BAD/nm_m_huge.mlir" "$E/nm_m_huge\.mlir:2:68: attribute 'nm_m': must be <= kv_len \(64\)"
bad $SYNTAX "$BAD/tile_huge.mlir" "$E/tile_huge\.mlir:2:52: attribute 'tile_M': must be <= 65536"
bad $OPS "$BAD/plan_no_schema.json" "$E/plan_no_schema\.json:1:1: an 'op' member but no 'schema'"
bad $SYNTAX "$BAD/yaml_tag.yaml" "$E/yaml_tag\.yaml:2:10: YAML tags are not part of sattn's formats"
bad $SYNTAX "$BAD/duplicate_key.yaml" "$E/duplicate_key\.yaml:3:1: duplicate key 'seq_len'"

# --- Bad .npy data and NaN/Inf given with --data DIR: the file, and the element ---------------
DATA_TOOLS=emit,run,run-rvv,sim,calibrate,imc  # every tool that takes --data
D=$E/data
data() { bad $DATA_TOOLS "$BAD/data/op.mlir" "$D/$1/$2: $3" --data "$BAD/data/$1"; }
data truncated_data q.npy "truncated data: shape \(1, 1, 16, 8\) of <f4 needs 512 bytes, 412 present \(the data starts at byte 128, the file ends at byte 540\)"
data truncated_header k.npy "truncated \.npy header.*the file ends at byte [0-9]+"
data bad_magic v.npy "not a \.npy file"
data malformed_header q.npy "bad \.npy header at byte [0-9]+: "
data wrong_dtype q.npy "unsupported dtype '<c8'"
data int_dtype k.npy "expected a 4-D float32 .*got int32"
data fortran_order v.npy "Fortran-order arrays are not supported"
data huge_shape q.npy "truncated data: shape \(1000000, 1000000, 4096, 64\) of <f4 needs 1048576000000000000 bytes"
data overflow_shape k.npy "shape \(4294967296, 4294967296, 4294967296, 1\) is too large"
data wrong_shape q.npy "shape \[1, 1, 8, 16\] does not match the op"
data nan_q q.npy "element 37 is NaN"
data inf_k k.npy "element 5 is Inf"
data neg_inf_v v.npy "element 127 is Inf"
data overflow_k k.npy "max \|q\| \([0-9.e+]+\) x max \|k\| \(3e\+38\) x head_dim x scale = [0-9.e+]+: scores can overflow fp32"
data overflow_v v.npy "max \|v\| \(1e\+37\) x kv_len \(16\) can overflow the fp32 sum of P V"
# `sattn run --backend all`: invalid input is the same for every backend, so the first backend's
# error is reported once, nothing is written (-o or --out-dir) and the exit is 3.
O=$T/o.all && mkdir -p "$O"
run timeout 60 "$SATTN" run "$BAD/data/op.mlir" --data "$BAD/data/nan_q" --backend all --out-dir "$O/dir"
expect_rc 3 "run --backend all with NaN data"
expect_err "^sattn run --backend cpu: error: $D/nan_q/q\.npy: element 37 is NaN" "run --backend all, cpu"
[[ $(grep -c . <<<"$err") -eq 1 ]] && ok || fail "run --backend all: one error line"
run timeout 60 "$SATTN" run "$BAD/data/op.mlir" --data "$BAD/data/nan_q" --backend all -o "$O/summary.json"
expect_rc 3 "run --backend all -o with NaN data"
[[ -z $(ls -A "$O") ]] && ok || fail "run --backend all: left output behind: $(ls -A "$O")"

# --- Artifacts that disagree with themselves (made from a good emit, then broken) -------------
good=$T/art.good
run $(tool emit) "$BAD/data/op.mlir" --out-dir "$good"
expect_rc 0 "emit the good artifacts"
ART_TOOLS=run,run-rvv,sim,imc  # every tool that reads artifacts
# art NAME REGEX SED-FILE SED-SCRIPT: a copy of the good artifacts with FILE edited by sed.
art() {
  local name=$1 regex=$2 file=$3 script=$4
  cp -r "$good" "$T/$name"
  sed -i -e "$script" "$T/$name/$file"
  local e
  e=$(printf '%q' "$T/$name")
  bad $ART_TOOLS "$T/$name/artifacts.json" "${e//./\\.}/$regex"
}
art desc_nnz "indices\.desc: 'nnz = 3' disagrees with the envelope and arrays \(expected 2\)" indices.desc 's/^nnz = 2$/nnz = 3/'
art desc_blocks "indices\.desc: 'block_cols = 5' disagrees" indices.desc 's/^block_cols = 2$/block_cols = 5/'
art desc_missing "indices\.desc: missing key 'nnz_0'" indices.desc '/^nnz_0 = /d'
art desc_spec "indices\.desc: 'spec_name = dense' disagrees" indices.desc 's/^spec_name = bsr$/spec_name = dense/'
art envelope_v2 "artifacts\.json: unsupported schema major version 2" artifacts.json 's#sattn.artifacts/v1#sattn.artifacts/v2#'
art envelope_nnz "artifacts\.json: \"arrays\"\.block_col_idx\.shape should be \[3\]" artifacts.json 's/"nnz": 2,/"nnz": 3,/'
# A .npy layout array replaced: truncated pointers, float indices, NaN in carried data.
cp -r "$good" "$T/ptr_trunc" && head -c 100 "$good/block_row_ptr.npy" >"$T/ptr_trunc/block_row_ptr.npy"
e=$(printf '%q' "$T/ptr_trunc")
bad $ART_TOOLS "$T/ptr_trunc/artifacts.json" "${e//./\\.}/block_row_ptr\.npy: truncated"
cp -r "$good" "$T/q_nan" && cp "$BAD/data/nan_q/q.npy" "$T/q_nan/q.npy"
e=$(printf '%q' "$T/q_nan")
bad $ART_TOOLS "$T/q_nan/artifacts.json" "${e//./\\.}/q\.npy: element 37 is (not finite|NaN)"

echo "$cases tool runs"
finish
