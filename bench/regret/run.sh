#!/bin/bash
# Selector regret sweep: measure every candidate of bench/regret/sweep.yaml (cached in
# bench/regret/cache.json; only missing points run), select, write results.json and
# bench/results/regret.md.   Usage: bench/regret/run.sh [BUILD_DIR]   (default: build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd)
nice /usr/bin/python3 "$here/regret.py" measure "$build" --jobs 2
/usr/bin/python3 "$here/regret.py" select "$build"
/usr/bin/python3 "$here/report.py"
