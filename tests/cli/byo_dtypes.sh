# Bring your own data in other dtypes (issue 21): float64 .npy is rounded to float32, float16 is
# widened exactly, uint16 is read as bfloat16 bit patterns; each file gets one note on stderr
# naming it (once per run, however many ops read it). Each result is compared bit for bit with a
# run on float32 files that numpy converted itself (astype), so the expected data never comes from
# sattn. A float64 value beyond the float32 range and an unsupported dtype are input errors (exit 3).
source "$(dirname "$0")/lib.sh"
# Two ops over the same data (JSON Lines): the note must still appear once per file.
{
  echo '{"schema": "sattn.op/v1", "name": "a", "batch": 1, "heads": 2, "kv_heads": 1, "seq_len": 24, "kv_len": 24, "head_dim": 8, "causal": true, "spec": "dense"}'
  echo '{"schema": "sattn.op/v1", "name": "b", "batch": 1, "heads": 2, "kv_heads": 1, "seq_len": 24, "kv_len": 24, "head_dim": 8, "spec": "sliding_window", "window_size": 4}'
} > "$T/ops.jsonl"
run "$PY" - "$T" <<'PY'
import os, sys, numpy as np
t = sys.argv[1]
rng = np.random.default_rng(11)
shapes = {"q": (1, 2, 24, 8), "k": (1, 1, 24, 8), "v": (1, 1, 24, 8)}
x = {n: rng.standard_normal(s) / 3 + 1e-9 for n, s in shapes.items()}   # float64, not float32-exact
def save(d, conv):
    os.makedirs(f"{t}/{d}")
    for n, a in x.items():
        np.save(f"{t}/{d}/{n}.npy", conv(a))
def bf16_bits(a):  # round to nearest even, keep the upper 16 bits (torch's .bfloat16())
    u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
def bf16_value(a):
    return (bf16_bits(a).astype(np.uint32) << 16).view(np.float32)
save("f64", lambda a: a)
save("f64_as_f32", lambda a: a.astype(np.float32))
save("f16", lambda a: a.astype(np.float16))
save("f16_as_f32", lambda a: a.astype(np.float16).astype(np.float32))
save("bf16", bf16_bits)
save("bf16_as_f32", bf16_value)
save("f64_big", lambda a: a)
big = x["k"].copy(); big[0, 0, 3, 5] = 1e40
np.save(f"{t}/f64_big/k.npy", big)
save("complex", lambda a: a.astype(np.float32))
np.save(f"{t}/complex/v.npy", x["v"].astype(np.complex64))
PY
expect_rc 0 "numpy writes the data"

for d in f64 f16 bf16; do
  run "$SATTN" run "$T/ops.jsonl" --data "$T/$d" --out-dir "$T/o_$d" --format json
  expect_rc 0 "$d data"
  expect_out '"passed":true' "$d: checked against the reference"
  run "$SATTN" run "$T/ops.jsonl" --data "$T/${d}_as_f32" --out-dir "$T/o_${d}_as_f32" -q
  expect_rc 0 "$d data converted by numpy"
done
run "$SATTN" run "$T/ops.jsonl" --data "$T/f64" --out-dir "$T/o_f64b" -q
for n in q k v; do
  [[ $(grep -c "^sattn run: note: $T/f64/$n\.npy: float64, rounded to float32$" <<<"$err") -eq 1 ]] && ok || fail "one float64 note for $n.npy"
done
[[ $(grep -c . <<<"$err") -eq 3 ]] && ok || fail "float64: three notes, nothing else"
run "$SATTN" run "$T/ops.jsonl" --data "$T/f16" --out-dir "$T/o_f16b" -q
expect_err "^sattn run: note: $T/f16/q\.npy: float16, widened to float32 \(exact\)$" "float16 note"
[[ $(grep -c . <<<"$err") -eq 3 ]] && ok || fail "float16: three notes"
run "$SATTN" run "$T/ops.jsonl" --data "$T/bf16" --out-dir "$T/o_bf16b" -q
expect_err "^sattn run: note: $T/bf16/v\.npy: uint16, read as bfloat16 bit patterns" "bfloat16 note"
run "$SATTN" run "$T/ops.jsonl" --data "$T/f64_as_f32" --out-dir "$T/o_f32b" -q
[[ -z $err ]] && ok || fail "float32 data: no note"

# Same output, bit for bit, as float32 files numpy converted (round to nearest; exact widening).
run "$PY" - "$T" <<'PY'
import sys, glob, os, numpy as np
t = sys.argv[1]
for d in ("f64", "f16", "bf16"):
    files = sorted(glob.glob(f"{t}/o_{d}/**/o.npy", recursive=True))
    assert len(files) == 2, (d, files)
    for f in files:
        g = f.replace(f"/o_{d}/", f"/o_{d}_as_f32/")
        a, b = np.load(f), np.load(g)
        assert a.dtype == np.float32 and a.shape == (1, 2, 24, 8), (f, a.dtype, a.shape)
        assert np.array_equal(a, b), (f, np.abs(a - b).max())
# The three inputs differ (so the comparison above could fail): f16 and bf16 round differently.
o = {d: np.load(sorted(glob.glob(f"{t}/o_{d}/**/o.npy", recursive=True))[0]) for d in ("f64", "f16", "bf16")}
assert not np.array_equal(o["f64"], o["f16"]) and not np.array_equal(o["f16"], o["bf16"])
PY
expect_rc 0 "float64/float16/bfloat16 outputs equal numpy-converted float32 runs"

# The other tools that read --data print the same note.
run "$SATTN" emit "$T/ops.jsonl" --data "$T/f64" --out-dir "$T/emit"
expect_rc 0 "emit with float64 data"
expect_err "^sattn emit: note: $T/f64/q\.npy: float64, rounded to float32$" "emit notes the conversion"
run "$SATTN" calibrate "$T/ops.jsonl" --precision i8 --data "$T/f16"
expect_rc 0 "calibrate with float16 data"
expect_err "^sattn calibrate: note: $T/f16/k\.npy: float16" "calibrate notes the conversion"

# Errors: a float64 value float32 cannot hold, an unsupported dtype.
run "$SATTN" run "$T/ops.jsonl" --data "$T/f64_big" --out-dir "$T/x1" -q
expect_rc 3 "float64 beyond the float32 range"
expect_err "^sattn run: error: $T/f64_big/k\.npy: element 29 \(1e\+40\) is outside the float32 range" "names the file and element"
expect_no_file "$T/x1" "no output on error"
run "$SATTN" run "$T/ops.jsonl" --data "$T/complex" --out-dir "$T/x2" -q
expect_rc 3 "complex64"
expect_err "^sattn run: error: $T/complex/v\.npy: unsupported dtype '<c8' \(supported: .*<f8" "unsupported dtype lists float64 among the supported"
finish
