# sattn-sim: every spec through the tool at i8 and i4 on LANES 8 and 16 (RTL == model bit for
# bit, output within tolerance of the fp32 reference); causal, partial last blocks, empty rows,
# GQA; counter identities checked against independent formulas computed here from the emitted
# layout arrays; the watchdog; and every error path with its exit code.
source "$(dirname "$0")/lib.sh"
SIM="$(dirname "$SATTN")/sattn-sim"
EMIT="$(dirname "$SATTN")/sattn-emit"
SELECT="$(dirname "$SATTN")/sattn-select"
for v in SATTN_FORCE_SPEC SATTN_DISABLE_SW SATTN_DISABLE_BSR SATTN_DISABLE_NM SATTN_DISABLE_TOPK \
  SATTN_DISABLE_LSH SATTN_PREFER_BSR SATTN_PREFER_SW SATTN_HW_L1_BYTES SATTN_LIBEXEC_DIR; do
  unset "$v"
done

# One op per spec, small enough for the RTL, each with a feature the datapath must get right.
# head_dim 32: i4 needs a multiple of 32.
cat >"$T/ops.mlir" <<'M'
module {
  // dense, causal, seq_len 70 = one full block of 64 and a partial block of 6
  "sattn.sparse_attention"() { name = "dense", spec = "dense", seq_len = 70 : i64, heads = 2 : i64, head_dim = 32 : i64, causal = true } : () -> ()
  // a dilated causal window with GQA (2 query heads per KV head)
  "sattn.sparse_attention"() { name = "sw", spec = "sliding_window", seq_len = 96 : i64, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, causal = true, window_size = 8 : i64, dilation = 2 : i64 } : () -> ()
  // block top-k, causal, GQA, partial last block (100 = 3 x 32 + 4)
  "sattn.sparse_attention"() { name = "bsr", spec = "bsr", seq_len = 100 : i64, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, causal = true, block_size = 32 : i64, keep_ratio = 0.5 : f64 } : () -> ()
  // local + global blocks
  "sattn.sparse_attention"() { name = "blg", spec = "block_local_global", seq_len = 96 : i64, heads = 2 : i64, head_dim = 32 : i64, block_size = 16 : i64, window_blocks = 1 : i64, global_tokens = 16 : i64 } : () -> ()
  "sattn.sparse_attention"() { name = "nm", spec = "nm_structured", seq_len = 64 : i64, heads = 2 : i64, head_dim = 32 : i64, nm_n = 2 : i64, nm_m = 8 : i64 } : () -> ()
  // causal with seq_len > kv_len: the first 32 query rows see no key (empty rows give 0)
  "sattn.sparse_attention"() { name = "topk", spec = "topk_per_query", seq_len = 80 : i64, kv_len = 48 : i64, heads = 2 : i64, head_dim = 32 : i64, causal = true, topk_k = 8 : i64 } : () -> ()
  "sattn.sparse_attention"() { name = "lsh", spec = "lsh", seq_len = 64 : i64, heads = 2 : i64, head_dim = 32 : i64, lsh_buckets = 4 : i64 } : () -> ()
  "sattn.sparse_attention"() { name = "landmark", spec = "landmark", seq_len = 64 : i64, heads = 2 : i64, head_dim = 32 : i64, num_landmarks = 8 : i64 } : () -> ()
}
M
run "$EMIT" "$T/ops.mlir" --out-dir "$T/a" -o "$T/a.jsonl"
expect_rc 0 "emit the eight ops"

# check_results FILE PRECISION LANES: every line passed, RTL == model, and the counter identities
# hold: MACs issued = 2 x allowed pairs x head_dim with the allowed pairs counted here from the
# layout arrays (not from the tool), DMA bytes in >= the Q rows and K/V rows the layout touches,
# utilization = MACs / (LANES x cycles), cycles = busy + stalls, the roofline is
# max(MACs / LANES, DRAM bytes / bandwidth + latency), and the energy is the sum of its parts.
check_results() {
  "$PY" - "$1" "$2" "$3" "$T/a" <<'P'
import json, sys, os, numpy as np
path, prec, lanes, adir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
eb = 1.0 if prec == "i8" else 0.5
n = 0
for line in open(path):
    r = json.loads(line)
    name, op, s = r["op"]["name"], r["op"], r["sim"]
    assert r["schema"] == "sattn.result/v1" and r["backend"] == "rocc", name
    assert r["precision"] == prec and s["lanes"] == lanes, (name, r["precision"], s["lanes"])
    assert r["check"]["passed"] is True and s["model_match"] is True and s["engine"] == "rtl", (name, r["check"])
    # i4 (per-tensor on rocc) has no fp32 bound (null): only the quantized reference gates it.
    assert r["check"]["tolerance"] is None or r["check"]["max_rel_error"] <= r["check"]["tolerance"], name
    # The element mask, from the emitted layout arrays and the documented rules.
    d = os.path.join(adir, name)
    B, H, KVH, S, KV, D = (op.get(k, dflt) for k, dflt in
        (("batch", 1), ("heads", 8), ("kv_heads", op.get("heads", 8)), ("seq_len", 1024), ("kv_len", op["seq_len"]), ("head_dim", 64)))
    causal, off = op.get("causal", False), KV - S
    block = os.path.exists(os.path.join(d, "block_row_ptr.npy"))
    ptr = np.load(os.path.join(d, "block_row_ptr.npy" if block else "row_ptr.npy"))
    idx = np.load(os.path.join(d, "block_col_idx.npy" if block else "col_idx.npy"))
    bs = r["layout"]["block_size"]
    pairs = 0; q_rows = 0; kv_rows = 0
    i_ = np.arange(S)[:, None]; j_ = np.arange(KV)[None, :]
    ok = (j_ <= i_ + off) if causal else np.ones((S, KV), bool)
    for b in range(B):
        for h in range(KVH):
            L = 0 if ptr.shape[0] == 1 else b * KVH + h
            m = np.zeros((S, KV), bool)
            for row in range(ptr.shape[1] - 1):
                cols = idx[ptr[L, row]:ptr[L, row + 1]]
                if block:
                    for c in cols:
                        m[row * bs:(row + 1) * bs, c * bs:(c + 1) * bs] = True
                else:
                    m[row, cols] = True
            m &= ok
            g = H // KVH
            pairs += int(m.sum()) * g
            q_rows += int(m.any(axis=1).sum()) * g
            kv_rows += int(m.any(axis=0).sum())
    assert pairs == r["layout"]["allowed_pairs"], (name, pairs, r["layout"]["allowed_pairs"])
    assert s["macs_issued"] == 2 * pairs * D, (name, s["macs_issued"], 2 * pairs * D)
    touched = (q_rows + 2 * kv_rows) * D * eb
    assert s["dma_bytes_in"] >= touched, (name, s["dma_bytes_in"], touched)
    st = s["stalls"]
    assert s["cycles"] == s["busy_cycles"] + st["dma"] + st["index"] + st["softmax"] + st["bank_conflict"] + st["other"], name
    assert abs(s["utilization"] - s["macs_issued"] / (lanes * s["cycles"])) < 1e-12, name
    cfg = s["config"]
    dram = s["dma_bytes_in"] + s["dma_bytes_out"]
    rf = s["roofline"]
    mem = dram / cfg["dram_bytes_per_cycle"] + cfg["dram_latency_cycles"]
    assert abs(rf["compute_cycles"] - s["macs_issued"] / lanes) < 1e-9 and abs(rf["memory_cycles"] - mem) < 1e-9, name
    assert rf["bound_cycles"] == max(rf["compute_cycles"], rf["memory_cycles"]) and rf["ratio"] >= 1, (name, rf)
    e = s["energy_pj"]
    mac_pj = 0.3 if prec == "i8" else 0.15
    assert abs(e["mac"] - s["macs_issued"] * mac_pj) < 1e-6 * max(1, e["mac"]), name
    assert abs(e["dram"] - dram * 162.5) < 1e-6 * e["dram"], name
    assert abs(e["total"] - (e["mac"] + e["sram"] + e["dram"] + e["static"])) < 1e-6 * e["total"], name
    assert r["timing"]["sim_speed_cycles_per_s"] > 0 and r["timing"]["sim_wall_seconds"] > 0, name
    assert r["timing"]["sim_speed_cpu_cycles_per_s"] > 0 and r["timing"]["sim_cpu_seconds"] > 0, name
    assert "sim_speed_cycles_per_s" not in s and "timing_ms" not in r, name
    n += 1
assert n == 8, n
print("checked", n)
P
}

for lanes in 8 16; do
  for prec in i8 i4; do
    run "$SIM" "$T/a.jsonl" --precision "$prec" --lanes "$lanes" -o "$T/r-$prec-$lanes.jsonl"
    expect_rc 0 "every spec at $prec, LANES $lanes"
    run check_results "$T/r-$prec-$lanes.jsonl" "$prec" "$lanes"
    expect_rc 0 "results and counter identities at $prec, LANES $lanes"
    expect_out "checked 8" "eight ops checked at $prec, LANES $lanes"
  done
done

# Cycle counts are deterministic: the same run twice gives the same counters.
run "$SIM" "$T/a/bsr/artifacts.json" --precision i8 --lanes 16
expect_rc 0 "bsr again"
a=$("$PY" -c 'import json,sys; print(json.loads(sys.stdin.readline())["sim"]["cycles"])' <<<"$out")
b=$("$PY" -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["op"]["name"] == "bsr": print(r["sim"]["cycles"])' "$T/r-i8-16.jsonl")
[[ -n $a && $a == "$b" ]] && ok || fail "deterministic cycles ($a vs $b)"

# A bare fp32 op: selected in-process, run at i8 with a note; the text table.
echo '{"seq_len": 64, "heads": 1, "head_dim": 32, "window_size": 4}' >"$T/fp32.json"
run "$SIM" "$T/fp32.json"
expect_rc 0 "fp32 op runs at i8"
expect_out '"precision":"i8"' "run at i8"
expect_err "note: .*fp32.*integer-only, so it runs at i8" "note about the precision"
run "$SIM" "$T/fp32.json" --spec sliding_window --format text -q
expect_rc 0 "text format"
expect_out '^op +spec +prec +lanes +cycles +util' "table header"
expect_out 'sliding_window +i8 +16 +[0-9]+ +[0-9.]+% .* yes .* ok$' "table row"
[[ -z $err ]] && ok || fail "-q prints nothing on stderr"

# --model-only says so; --single-buffer costs cycles; a slower DRAM too.
run "$SIM" "$T/a/bsr/artifacts.json" --model-only --precision i8
expect_rc 0 "model only"
expect_out '"engine":"model"' "engine model"
expect_out '"model_match":null' "no RTL comparison"
m1=$("$PY" -c 'import json,sys; print(json.loads(sys.stdin.readline())["sim"]["cycles"])' <<<"$out")
[[ $m1 == "$b" ]] && ok || fail "the model's cycles are the RTL's ($m1 vs $b)"
run "$SIM" "$T/a/bsr/artifacts.json" --model-only --precision i8 --single-buffer --dram-latency 200 --dram-bandwidth 4
expect_rc 0 "single buffer, slow DRAM"
m2=$("$PY" -c 'import json,sys; print(json.loads(sys.stdin.readline())["sim"]["cycles"])' <<<"$out")
[[ $m2 -gt $m1 ]] && ok || fail "single buffer and slow DRAM take longer ($m2 vs $m1)"

# --energy: a YAML file replaces the per-event energies it names.
printf 'mac_i8_pj: 1.0\nsram_byte_pj: 0\ndram_byte_pj: 0\n' >"$T/e.yaml"
run "$SIM" "$T/a/nm/artifacts.json" --model-only --precision i8 --energy "$T/e.yaml"
expect_rc 0 "energy file"
run "$PY" -c 'import json,sys; s=json.loads(sys.argv[1])["sim"]; assert s["energy_pj"]["total"] == s["macs_issued"] * 1.0, s["energy_pj"]; print("ok")' "$out"
expect_out '^ok$' "energy = MACs x 1 pJ"
printf 'mac_i8_pj: 1.0\nsram_bytes_pj: 2\n' >"$T/bad.yaml"
run "$SIM" "$T/a/nm/artifacts.json" --energy "$T/bad.yaml" -o "$T/bad-energy.jsonl"
expect_rc 3 "unknown energy key"
expect_err "error: $T/bad.yaml:2:1: unknown key 'sram_bytes_pj' in energy" "energy key with file:line:col"
expect_no_file "$T/bad-energy.jsonl" "no output after a bad energy file"
printf 'dram_byte_pj: [1, 2]\n' >"$T/bad2.yaml"
run "$SIM" "$T/a/nm/artifacts.json" --energy "$T/bad2.yaml"
expect_rc 3 "energy value of the wrong type"
expect_err "$T/bad2.yaml:1:15: energy.dram_byte_pj must be a number" "wrong type with file:line:col"

# Outside tolerance: one outlier in Q coarsens its per-tensor i8 scale so much that the check fails
# (exit 5), the result is still written and says why. (i4 per-tensor has no fp32 bound any more:
# sattn-quant(7).) The default scheme (smooth: per-token scales, smoothing) passes on the same data.
mkdir -p "$T/outlier"
"$PY" - "$T/outlier" <<'P'
import sys, numpy as np
r = np.random.default_rng(1)
q = (r.standard_normal((1, 2, 64, 32)) * 2).astype(np.float32)
k = (r.standard_normal((1, 2, 64, 32)) * 2).astype(np.float32)
v = r.standard_normal((1, 2, 64, 32)).astype(np.float32)
q[0, 0, 0, 0] = 1e4
for name, a in (("q", q), ("k", k), ("v", v)):
    np.save(f"{sys.argv[1]}/{name}.npy", a)
P
echo '{"seq_len": 64, "heads": 2, "head_dim": 32, "topk_k": 16, "precision": "i8"}' >"$T/i4.json"
run "$SIM" "$T/i4.json" --data "$T/outlier"
expect_rc 0 "i8 default scheme within tolerance where per-tensor is not"
expect_out '"quant_scheme":"smooth".*"model_match":true|"model_match":true.*"quant_scheme":"smooth"' "the default is smooth, RTL == model"
echo '{"seq_len": 64, "heads": 2, "head_dim": 32, "topk_k": 16, "precision": "i8", "quant_scheme": "per-tensor"}' >"$T/i4.json"
run "$SIM" "$T/i4.json" --data "$T/outlier"
expect_rc 5 "i8 per-tensor outside tolerance"
expect_out '"passed":false' "failed result still written"
expect_err "output differs from the fp32 reference: max relative error .* > tolerance 5\.0e-02" "tolerance message"

# RTL != model: a harness that flips one output element (the real harness, then a patch of its
# output file) must be caught, naming the element.
mkdir -p "$T/flip"
cat >"$T/flip/sattn-accel-sim-lanes16" <<F
#!/bin/bash
"$(dirname "$SATTN")/../libexec/sattn/sattn-accel-sim-lanes16" "\$@" || exit \$?
while [[ \$# -gt 0 ]]; do [[ \$1 == --out ]] && out=\$2; shift; done
"$PY" -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[2 * 37] ^= 1; open(sys.argv[1], "wb").write(b)' "\$out"
F
chmod +x "$T/flip/sattn-accel-sim-lanes16"
run env SATTN_LIBEXEC_DIR="$T/flip" "$SIM" "$T/a/sw/artifacts.json" --precision i8
expect_rc 5 "RTL/model mismatch"
expect_err "RTL output differs from the bit-exact model at element \[0, 0, 1, 5\] \(index 37\)" "first differing element"
expect_out '"model_match":false' "mismatch recorded"

# The watchdog: a cycle budget the run cannot meet stops it with a clear message, not a hang.
run timeout 60 "$SIM" "$T/a/dense/artifacts.json" --precision i8 --max-cycles 500 -o "$T/wd.jsonl"
expect_rc 1 "the RTL's watchdog stops the run (not a hang: timeout would be 124)"
expect_err "accelerator watchdog: the RTL did not finish within max_cycles = 500.*unit states: " "the RTL watchdog names the unit states"
run "$SIM" "$T/a/dense/artifacts.json" --precision i8 --max-cycles 500 --model-only
expect_rc 1 "the model's watchdog"
expect_err "watchdog fired after 500 cycles" "model watchdog message"
expect_no_file "$T/wd.jsonl" "no output after the watchdog"

# Missing harness: exit 4 with the install command; nothing written.
mkdir -p "$T/empty"
run env SATTN_LIBEXEC_DIR="$T/empty" "$SIM" "$T/a/sw/artifacts.json" -o "$T/nh.jsonl"
expect_rc 4 "missing harness"
expect_err "apt-get install.*verilator" "install command"
expect_no_file "$T/nh.jsonl" "no output without a harness"

# A malformed or inconsistent .desc: exit 3 naming the key.
cp -r "$T/a/sw" "$T/baddesc"
sed -i 's/^head_dim = 32$/head_dim = 48/' "$T/baddesc/indices.desc"
run "$SIM" "$T/baddesc/artifacts.json" -o "$T/bd.jsonl"
expect_rc 3 "inconsistent .desc"
expect_err "indices.desc.*head_dim" "names the key"
expect_no_file "$T/bd.jsonl" "no output after a bad .desc"
cp -r "$T/a/sw" "$T/baddesc2"
sed -i 's/^window_size = .*/window_size = eight/' "$T/baddesc2/indices.desc"
run "$SIM" "$T/baddesc2/artifacts.json"
expect_rc 3 "malformed .desc value"
expect_err "indices.desc.*window_size" "names the malformed key"

# Usage errors.
run "$SIM" "$T/a/sw/artifacts.json" --lanes 12
expect_rc 2 "--lanes 12"
expect_err "--lanes must be 8, 16 or 32" "lanes message"
run "$SIM" "$T/a/sw/artifacts.json" --precision bf16
expect_rc 2 "--precision bf16"
run "$SIM" "$T/a/sw/artifacts.json" --dram-bandwidth 32
expect_rc 2 "--dram-bandwidth 32"

# --probe: the capability JSON, valid against its schema, for each LANES.
for lanes in 8 16; do
  run "$SIM" --probe --lanes "$lanes"
  expect_rc 0 "probe LANES $lanes"
  run "$PY" - "$SRC/schemas/probe.schema.json" "$out" "$lanes" <<'P'
import json, sys
from jsonschema import Draft202012Validator
doc = json.loads(sys.argv[2])
Draft202012Validator(json.load(open(sys.argv[1]))).validate(doc)
# hw/README.md "PROBE": every spec (quest through bsr's bit), i8 and i4, 64 x 64 tiles, head_dim <= 256, 100352 bytes.
assert doc["lanes"] == int(sys.argv[3]) and doc["spec_mask"] == 0xff and len(doc["specs"]) == 9 and "quest" in doc["specs"], doc
assert doc["precisions"] == ["i8", "i4"] and doc["scratchpad_bytes"] == 2 * 3 * 64 * 256 + 2 * 64 * 8 * 2, doc
assert doc["max_head_dim"] == 256 and doc["version"] == 2, doc
print("valid")
P
  expect_out '^valid$' "probe document LANES $lanes"
done
run "$SIM" --probe --format text
expect_out '^scratchpad_bytes +100352$' "probe as text"
expect_out '^max_head_dim +256$' "probe as text: DMAX"
run "$SIM" --probe "$T/fp32.json"
expect_rc 2 "--probe takes no ops"

finish
