# sattn model: presets, config.json files, policies, prefill and decode, the report's figures
# against sums computed here, the schema, the plot, and every error path.
source "$(dirname "$0")/lib.sh"
M=("$SATTN" model)
SCHEMA="$SRC/schemas/model.schema.json"
cd "$T"  # ./models must not be the source tree's: presets come from the build's share/

validate() {  # FILE: validates against the schema
  $PY - "$SCHEMA" "$1" <<'P'
import json, sys, jsonschema
jsonschema.Draft202012Validator(json.load(open(sys.argv[1]))).validate(json.load(open(sys.argv[2])))
P
}

run "${M[@]}" --list
expect_rc 0 "--list"
for p in gpt2 llama-3.1-8b mistral-7b-v0.1 gemma-2-9b gemma-3-4b qwen2.5-7b; do
  expect_out "^$p	" "--list names $p"
done
expect_out 'huggingface.co/google/gemma-3-4b-pt' "--list cites the source"

# Every preset, both phases: the report validates against the schema.
for p in gpt2 llama-3.1-8b mistral-7b-v0.1 gemma-2-9b gemma-3-4b qwen2.5-7b; do
  run "${M[@]}" "$p" --seq 1024 -o "$T/$p.json"
  expect_rc 0 "$p prefill"
  validate "$T/$p.json" && ok || fail "$p prefill validates against the schema"
  run "${M[@]}" "$p" --phase decode --context 1024 --tokens 16 --chunk 4 -o "$T/$p.dec.json"
  expect_rc 0 "$p decode"
  validate "$T/$p.dec.json" && ok || fail "$p decode validates against the schema"
done

# Pairs and FLOPs against sums computed here: causal prefill, HF windows (the query included).
run "${M[@]}" mistral-7b-v0.1 --seq 8192 -o "$T/mistral.json"
run "${M[@]}" gemma-3-4b --seq 32768 -o "$T/g3.json"
run "${M[@]}" gemma-3-4b --seq 32768 --policy "$SRC/models/policies/global-bsr.yaml" -o "$T/g3bsr.json"
run "${M[@]}" llama-3.1-8b --phase decode --context 8192 --tokens 100 --chunk 8 -o "$T/llama.dec.json"
run "${M[@]}" gemma-2-9b --seq 8192 --policy "$SRC/models/policies/first2-dense.yaml" -o "$T/g2.json"
run "$PY" - "$T" <<'P'
import json, math, sys
T = sys.argv[1]
def load(n): return json.load(open(f"{T}/{n}.json"))
def causal(s): return s * (s + 1) / 2
def window(s, w): return sum(min(i + 1, w) for i in range(s))

m = load("mistral")
assert m["model"]["layer_classes"] == ["local"] * 32
S, H, L = 8192, 32, 32
assert m["totals"]["dense"]["pairs"] == L * H * causal(S)
assert m["totals"]["sparse"]["pairs"] == L * H * window(S, 4096), m["totals"]["sparse"]["pairs"]
assert m["totals"]["sparse"]["flops"] == 4 * 128 * m["totals"]["sparse"]["pairs"]
assert all(l["spec"] == "sliding_window" and l["params"]["window_size"] == 4095 for l in m["layers"])

g = load("g3")
cls = g["model"]["layer_classes"]
assert len(cls) == 34 and [i for i, c in enumerate(cls) if c == "global"] == [5, 11, 17, 23, 29], cls
assert g["model"]["scale"] == 1 / 16 and g["model"]["head_dim"] == 256
S, H = 32768, 8
expect = 29 * H * window(S, 1024) + 5 * H * causal(S)
assert g["totals"]["sparse"]["pairs"] == expect
assert g["totals"]["dense"]["pairs"] == 34 * H * causal(S)
b = load("g3bsr")
for l in b["layers"]:
    assert l["spec"] == ("bsr" if l["class"] == "global" else "sliding_window"), l
    if l["spec"] == "bsr": assert l["params"]["keep_ratio"] == 0.1 and l["params"]["block_size"] == 64
# Time, FLOPs and IMC energy fall with the pairs; bsr on the global layers saves more again.
for key in ("rvv", "rocc", "cpu", "imc_energy", "imc_latency", "flops"):
    assert g["totals"]["saving"][key] > 1, key
    assert b["totals"]["saving"][key] > g["totals"]["saving"][key], key
# DRAM bytes of a layer (i8, head_dim 256): what the accelerator's driver moves (hw/README.md),
# recomputed here from its tiling: every query head and query tile of 64 rows loads Q once
# (256 B a row), writes O once (int16: 512 B a row), and loads the K and V rows of the keys it
# runs. A local layer's tile [r0, r0 + 64) gathers the union of its rows' windows,
# [max(0, r0 - 1023), r0 + 64), plus the gather's index records: 8 B per key and 8 B per tile row
# for each chunk of 64 keys, each list padded to whole 16-byte beats. A dense layer's tile is one block row of 64-key blocks: block row br
# loads br + 1 blocks.
l0 = g["layers"][0]
qo = H * S * 256 * 3
local = 0
for r0 in range(0, S, 64):
    n = r0 + 64 - max(0, r0 - 1023)
    chunks = -(-n // 64)
    last = n - 64 * (chunks - 1)
    local += n * 2 * 256 + 8 * (64 * (chunks - 1) + last + last % 2) + 8 * chunks * 64
assert l0["sparse"]["rocc"]["dram_bytes"] == qo + H * local, (l0["sparse"]["rocc"]["dram_bytes"], qo + H * local)
blocks = sum(range(1, S // 64 + 1))
assert l0["dense"]["rocc"]["dram_bytes"] == qo + H * blocks * 64 * 2 * 256
# The window moves less than dense: its tiles reuse each key across 64 queries.
assert l0["sparse"]["rocc"]["dram_bytes"] < l0["dense"]["rocc"]["dram_bytes"] / 10
# The accelerator is never faster than its DRAM roofline.
for l in g["layers"]:
    assert l["sparse"]["rocc"]["cycles"] >= l["sparse"]["rocc"]["dram_bytes"] / 16
# Time to first token is the sum of the layers' cycles at the clock.
assert math.isclose(g["totals"]["sparse"]["time"]["rocc"]["ttft_s"], sum(l["sparse"]["rocc"]["cycles"] for l in g["layers"]) / 1e9)

d = load("llama.dec")
assert d["phase"] == {"kind": "decode", "context": 8192, "tokens": 100, "chunk": 8, "steps": 13}
C, q, steps, H = 8192, 8, 13, 32
rows = sum(C - q + i + 1 for i in range(q))  # causal rows of a chunk at the end of the context
assert d["totals"]["dense"]["pairs"] == 32 * steps * H * rows
assert d["totals"]["sparse"]["pairs"] == d["totals"]["dense"]["pairs"]  # llama: every layer global, native = dense
t = d["totals"]["sparse"]["time"]["rvv"]
assert math.isclose(t["tokens_per_s"], 100 / t["seconds"])

g2 = load("g2")
assert [l["spec"] for l in g2["layers"][:3]] == ["dense", "dense", "sliding_window"]
assert g2["layers"][0]["rule"] == "layers[0]" and g2["layers"][3]["spec"] == "bsr"
assert g2["model"]["softcap"] == 50 and g2["model"]["layer_classes"][:2] == ["local", "global"]
print("ok")
P
expect_out '^ok$' "figures match the sums computed here"

# Text report and the plot (gnuplot renders it).
run "${M[@]}" gemma-3-4b --seq 32768 --format text --plot "$T/g3.gp"
expect_rc 0 "text report"
expect_out '^layer +class +spec' "per-layer table"
expect_out 'rocc time to first token' "totals: time to first token"
expect_out 'dense/sparse' "totals: sparse against dense"
expect_file "$T/g3.gp" "plot script"
run gnuplot -e "outfile='$T/g3.svg'" "$T/g3.gp"
expect_rc 0 "gnuplot renders the script"
grep -q '<svg' "$T/g3.svg" && ok || fail "the plot is an SVG"
grep -q "set style histogram columnstacked" "$T/g3.gp" && ok || fail "the plot stacks the per-layer costs"
grep -q "stacked (a segment per layer" "$T/g3.svg" && ok || fail "the SVG has the stacked panel"
run "${M[@]}" mistral-7b-v0.1 --phase decode --context 4096 --tokens 64 --format text
expect_out 'rvv tokens/s' "decode totals: tokens/s"

# A config.json in a file (Gemma 2 with layer_types).
cat >"$T/cfg.json" <<'J'
{"model_type": "gemma2", "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2,
 "head_dim": 64, "sliding_window": 128, "max_position_embeddings": 4096,
 "layer_types": ["full_attention", "sliding_attention", "full_attention", "sliding_attention"]}
J
run "${M[@]}" "$T/cfg.json" --seq 512
expect_rc 0 "config.json path"
run bash -c "\"$SATTN\" model - --seq 512 <\"$T/cfg.json\""
expect_rc 0 "config.json on stdin"
expect_out '"layer_classes":\["global","local","global","local"\]' "stdin config read"
expect_out '"layer_classes":\["global","local","global","local"\]' "layer_types win over the family rule"

# The shipped policies validate against their schema, and a bad one does not.
run "$PY" - "$SRC" <<'P'
import glob, json, sys, yaml, jsonschema
src = sys.argv[1]
v = jsonschema.Draft202012Validator(json.load(open(f"{src}/schemas/model-policy.schema.json")))
files = glob.glob(f"{src}/models/policies/*.yaml")
assert len(files) >= 2
for f in files: v.validate(yaml.safe_load(open(f)))
assert not v.is_valid({"global": {"spec": "lsh"}})
assert not v.is_valid({"layers": [{"spec": "dense"}]})
print("ok")
P
expect_out '^ok$' "policies validate against schemas/model-policy.schema.json"

# Errors: exit 3 naming the key, at file:line:col where the text shows it.
bad() {  # NAME JSON EXPECTED-STDERR-REGEX
  printf '%s\n' "$2" >"$T/$1.json"
  run "${M[@]}" "$T/$1.json"
  expect_rc 3 "$1: exit 3"
  expect_err "$3" "$1: message"
  expect_no_out "$1"
}
bad missing '{"model_type": "llama", "num_attention_heads": 8, "hidden_size": 512, "max_position_embeddings": 4096}' \
  'sattn model: error: .*missing.json: missing field num_hidden_layers'
bad gqa '{"model_type": "llama", "num_hidden_layers": 2,
  "num_attention_heads": 8, "num_key_value_heads": 3, "hidden_size": 512, "max_position_embeddings": 4096}' \
  'gqa.json:2:29: num_key_value_heads \(3\) must divide num_attention_heads \(8\)'
bad type '{
  "model_type": "bert", "num_hidden_layers": 2}' 'type.json:2:3: unknown model_type .bert.'
bad hidden '{"model_type": "llama", "num_hidden_layers": 2, "num_attention_heads": 8, "max_position_embeddings": 4096}' \
  'missing field head_dim or hidden_size'
bad syntax '{"model_type": "llama",' 'syntax.json:[0-9]+:[0-9]+: JSON syntax error'
bad nested '{"model_type": "gemma3", "text_config": {"num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 3,
  "head_dim": 64, "max_position_embeddings": 1024}}' 'nested.json:1:[0-9]+: text_config.num_key_value_heads \(3\) must divide'
bad types '{"model_type": "mistral", "num_hidden_layers": 3, "num_attention_heads": 4, "head_dim": 8,
  "max_position_embeddings": 64, "sliding_window": 16, "layer_types": ["full_attention"]}' \
  'types.json:2:56: layer_types has 1 entries, but num_hidden_layers is 3'

policy() {  # NAME YAML EXPECTED-STDERR-REGEX
  printf '%s\n' "$2" >"$T/$1.yaml"
  run "${M[@]}" gemma-2-9b --seq 1024 --policy "$T/$1.yaml"
  expect_rc 3 "policy $1: exit 3"
  expect_err "$3" "policy $1: message"
  expect_no_out "policy $1"
}
policy unknown-spec 'global: {spec: bsr}
local: {spec: slidng_window}' 'unknown-spec.yaml:2:15: local.spec: unknown spec .slidng_window.'
policy no-cost 'global: {spec: lsh}' 'no-cost.yaml:1:16: global.spec: spec .lsh. has no model-level cost model'
policy typo 'global: {spec: bsr, keep: 0.1}' "typo.yaml:1:21: unknown key 'keep' in global"
policy range 'global: {spec: bsr, keep_ratio: 2}' 'range.yaml:1:33: global.keep_ratio'
policy wrong-attr 'global: {spec: dense, keep_ratio: 0.5}' 'belong to bsr, not dense'
policy layer 'layers:
  - {index: 50, spec: dense}' 'layer.yaml:2:5: layers\[0\]: layer 50 does not exist \(gemma-2-9b has 42 layers\)'
policy selectors 'layers:
  - {spec: dense}' 'layers\[0\]: needs exactly one of first, last, range, index'

# --validate: sampled layers (first, middle, last), reduced, on the rvv core and the accelerator.
run "${M[@]}" gemma-3-4b --seq 4096 --policy global-bsr --validate 3 --validate-len 128 -o "$T/val.json"
expect_rc 0 "--validate"
validate "$T/val.json" && ok || fail "--validate report validates against the schema"
run "$PY" - "$T/val.json" <<'P'
import json, sys
j = json.load(open(sys.argv[1]))
v = j["validation"]
assert [r["layer"] for r in v] == [0, 0, 17, 17, 33, 33], [r["layer"] for r in v]
assert [r["spec"] for r in v][2] == "bsr" and v[0]["spec"] == "sliding_window"
assert len({r["backend"] for r in v}) == 2
for r in v:
    assert r["check_passed"] is True
    assert r["op"]["kv_len"] == 128 and r["op"]["kv_heads"] == 1 and r["op"]["heads"] == 2 and r["op"]["head_dim"] == 64
    assert r["measured_cycles"] > 0 and r["model_cycles"] > 0
    assert abs(r["model_over_measured"] - r["model_cycles"] / r["measured_cycles"]) < 1e-9
print("ok")
P
expect_out '^ok$' "--validate: one row per sampled layer and backend, every reduced op checked"
# Issue 22's target on a small sampled layer: model/measured within 15% on both backends. At 256
# keys the bsr block stays 64, twice the rvv kernel's 32-key chunk, so the causal diagonal block's
# chunks cut per 4-row tile count (the model charged them whole: rvv 1.224 before the fix).
run "${M[@]}" gpt2 --seq 4096 --allow-long --policy global-bsr --validate 1 --validate-len 256 -o "$T/val256.json"
expect_rc 0 "--validate at 256 keys"
run "$PY" - "$T/val256.json" <<'P'
import json, sys
v = json.load(open(sys.argv[1]))["validation"]
assert sorted(r["backend"] for r in v) == ["rocc", "rvv"], v
for r in v:
    assert r["spec"] == "bsr" and r["op"]["kv_len"] == 256 and r["check_passed"] is True, r
    assert abs(r["model_over_measured"] - 1) <= 0.15, f'{r["backend"]} bsr: model/measured {r["model_over_measured"]:.3f}'
print("ok")
P
expect_out '^ok$' "--validate: bsr model/measured within 15% on rvv and rocc (256 keys, block 64)"
# Decode with one query per step (issue 22: "queries per step = 1"): the accelerator's per-tile
# DMA latency and fill/drain (before: rocc sliding_window 0.46, quest 0.61) and the rvv block
# kernel's one-row tiles (before: quest 0.44) are charged; within 15% on both backends.
run "${M[@]}" gemma-3-4b --phase decode --context 4096 --tokens 4 --policy global-quest --validate 3 -o "$T/val_q1.json"
expect_rc 0 "--validate of a one-query decode"
run "$PY" - "$T/val_q1.json" <<'P'
import json, sys
v = json.load(open(sys.argv[1]))["validation"]
assert sorted({(r["spec"], r["backend"]) for r in v}) == [("quest", "rocc"), ("quest", "rvv"),
    ("sliding_window", "rocc"), ("sliding_window", "rvv")], v
for r in v:
    assert r["op"]["seq_len"] == 1 and r["check_passed"] is True, r
    assert abs(r["model_over_measured"] - 1) <= 0.15, f'{r["backend"]} {r["spec"]}: model/measured {r["model_over_measured"]:.3f}'
print("ok")
P
expect_out '^ok$' "--validate: one-query decode within 15% on rvv and rocc (quest and sliding_window)"
run "${M[@]}" gpt2 --validate 2 --validate-len 8
expect_rc 2 "--validate-len out of range"

# examples/Makefile's model sweep: one target per (model, seq), then a table.
run make -s -C "$SRC/examples" -j2 models SATTN="$SATTN" MODELS="gpt2 gemma-2-9b" MODEL_SEQS="512 1024" \
  RESULTS="$T/mres" OUT="$T/mout"
expect_rc 0 "make models"
[[ $(ls "$T/mres/model" | wc -l) -eq 4 ]] && ok || fail "make models: one file per point"
[[ $(grep -c '^| gemma-2-9b | ' "$T/mout/models.md") -eq 2 ]] && ok || fail "make models: a row per gemma-2-9b point"

# Usage errors: exit 2.
run "${M[@]}" no-such-model
expect_rc 2 "unknown preset"
expect_err "no model preset 'no-such-model' \(presets: gemma-2-9b, " "unknown preset lists the presets"
run "${M[@]}" gemma-2-9b --seq 16384
expect_rc 2 "beyond max_position_embeddings"
expect_err 'exceeds the model.s max_position_embeddings \(8192\)' "names the limit"
run "${M[@]}" gemma-2-9b --seq 16384 --allow-long -o "$T/long.json"
expect_rc 0 "--allow-long"
run "${M[@]}" gpt2 --phase decode --context 512 --chunk 1024
expect_rc 2 "chunk beyond the context"
run "${M[@]}" gpt2 --phase sideways
expect_rc 2 "unknown phase"
run "${M[@]}" "$T/nope.json"
expect_rc 1 "unreadable config"
run "${M[@]}" --version
expect_rc 0 "--version"
expect_out '^sattn[ -]model [0-9]' "--version prints the version"
finish
