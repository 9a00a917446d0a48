# SATTN_CPU_ISA (run-time dispatch of the fast CPU kernels): sattn run records the copy that ran
# as cpu_isa (and cpu_amx_tiles: whether a bf16 op ran on AMX tiles), forcing each available copy
# gives results within tolerance (fp32 and bf16), and a bad name is a
# clear error (exit 3 from run, a broken doctor row with the fix, exit 4) rather than a fallback.
# SATTN_CPU_BLOCK_KERNEL: both block tiles (fused, gemm) pass the check; another value is exit 3.
# SATTN_CPU_CSR_KERNEL: both CSR paths (packed, legacy) pass the check on window, LSH and landmark
# ops; another value is exit 3.
source "$(dirname "$0")/lib.sh"

op="$SRC/examples/bsr.mlir"
avail=$(SATTN_CPU_ISA= "$SATTN" doctor --format json -q | $PY -c 'import json,sys; j=json.load(sys.stdin); print(" ".join(j["cpu_isas_available"]), j["cpu_isa"])')
read -ra names <<<"$avail"
best=${names[-1]}
[[ ${names[0]} == baseline && $best == "${names[-2]}" ]] && ok || fail "doctor: available list starts with baseline and cpu_isa is the best: $avail"

for isa in "${names[@]:0:${#names[@]}-1}"; do
  SATTN_CPU_ISA=$isa run "$SATTN" run "$op" --format json -q -o "$T/$isa.json"
  expect_rc 0 "run with SATTN_CPU_ISA=$isa"
  got=$($PY -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["cpu_isa"], j["check"]["passed"])' "$T/$isa.json")
  [[ $got == "$isa True" ]] && ok || fail "SATTN_CPU_ISA=$isa: result says $got"
done
# bf16 (issue 25): the amx copy runs this BSR op (head_dim 64) on the AMX tiles and says so
# (cpu_amx_tiles), every other copy on the fp32 tiles; each passes the bf16 check. On a CPU
# without AMX the loop covers the fallback copies only (amx is not in the list).
for isa in "${names[@]:0:${#names[@]}-1}"; do
  SATTN_CPU_ISA=$isa run "$SATTN" run "$op" --precision bf16 --format json -q -o "$T/$isa-bf16.json"
  expect_rc 0 "bf16 run with SATTN_CPU_ISA=$isa"
  got=$($PY -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["cpu_isa"], j["cpu_amx_tiles"], j["check"]["passed"])' "$T/$isa-bf16.json")
  want_amx=False; [[ $isa == amx ]] && want_amx=True
  [[ $got == "$isa $want_amx True" ]] && ok || fail "bf16, SATTN_CPU_ISA=$isa: result says $got"
done
run env -u SATTN_CPU_ISA "$SATTN" run "$op" --format json -q -o "$T/default.json"
got=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["cpu_isa"])' "$T/default.json")
[[ $got == "$best" ]] && ok || fail "unset: the best copy ($best) runs, not $got"

SATTN_CPU_ISA=avx1024 run "$SATTN" run "$op" -q -o "$T/bad.json"
expect_rc 3 "unknown ISA (invalid input)"
expect_err "^sattn run: error: SATTN_CPU_ISA=avx1024: unknown ISA \(expected baseline, avx2, avx512 or amx\)" "unknown ISA message"
expect_no_file "$T/bad.json" "no partial result"
SATTN_CPU_ISA=avx1024 run "$SATTN" doctor --format json -q -o "$T/doctor.json"
expect_rc 4 "doctor with a bad SATTN_CPU_ISA"
got=$($PY -c 'import json,sys; j=json.load(open(sys.argv[1])); c=[c for c in j["checks"] if c["name"].startswith("CPU kernels")][0]; print(j["cpu_isa"], c["status"], "|", c["fix"])' "$T/doctor.json")
[[ $got == "None broken | unset SATTN_CPU_ISA or set it to one of: baseline"* ]] && ok || fail "doctor row: $got"

for kernel in fused gemm; do
  SATTN_CPU_BLOCK_KERNEL=$kernel run "$SATTN" run "$op" --format json -q -o "$T/$kernel.json"
  expect_rc 0 "run with SATTN_CPU_BLOCK_KERNEL=$kernel"
  got=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["check"]["passed"])' "$T/$kernel.json")
  [[ $got == True ]] && ok || fail "SATTN_CPU_BLOCK_KERNEL=$kernel: check passed = $got"
done
SATTN_CPU_BLOCK_KERNEL=blas run "$SATTN" run "$op" -q -o "$T/bad-kernel.json"
expect_rc 3 "unknown block kernel (invalid input)"
expect_err "^sattn run: error: SATTN_CPU_BLOCK_KERNEL=blas: unknown block kernel \(expected fused or gemm\)" "unknown block kernel message"
expect_no_file "$T/bad-kernel.json" "no partial result"

for csr_op in sliding_window lsh landmark; do
  for kernel in packed legacy; do
    SATTN_CPU_CSR_KERNEL=$kernel run "$SATTN" run "$SRC/examples/$csr_op.mlir" --format json -q -o "$T/$csr_op-$kernel.json"
    expect_rc 0 "$csr_op with SATTN_CPU_CSR_KERNEL=$kernel"
    got=$($PY -c 'import json,sys; print(all(r["check"]["passed"] for r in map(json.loads, open(sys.argv[1]))))' \
      "$T/$csr_op-$kernel.json")
    [[ $got == True ]] && ok || fail "$csr_op, SATTN_CPU_CSR_KERNEL=$kernel: check passed = $got"
  done
done
SATTN_CPU_CSR_KERNEL=gemm run "$SATTN" run "$SRC/examples/sliding_window.mlir" -q -o "$T/bad-csr.json"
expect_rc 3 "unknown CSR kernel (invalid input)"
expect_err "^sattn run: error: SATTN_CPU_CSR_KERNEL=gemm: unknown CSR kernel \(expected packed or legacy\)" "unknown CSR kernel message"
expect_no_file "$T/bad-csr.json" "no partial result"
finish
