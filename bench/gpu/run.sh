#!/usr/bin/env bash
# Everything that needs the GPU: build the CUDA kernels (sm_90 + compute_80 PTX), run the GPU
# kernel tests against the CPU reference, run the benchmark. Writes to ${OUT:-bench/results}.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-bench/results}
b=${BUILD:-/tmp/sattn-gpu}
mkdir -p "$b" "$out"
NVCC=${NVCC:-nvcc}
flags="-O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=compute_80"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; $NVCC --version | tail -2;
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'; } | tee "$out/gpu-env.txt"
$NVCC $flags -Xcompiler -fPIC -shared libsattn/cuda/kernels.cu -o "$b/libsattn_cuda.so"
$NVCC $flags libsattn/cuda/test_cuda_kernels.cpp libsattn/cuda/kernels.cu -Ilibsattn/cuda -o "$b/test_cuda_kernels"
"$b/test_cuda_kernels" ${CASES:-64} | tee "$out/gpu-tests.txt"
PYTHONUNBUFFERED=1 python3 bench/gpu/bench.py "$b/libsattn_cuda.so" "$out/gpu.json" ${SEQS:-} | tee "$out/gpu-bench.txt"
