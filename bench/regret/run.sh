#!/bin/bash
# Selector regret sweep: measure every candidate of bench/regret/sweep.yaml (cached in
# bench/regret/cache.json; only missing points run; dense from dense_bound_from_seq on is bounded,
# not run), select, write results.json and bench/results/regret.md.
#   Usage: bench/regret/run.sh [BUILD_DIR]   (default: build)
# The full sweep takes hours on 2 cores (rvv at seq_len 8192-16384 under qemu); parts can run
# elsewhere: regret.py measure BUILD --cache part.json --min-seq 4096 --jobs 16, then
# regret.py merge part.json.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd)
OPENBLAS_NUM_THREADS=1 nice /usr/bin/python3 "$here/regret.py" measure "$build" --jobs 2 --cheap-first
/usr/bin/python3 "$here/regret.py" select "$build"
/usr/bin/python3 "$here/report.py"
