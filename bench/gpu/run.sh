#!/usr/bin/env bash
# Everything that needs the GPU: build the CUDA kernels (sm_90 + compute_80 PTX; the Hopper forward
# for sm_90a), run the GPU
# kernel tests against the CPU reference (SIMT and tensor-core kernels), run the benchmark
# against FlexAttention and SDPA flash. Writes to ${OUT:-bench/results}/gpu/ and gpu-*.txt;
# bench/gpu/report.py turns gpu/gpu.json into bench/results/gpu.md.
# Environment: NVCC, BUILD (scratch dir), CASES / TC_CASES / BWD_CASES (test cases), SEQS (benchmark
# seq_lens), BWD_MAX_SEQ (the longest seq_len with backward rows), STEPS (default "build tests bench":
# which steps to run; tests and bench use the build in $BUILD), TEST_TIMEOUT (seconds for the kernel tests), EXTRA_FLAGS (more nvcc flags, e.g.
# the SATTN_BWD_* tile macros that bench/gpu/bwd_variants.sh compares).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-bench/results}/gpu
b=${BUILD:-/tmp/sattn-gpu}
mkdir -p "$b" "$out"
NVCC=${NVCC:-nvcc}
flags="-O3 -std=c++17 -DSATTN_HOPPER=1 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=compute_80 ${EXTRA_FLAGS:-}"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; $NVCC --version | tail -2;
  python3 -c 'import torch, triton; print("torch", torch.__version__, "cuda", torch.version.cuda, "triton", triton.__version__)'
  [ -z "${EXTRA_FLAGS:-}" ] || echo "nvcc flags: ${EXTRA_FLAGS}"; } | tee "$out/gpu-env.txt"
case " ${STEPS:-build tests bench} " in *" build "*)
objs=()
for f in kernels kernels_tc kernels_bwd kernels_tc_bwd; do
  objs+=("$b/$f.o")
  $NVCC $flags -Xcompiler -fPIC -c libsattn/backends/cuda/$f.cu -o "$b/$f.o" &
done
# The Hopper forward (wgmma) has only sm_90a code; SATTN_HOPPER=1 makes the dispatch take it on
# compute capability 9.0 devices (SATTN_CUDA_HOPPER=0 in the environment turns it off at run time).
objs+=("$b/kernels_hopper.o")
$NVCC -O3 -std=c++17 -gencode arch=compute_90a,code=sm_90a ${EXTRA_FLAGS:-} -Xcompiler -fPIC -Xptxas -v \
  -c libsattn/backends/cuda/kernels_hopper.cu -o "$b/kernels_hopper.o" 2> "$out/gpu-ptxas-hopper.txt" &
wait
$NVCC $flags -shared "${objs[@]}" -o "$b/libsattn_cuda.so"
$NVCC $flags tests/integration/cuda/test_cuda_kernels.cpp "${objs[@]}" -Ilibsattn/backends/cuda -o "$b/test_cuda_kernels"
;;
esac
case " ${STEPS:-build tests bench} " in *" tests "*)
  ${TEST_TIMEOUT:+timeout $TEST_TIMEOUT} "$b/test_cuda_kernels" "${CASES:-64}" 20261202 "${TC_CASES:-96}" "${BWD_CASES:-96}" \
    | tee "$out/gpu-tests.txt";;
esac
case " ${STEPS:-build tests bench} " in *" bench "*)
  PYTHONUNBUFFERED=1 python3 bench/gpu/bench.py "$b/libsattn_cuda.so" "$out/gpu.json" ${SEQS:-} | tee "$out/gpu-bench.txt";;
esac
