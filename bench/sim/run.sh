#!/bin/bash
# The accelerator benchmark: bsr, sliding_window and block_local_global at seq_len 1024 and
# 4096 (head_dim 64, i8 per-tensor: the datapath without the scheme tables, whose cost is in
# bench/results/quant.md; LANES 16, one head), each with double buffering and the single-buffer
# ablation, on the RTL under Verilator. Writes bench/results/sim.md and bench/sim/baseline.json
# (see bench/sim/README.md).
#
#   bench/sim/run.sh [BUILD_DIR]          run everything, write the report and the baseline
#   bench/sim/run.sh --check [BUILD_DIR]  re-run with the model only and compare every cycle
#                                         count and counter with the baseline (exit 1 if any differ)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
mode=run
if [[ ${1:-} == --check ]]; then mode=check; shift; fi
build=${1:-$src/build}
sim="$build/bin/sattn-sim"
[[ -x $sim ]] || { echo "bench/sim: $sim not found; build first (make, or ninja -C $build sattn-sim sattn_accel_harness)" >&2; exit 1; }
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# name|op JSON
workloads() {
  for n in 1024 4096; do
    echo "bsr-$n|{\"name\":\"bsr-$n\",\"spec\":\"bsr\",\"seq_len\":$n,\"heads\":1,\"head_dim\":64,\"precision\":\"i8\",\"quant_scheme\":\"per-tensor\",\"block_size\":64,\"keep_ratio\":0.125}"
    echo "sliding_window-$n|{\"name\":\"sliding_window-$n\",\"spec\":\"sliding_window\",\"seq_len\":$n,\"heads\":1,\"head_dim\":64,\"precision\":\"i8\",\"quant_scheme\":\"per-tensor\",\"window_size\":64}"
    echo "block_local_global-$n|{\"name\":\"block_local_global-$n\",\"spec\":\"block_local_global\",\"seq_len\":$n,\"heads\":1,\"head_dim\":64,\"precision\":\"i8\",\"quant_scheme\":\"per-tensor\",\"block_size\":64,\"window_blocks\":1,\"global_tokens\":64}"
  done
}

: >"$work/results.jsonl"
while IFS='|' read -r name op; do
  echo "$op" >"$work/$name.json"
  for buffering in double single; do
    flags=(--lanes 16 -q)
    [[ $buffering == single ]] && flags+=(--single-buffer)
    [[ $mode == check ]] && flags+=(--model-only)
    echo "bench/sim: $name ($buffering buffer)" >&2
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    start=$(date +%s.%N)
    rc=0
    nice "$sim" "$work/$name.json" "${flags[@]}" -o "$work/r.jsonl" || rc=$?
    end=$(date +%s.%N)
    [[ $rc -eq 0 ]] || { echo "bench/sim: $name ($buffering) failed with exit $rc" >&2; exit 1; }
    # The run's provenance travels with it, so sim.md can be regenerated from sim.jsonl alone.
    "$py" -c 'import json,sys,os,platform,subprocess,datetime
r=json.loads(open(sys.argv[1]).readline())
cpu=next((l.split(":",1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),"unknown")
ver=subprocess.run(["verilator","--version"],capture_output=True,text=True).stdout.strip()
r["bench"]={"workload":sys.argv[2],"buffering":sys.argv[3],"process_seconds":float(sys.argv[5])-float(sys.argv[4]),
 "date":datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),"load_before":sys.argv[6],
 "machine":{"cpu":cpu,"cores":os.cpu_count(),"system":platform.system()+" "+platform.release(),"host":platform.node()},
 "verilator":ver}
print(json.dumps(r))' \
      "$work/r.jsonl" "$name" "$buffering" "$start" "$end" "$load" >>"$work/results.jsonl"
  done
done < <(workloads)

if [[ $mode == check ]]; then
  exec "$py" "$here/report.py" check "$work/results.jsonl" "$here/baseline.json"
fi
# The raw results are kept beside the report, so that sim.md can be regenerated from them
# (bench/sim/report.py report bench/results/sim.jsonl ...), not typed by hand.
cp "$work/results.jsonl" "$src/bench/results/sim.jsonl.tmp" && mv "$src/bench/results/sim.jsonl.tmp" "$src/bench/results/sim.jsonl"
"$py" "$here/report.py" report "$src/bench/results/sim.jsonl" "$here/baseline.json" "$src/bench/results/sim.md" "$sim"
