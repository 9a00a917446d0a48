#!/usr/bin/env bash
# The performance regression check (`make bench-check`; `make test` runs it as cli test
# bench_check): a canonical set of small workloads whose counts are deterministic — RVV dynamic
# instructions of the kernel region (exact, QEMU plugin), the accelerator's RTL cycle counts and
# its grid's model cycle counts (2x2 and 8x10, --model-only: the RTL is one tile) —
# is run and compared with bench/baseline.json. A count more than 5% above its baseline fails and
# prints the workload and both numbers; one more than 5% below is reported as an improvement to
# record. An intentional change updates the baseline in the same commit (--update), with the
# reason in the commit message.
#
#   bench/check.sh [--baseline FILE] [BUILD_DIR]  compare (exit 1 on a regression)
#   bench/check.sh --update [BUILD_DIR]           rewrite bench/baseline.json from this build
set -uo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
update=0
baseline="$SRC/bench/baseline.json"
while [[ ${1:-} == --* ]]; do
  case $1 in
    --update) update=1; shift ;;
    --baseline) baseline=$2; shift 2 ;;
    *) echo "bench/check.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
BUILD=$(cd "${1:-$SRC/build}" && pwd) || exit 2
SATTN="$BUILD/bin/sattn"
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# name | tool and arguments | op (JSON) | the counted metric (a path in the result). Each op names
# its spec, so the counts measure the kernels and the accelerator, not the selector's choice
# (tuning the cost model must not move them). The integer RVV and accelerator workloads name their
# quantization scheme too (per-tensor, or smooth / smooth,block=4 on rvv), so a change
# of the default does not move them; the *.default sim workloads name none and so measure the
# accelerator's default (the recommended scheme since issue 23: smooth at i8, smooth,block=2 at i4,
# scale words and bias rows loaded by DMA).
workloads=(
  "rvv.sliding_window.fp32.vlen128|run-rvv --vlen 128|{\"spec\":\"sliding_window\",\"seq_len\":256,\"heads\":1,\"head_dim\":64,\"window_size\":32,\"precision\":\"fp32\"}|rvv.instructions.total"
  "rvv.sliding_window.fp32.vlen512|run-rvv --vlen 512|{\"spec\":\"sliding_window\",\"seq_len\":256,\"heads\":1,\"head_dim\":64,\"window_size\":32,\"precision\":\"fp32\"}|rvv.instructions.total"
  "rvv.bsr.i8.vlen256|run-rvv --vlen 256|{\"spec\":\"bsr\",\"seq_len\":256,\"heads\":1,\"head_dim\":64,\"block_size\":64,\"keep_ratio\":0.5,\"precision\":\"i8\",\"quant_scheme\":\"per-tensor\"}|rvv.instructions.total"
  "rvv.bsr.i8.smooth.vlen256|run-rvv --vlen 256|{\"spec\":\"bsr\",\"seq_len\":256,\"heads\":1,\"head_dim\":64,\"block_size\":64,\"keep_ratio\":0.5,\"precision\":\"i8\",\"quant_scheme\":\"smooth\"}|rvv.instructions.total"
  "rvv.topk.bf16.vlen256|run-rvv --vlen 256|{\"spec\":\"topk_per_query\",\"seq_len\":256,\"heads\":1,\"head_dim\":64,\"topk_k\":32,\"precision\":\"bf16\"}|rvv.instructions.total"
  "rvv.nm.i4.vlen256|run-rvv --vlen 256|{\"spec\":\"nm_structured\",\"seq_len\":256,\"heads\":2,\"kv_heads\":1,\"head_dim\":32,\"nm_n\":2,\"nm_m\":8,\"causal\":true,\"precision\":\"i4\",\"quant_scheme\":\"per-tensor\"}|rvv.instructions.total"
  "rvv.nm.i4.smooth4.vlen256|run-rvv --vlen 256|{\"spec\":\"nm_structured\",\"seq_len\":256,\"heads\":2,\"kv_heads\":1,\"head_dim\":32,\"nm_n\":2,\"nm_m\":8,\"causal\":true,\"precision\":\"i4\",\"quant_scheme\":\"smooth,block=4\"}|rvv.instructions.total"
  "rvv.sliding_window.fp32.scalar|run-rvv --kernel scalar|{\"spec\":\"sliding_window\",\"seq_len\":128,\"heads\":1,\"head_dim\":64,\"window_size\":16,\"precision\":\"fp32\"}|rvv.instructions.total"
  "rvv.bsr.fp32.autovec|run-rvv --kernel autovec|{\"spec\":\"bsr\",\"seq_len\":128,\"heads\":1,\"head_dim\":64,\"block_size\":32,\"keep_ratio\":0.5,\"precision\":\"fp32\"}|rvv.instructions.total"
  "sim.bsr.i8.lanes16|sim --lanes 16|{\"spec\":\"bsr\",\"seq_len\":512,\"heads\":1,\"head_dim\":64,\"block_size\":64,\"keep_ratio\":0.25,\"precision\":\"i8\",\"quant_scheme\":\"per-tensor\"}|sim.cycles"
  "sim.sliding_window.i4.lanes8|sim --lanes 8|{\"spec\":\"sliding_window\",\"seq_len\":256,\"heads\":1,\"head_dim\":64,\"window_size\":16,\"precision\":\"i4\",\"quant_scheme\":\"per-tensor\"}|sim.cycles"
  "sim.block_local_global.i8.lanes16|sim --lanes 16|{\"spec\":\"block_local_global\",\"seq_len\":512,\"heads\":1,\"head_dim\":64,\"block_size\":64,\"global_tokens\":64,\"precision\":\"i8\",\"quant_scheme\":\"per-tensor\"}|sim.cycles"
  "sim.lsh.i8.lanes16.causal_gqa|sim --lanes 16|{\"spec\":\"lsh\",\"seq_len\":256,\"heads\":2,\"kv_heads\":1,\"head_dim\":32,\"lsh_buckets\":4,\"causal\":true,\"precision\":\"i8\",\"quant_scheme\":\"per-tensor\"}|sim.cycles"
  "sim.grid2x2.bsr.i8.causal_gqa|sim --lanes 16 --model-only --grid 2x2 --schedule dynamic --multicast on|{\"spec\":\"bsr\",\"seq_len\":512,\"heads\":8,\"kv_heads\":2,\"head_dim\":64,\"block_size\":64,\"keep_ratio\":0.25,\"causal\":true,\"precision\":\"i8\",\"quant_scheme\":\"per-tensor\"}|sim.cycles"
  "sim.grid8x10.bsr.i8.causal_gqa|sim --lanes 16 --model-only --grid 8x10 --schedule zigzag --multicast on|{\"spec\":\"bsr\",\"seq_len\":1024,\"heads\":32,\"kv_heads\":8,\"head_dim\":64,\"block_size\":64,\"keep_ratio\":0.1,\"causal\":true,\"precision\":\"i8\",\"quant_scheme\":\"per-tensor\"}|sim.cycles"
  "sim.bsr.i8.lanes16.default|sim --lanes 16|{\"spec\":\"bsr\",\"seq_len\":512,\"heads\":1,\"head_dim\":64,\"block_size\":64,\"keep_ratio\":0.25,\"precision\":\"i8\"}|sim.cycles"
  "sim.sliding_window.i4.lanes8.default|sim --lanes 8|{\"spec\":\"sliding_window\",\"seq_len\":256,\"heads\":1,\"head_dim\":64,\"window_size\":16,\"precision\":\"i4\"}|sim.cycles"
  "sim.grid2x2.bsr.i8.causal_gqa.default|sim --lanes 16 --model-only --grid 2x2 --schedule dynamic --multicast on|{\"spec\":\"bsr\",\"seq_len\":512,\"heads\":8,\"kv_heads\":2,\"head_dim\":64,\"block_size\":64,\"keep_ratio\":0.25,\"causal\":true,\"precision\":\"i8\"}|sim.cycles"
  "sim.bsr.i8.lanes16.single_buffer|sim --lanes 16 --single-buffer|{\"spec\":\"bsr\",\"seq_len\":512,\"heads\":1,\"head_dim\":64,\"block_size\":64,\"keep_ratio\":0.25,\"precision\":\"i8\",\"quant_scheme\":\"per-tensor\"}|sim.cycles"
)

: >"$T/measured"
status=0
for w in "${workloads[@]}"; do
  IFS='|' read -r name tool op metric <<<"$w"
  printf '%s\n' "$op" >"$T/op.json"
  # shellcheck disable=SC2086 # the tool's arguments are words
  if ! "$SATTN" $tool "$T/op.json" -q -o "$T/result.json" 2>"$T/err"; then
    echo "bench-check: $name: the run failed: $(tail -3 "$T/err")"
    status=1
    continue
  fi
  value=$("$PY" -c "
import json, sys
d = json.loads(open(sys.argv[1]).readline())
for k in sys.argv[2].split('.'):
    d = d[k]
print(int(d))" "$T/result.json" "$metric") || {
    echo "bench-check: $name: no $metric in the result"
    status=1
    continue
  }
  echo "$name $metric $value" >>"$T/measured"
done

"$PY" - "$baseline" "$T/measured" "$update" "$status" <<'PY'
import json, sys, datetime
path, measured_path, update, status = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
measured = {}
for line in open(measured_path):
    name, metric, value = line.split()
    measured[name] = {"metric": metric, "value": int(value)}
if update:
    if status:
        sys.exit("bench-check: not updating the baseline: some workloads failed")
    doc = {"schema": "sattn.bench/v1", "producer": {"tool": "bench/check.sh", "version": "0.1.0"},
           "note": "canonical regression workloads: RVV dynamic instructions (QEMU plugin) and accelerator RTL cycles; "
                   "accelerator grid model cycles (2x2, 8x10); "
                   "deterministic; a count 5% above its baseline fails `make bench-check`",
           "tolerance": 0.05, "updated": datetime.datetime.utcnow().strftime("%Y-%m-%d"), "workloads": measured}
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"bench-check: wrote {len(measured)} workloads to {path}")
    sys.exit(0)
base = json.load(open(path))
tol = base.get("tolerance", 0.05)
bad = status
for name, b in sorted(base["workloads"].items()):
    m = measured.get(name)
    if m is None:
        print(f"bench-check: {name}: not measured")
        bad = 1
        continue
    ratio = m["value"] / b["value"] if b["value"] else float("inf")
    if ratio > 1 + tol:
        print(f"bench-check: REGRESSION {name}: {b['metric']} {b['value']} -> {m['value']} (+{100 * (ratio - 1):.1f}%)")
        bad = 1
    elif ratio < 1 - tol:
        print(f"bench-check: improved {name}: {b['metric']} {b['value']} -> {m['value']} ({100 * (ratio - 1):.1f}%); "
              "record it with bench/check.sh --update")
    else:
        print(f"bench-check: ok {name}: {m['value']} (baseline {b['value']})")
for name in sorted(set(measured) - set(base["workloads"])):
    print(f"bench-check: {name}: no baseline (bench/check.sh --update)")
    bad = 1
sys.exit(1 if bad else 0)
PY
