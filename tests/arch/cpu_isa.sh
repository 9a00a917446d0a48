#!/bin/bash
# cpu_isa.sh ISA UNIT_TESTS: the fast-kernel tests (fast_attention*, softcap*, and the quantization
# schemes' kernel, fast kernel*; layout* for the nm/topk score kernels: randomized shapes,
# tails, causal, empty rows, GQA, backward, against the double-precision reference) on one ISA's
# copy of the CPU kernels, forced with SATTN_CPU_ISA. On a CPU without that ISA (read from
# /proc/cpuinfo, independently of the library's own check) it checks instead that forcing it fails
# with a clear message. ISA "bogus" checks the message for an unknown name. Under amx the bf16
# test cases run the AMX tiles (and say so); elsewhere they run the fp32 fallback.
set -euo pipefail
isa=$1 unit=$2
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
has() { for f in "$@"; do [[ " $flags " == *" $f "* ]] || return 1; done; }
case $isa in
  baseline) supported=1 ;;
  avx2) has avx2 fma bmi1 bmi2 f16c && supported=1 || supported=0 ;;
  avx512) has avx2 fma bmi1 bmi2 f16c avx512f avx512bw avx512cd avx512dq avx512vl && supported=1 || supported=0 ;;
  # amx: the avx512 copy plus AMX tiles for bf16; the kernel may still refuse the tile data
  # (arch_prctl), which the library reports like a missing flag, so this reads /proc/cpuinfo only.
  amx) has avx2 fma bmi1 bmi2 f16c avx512f avx512bw avx512cd avx512dq avx512vl avx512_bf16 amx_tile amx_bf16 \
         && supported=1 || supported=0 ;;
  *) supported=0 ;;
esac
if [[ $supported == 1 ]]; then
  echo "cpu_isa.sh: $isa: running the fast-kernel tests on the $isa copy"
  SATTN_CPU_ISA=$isa "$unit" -tc='cpu_isa*,fast_attention*,softcap*,fast kernel*,layout*'
else
  echo "cpu_isa.sh: $isa: not usable on this CPU; checking that forcing it fails clearly"
  SATTN_CPU_ISA=$isa "$unit" -tc='cpu_isa*'
fi
