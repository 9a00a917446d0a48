#!/usr/bin/env bash
# Kernel tile variants on the GPU: builds libsattn_cuda.so once per variant (the SATTN_BWD_* macros
# of kernels_internal.h / kernels_tc_bwd.cu, SATTN_FWD_* of kernels_tc.cu, SATTN_HOPPER_* of
# kernels_hopper.cu), runs the GPU kernel tests on each,
# then times their backward side by side (bench/gpu/bwd_variants.py, FlexAttention's too).
# Environment: VARIANTS ("name:-DA=1,-DB=2 ..."; "name:" is the defaults), OLD_SRC (a directory
# with an older libsattn/backends/cuda to time as "old"), SEQS, VCASES/VTC_CASES/VBWD_CASES, BUILD,
# OUT. Writes ${OUT:-bench/results}/bwd-variants.{txt,json} and bwd-variants-tests.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-bench/results}
b=${BUILD:-/tmp/sattn-bwdv}
mkdir -p "$b" "$out"
NVCC=${NVCC:-nvcc}
flags="-O3 -std=c++17 -DSATTN_HOPPER=1 -gencode arch=compute_90,code=sm_90"
build() {  # build NAME SRC_ROOT DEFINES...
  local name=$1 src=$2; shift 2
  local d="$b/$name"; mkdir -p "$d"
  local objs=()
  for f in kernels kernels_tc kernels_bwd kernels_tc_bwd; do
    objs+=("$d/$f.o")
    $NVCC $flags "$@" -Xcompiler -fPIC -c "$src/libsattn/backends/cuda/$f.cu" -o "$d/$f.o" &
  done
  if [ -f "$src/libsattn/backends/cuda/kernels_hopper.cu" ]; then  # the Hopper forward (sm_90a only)
    objs+=("$d/kernels_hopper.o")
    $NVCC -O3 -std=c++17 -gencode arch=compute_90a,code=sm_90a "$@" -Xcompiler -fPIC \
      -c "$src/libsattn/backends/cuda/kernels_hopper.cu" -o "$d/kernels_hopper.o" &
  fi
  wait
  $NVCC $flags -shared "${objs[@]}" -o "$d/libsattn_cuda.so"
  $NVCC $flags "$src/tests/integration/cuda/test_cuda_kernels.cpp" "${objs[@]}" -I"$src/libsattn/backends/cuda" \
    -o "$d/test_cuda_kernels"
}
names=(); libs=()
if [ -n "${OLD_SRC:-}" ]; then build old "$OLD_SRC" & names+=(old); fi
for v in ${VARIANTS:-base:}; do
  name=${v%%:*}; defs=${v#*:}
  build "$name" . ${defs//,/ } &
  names+=("$name")
done
wait
built=()
for n in "${names[@]}"; do
  if [ -x "$b/$n/test_cuda_kernels" ]; then built+=("$n"); libs+=("$n=$b/$n/libsattn_cuda.so"); else echo "build of $n failed"; fi
done
names=("${built[@]}")
fail=0
for n in "${names[@]}"; do
  [ "$n" = old ] && continue
  echo "== tests: $n"
  ( rc=0; "$b/$n/test_cuda_kernels" "${VCASES:-48}" 20261202 "${VTC_CASES:-72}" "${VBWD_CASES:-96}" \
      > "$out/tests-$n.txt" 2>&1 || rc=$?; echo "exit $rc" >> "$out/tests-$n.txt" ) &
done
wait
for n in "${names[@]}"; do
  [ "$n" = old ] && continue
  echo "== $n: $(tail -2 "$out/tests-$n.txt" | tr '\n' ' ')" | tee -a "$out/bwd-variants-tests.txt"
  grep -qx "exit 0" "$out/tests-$n.txt" || fail=1
  grep -v " ok$" "$out/tests-$n.txt" | head -20 >> "$out/bwd-variants-tests.txt" || true
  rm "$out/tests-$n.txt"
done
PYTHONUNBUFFERED=1 python3 bench/gpu/bwd_variants.py "$out/bwd-variants.json" ${FLEX:+--flex} "${libs[@]}" -- \
  ${SEQS:-16384} | tee "$out/bwd-variants.txt"
exit $fail
