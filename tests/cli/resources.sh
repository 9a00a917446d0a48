# Resources (issue 9): a run whose memory estimate exceeds --max-memory (default: SATTN_MAX_MEMORY,
# else 80% of physical memory) fails fast — exit 1, the estimate and its parts, the op's
# file:line:col — before any data, layout or output exists; never an OOM kill half way.
source "$(dirname "$0")/lib.sh"
BIN="$(dirname "$SATTN")"
cat >"$T/huge.mlir" <<'OP'
module {
  "sattn.sparse_attention"() {
    name = "huge", heads = 32 : i64, seq_len = 1000000 : i64, head_dim = 128 : i64, spec = "dense"
  } : () -> ()
}
OP
cat >"$T/small.mlir" <<'OP'
"sattn.sparse_attention"() { name = "small", heads = 2 : i64, seq_len = 128 : i64, head_dim = 16 : i64, window_size = 8 : i64, spec = "sliding_window" } : () -> ()
OP
mkdir "$T/dest"
empty_out() { [[ -z $(ls -A "$T/dest") ]] && ok || { fail "$1: left $(ls -A "$T/dest")"; rm -rf "$T/dest"/* "$T/dest"/.[!.]*; }; }
msg="/huge\.mlir:2:3: op 'huge' \(dense, seq_len 1000000\): estimated peak memory 77.2 GiB \(q, k, v 45.8 GiB, o and the reference's o 30.5 GiB, layout 931.4 MiB; 3.2e\+13 query-key pairs\) exceeds"

# Dense reference attention at seq_len 1,000,000 (32 heads of 128) under the default limit (80%
# of physical memory: this needs 77 GiB), through every tool that would run it. Each must answer
# within seconds (timeout 60 = a hang). On a machine with over 100 GiB the default would let it
# through, so there the limit is set to what a 24 GiB machine's default is.
memtotal_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
limit_env=(-u SATTN_MAX_MEMORY); default_re="\(the default, 80% of physical memory"
if ((memtotal_kb > 100 * 1024 * 1024)); then limit_env=(SATTN_MAX_MEMORY=19G); default_re="\(SATTN_MAX_MEMORY=19G"; fi
for tool in "sattn run" "sattn-run-rvv" "sattn-sim"; do
  read -r -a cmd <<<"$tool"
  cmd[0]="$BIN/${cmd[0]}"
  run timeout 60 env "${limit_env[@]}" "${cmd[@]}" "$T/huge.mlir" -o "$T/dest/result.json"
  expect_rc 1 "$tool: dense 1M refused"
  name=${tool#sattn-}; name=sattn-${name#sattn-}; [[ $tool == "sattn run" ]] && name="sattn run"
  expect_err "^${name}: error: .*$msg [0-9.]+ [GT]iB $default_re" "$tool: the estimate and the default limit"
  empty_out "$tool"
done
run timeout 60 env "${limit_env[@]}" "$BIN/sattn" run "$T/huge.mlir" --out-dir "$T/dest/o"
expect_rc 1 "run --out-dir: refused"; empty_out "run --out-dir"
run timeout 60 env "${limit_env[@]}" "$BIN/sattn" run "$T/huge.mlir" --backend all -o "$T/dest/r"
expect_rc 1 "run --backend all: refused"; empty_out "run --backend all"

# emit needs no data for dense (1 GiB of block indices) and imc adds the dense layout it compares
# with: both fit in 80% of 24 GiB, so they are refused under an explicit limit.
run timeout 60 "$BIN/sattn-emit" "$T/huge.mlir" --max-memory 512M --out-dir "$T/dest/a"
expect_rc 1 "emit dense 1M refused"
expect_err "^sattn-emit: error: .*/huge\.mlir:2:3: op 'huge' \(dense, seq_len 1000000\): estimated peak memory 931.4 MiB \(layout 931.4 MiB; 3.2e\+13 query-key pairs\) exceeds 512.0 MiB \(--max-memory 512M\)" "emit: the estimate"
empty_out "emit"
run timeout 60 "$BIN/sattn-imc" "$T/huge.mlir" --max-memory 1G -o "$T/dest/i"
expect_rc 1 "imc dense 1M refused"
expect_err "^sattn-imc: error: .*/huge\.mlir:2:3: .*estimated peak memory 1.8 GiB \(layout 931.4 MiB, dense layout 931.4 MiB;" "imc: the estimate"
empty_out "imc"

# --max-memory and SATTN_MAX_MEMORY: the flag wins; 0 = no limit; a small op under a tiny limit
# (emit streams its sliding_window rows: 129 row pointers, 1032 bytes, are all it holds).
run env SATTN_MAX_MEMORY=1K "$BIN/sattn" run "$T/small.mlir" -o "$T/dest/r.json"
expect_rc 1 "SATTN_MAX_MEMORY=1K refuses a small op"
expect_err "exceeds 1.0 KiB \(SATTN_MAX_MEMORY=1K\)" "the env limit is named"; empty_out "env limit"
run env SATTN_MAX_MEMORY=1K "$BIN/sattn" run "$T/small.mlir" --max-memory 64M -o "$T/dest/r.json"
expect_rc 0 "--max-memory 64M outranks SATTN_MAX_MEMORY=1K"
rm -f "$T/dest/r.json"
run "$BIN/sattn" run "$T/small.mlir" --max-memory 0
expect_rc 0 "--max-memory 0: no limit"
run "$BIN/sattn-emit" "$T/small.mlir" --max-memory 10% --out-dir "$T/dest/e"
expect_rc 0 "--max-memory 10%"; rm -rf "$T/dest/e"
for tool in sattn-run-rvv sattn-sim sattn-imc sattn-emit; do
  if [[ $tool == sattn-emit ]]; then dest=(--out-dir "$T/dest/x"); else dest=(-o "$T/dest/y"); fi
  run "$BIN/$tool" "$T/small.mlir" --max-memory 1000 "${dest[@]}"
  expect_rc 1 "$tool --max-memory 1000 refuses"
  expect_err "^$tool: error: .*small.mlir:1:1: op 'small' \(sliding_window, seq_len 128\): estimated peak memory .* exceeds 1000 B \(--max-memory 1000\)" "$tool: message"
  empty_out "$tool --max-memory"
done

# A malformed size is a usage error (exit 2), from the flag and from the variable.
run "$BIN/sattn" run "$T/small.mlir" --max-memory lots
expect_rc 2 "--max-memory lots"; expect_err "--max-memory 'lots': expected bytes" "flag message"
run env SATTN_MAX_MEMORY=12X "$BIN/sattn" run "$T/small.mlir"
expect_rc 2 "SATTN_MAX_MEMORY=12X"; expect_err "SATTN_MAX_MEMORY '12X'" "env message"
finish
