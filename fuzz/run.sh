#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-16, -fsanitize=fuzzer,address,undefined) in BUILD
# (default build-fuzz) and runs each for SECONDS (default 20) on its committed corpus
# fuzz/corpus/NAME. New inputs go to BUILD/fuzz/new/NAME (not the committed corpus); a finding
# is written to BUILD/fuzz/crash/NAME-* and fails the script. Each target gets its dictionary
# fuzz/NAME.dict (-dict): the format's tokens plus nesting-depth, size, number-range, encoding and
# path tokens (issue 18), so that deep and huge inputs are reached within -max_len.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#   env: FUZZ_BUILD=DIR  FUZZ_JOBS=N (targets in parallel, default 1)  FUZZ_NICE=19
#        FUZZ_RESOURCE_DIR=DIR (a clang resource dir carrying libclang_rt.fuzzer, when the system lacks it)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}; shift || true
build=${FUZZ_BUILD:-build-fuzz}
jobs=${FUZZ_JOBS:-1}
targets=("$@")
((${#targets[@]})) || targets=(mlir op_json op_yaml plan artifacts profile npy desc)
flags=""
[[ -n ${FUZZ_RESOURCE_DIR:-} ]] && flags="-resource-dir=$(realpath "$FUZZ_RESOURCE_DIR")"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSATTN_FUZZ=ON -DSATTN_NATIVE=OFF -DSATTN_CUDA=OFF \
  -DBUILD_TESTING=OFF -DCMAKE_C_COMPILER=clang-16 -DCMAKE_CXX_COMPILER=clang++-16 \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" "${launcher[@]}" >/dev/null
nice -n "${FUZZ_NICE:-19}" cmake --build "$build" -j "${FUZZ_BUILD_JOBS:-$(nproc)}" --target "${targets[@]/#/fuzz_}"
mkdir -p "$build/fuzz/crash" "$build/fuzz/log"
status=0
run_one() {
  local t=$1
  mkdir -p "$build/fuzz/new/$t"
  local dict=()
  [[ -f fuzz/$t.dict ]] && dict=(-dict="fuzz/$t.dict")
  nice -n "${FUZZ_NICE:-19}" "$build/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 \
    -max_len=8192 -print_final_stats=1 -artifact_prefix="$build/fuzz/crash/$t-" "${dict[@]}" \
    "$build/fuzz/new/$t" "fuzz/corpus/$t" >"$build/fuzz/log/$t.log" 2>&1 && rc=0 || rc=$?
  echo "$rc" >"$build/fuzz/log/$t.rc"
}
for t in "${targets[@]}"; do
  run_one "$t" &
  while (($(jobs -rp | wc -l) >= jobs)); do wait -n || true; done
done
wait
for t in "${targets[@]}"; do
  [[ $(cat "$build/fuzz/log/$t.rc") == 0 ]] || { status=1; echo "fuzz: $t: FINDING (see $build/fuzz/log/$t.log, $build/fuzz/crash/)" >&2; }
  execs=$(grep -ao 'stat::number_of_executed_units: *[0-9]*' "$build/fuzz/log/$t.log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -ao 'cov: [0-9]*' "$build/fuzz/log/$t.log" | tail -1 || true)
  printf 'fuzz: %-10s %10s execs in %ss  %s\n' "$t" "$execs" "$secs" "$cov"
done
exit $status
