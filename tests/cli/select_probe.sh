# sattn-select --use-hw-probe: the real RTL's PROBE (every spec; its scratchpad size becomes the
# L1 hint below flags and the environment), a harness that reports a spec missing (that spec
# becomes infeasible, forcing it is a usage error), and a missing harness (exit 4).
source "$(dirname "$0")/lib.sh"
EX="$SRC/examples"
SELECT="$(dirname "$SATTN")/sattn-select"
SIM="$(dirname "$SATTN")/sattn-sim"
for v in SATTN_FORCE_SPEC SATTN_DISABLE_SW SATTN_DISABLE_BSR SATTN_DISABLE_NM SATTN_DISABLE_TOPK \
  SATTN_DISABLE_LSH SATTN_PREFER_BSR SATTN_PREFER_SW SATTN_HW_L1_BYTES SATTN_LIBEXEC_DIR; do
  unset "$v"
done

# The real accelerator supports every spec: the choice is the one without the probe, the
# reason records the probe, and the cost model's L1 is the scratchpad's 100352 bytes
# (hw/README.md: 3 x 2 x 64 x 256 + 2 x 2 x 64 x 8).
run "$SELECT" --backend rocc "$EX/bsr.mlir"
expect_rc 0 "without the probe"
without=$(grep -oE '"spec":"[a-z_]+"\}$' <<<"$out")
run "$SELECT" --backend rocc --use-hw-probe "$EX/bsr.mlir"
expect_rc 0 "with the probe"
expect_out "$without" "same choice when the hardware supports everything"
expect_out '--use-hw-probe: LANES 16, spec mask 0xff \(every spec\), scratchpad 100352 bytes' "reason records the probe"
expect_out '"l1_bytes":100352' "scratchpad size is the L1 hint"
run "$SELECT" --backend rocc --use-hw-probe --l1-bytes 4096 "$EX/bsr.mlir"
expect_out '"l1_bytes":4096' "--l1-bytes outranks the probe"
run env SATTN_HW_L1_BYTES=8192 "$SELECT" --backend rocc --use-hw-probe "$EX/bsr.mlir"
expect_out '"l1_bytes":8192' "SATTN_HW_L1_BYTES outranks the probe"

# sattn-sim --probe reports the same capabilities.
run "$SIM" --probe
expect_out '"scratchpad_bytes":100352' "sattn-sim --probe agrees"

# A harness whose PROBE lacks bsr (spec code 2): a stand-in that speaks the harness protocol
# (hw/README.md "Harness") and answers both PROBE words.
mkdir -p "$T/nobsr"
# (ISA version 2: max_head_dim in units of 16, 256 = 16 << 48)
word0=$(printf '%016x' $(( 2 | 16 << 8 | 0xfb << 16 | 0x0c << 24 | 64 << 32 | 64 << 40 | 16 << 48 | 7 << 56 )))
cat >"$T/nobsr/sattn-accel-sim-lanes16" <<F
#!/bin/bash
while [[ \$# -gt 0 ]]; do [[ \$1 == --out ]] && : >"\$2"; shift; done
printf 'sattn-accel-sim v1\nlanes 16\nresp 0 $word0\nresp 1 %016x\nsim_cycles 4\nwall_seconds 0.000001\nstatus ok\n' 100352
F
chmod +x "$T/nobsr/sattn-accel-sim-lanes16"
run env SATTN_LIBEXEC_DIR="$T/nobsr" "$SELECT" --backend rocc --use-hw-probe "$EX/bsr.mlir"
expect_rc 0 "probe without bsr"
run_plan="$out"
run "$PY" -c 'import json,sys
p = json.loads(sys.argv[1])
c = [c for c in p["selection"]["candidates"] if c["spec"] == "bsr"]
assert c and not c[0]["feasible"] and c[0]["why_not"] == "not supported by the accelerator (probe)", c
print("ok")' "$run_plan"
expect_out '^ok$' "bsr infeasible with the probe's reason"
out="$run_plan"
# The op describes only bsr: the rest are compared with default parameters, and on the
# accelerator the default window (64: 129 keys a row) costs far less than dense.
expect_out '"spec":"sliding_window"\}$' "another spec chosen"
# quest runs through bsr's block format, so it goes with bsr's bit (hw/README.md)
expect_out 'spec mask 0xfb \(unsupported: bsr, quest\)' "reason names what the hardware lacks"
run env SATTN_LIBEXEC_DIR="$T/nobsr" "$SELECT" --backend rocc --use-hw-probe --force-spec bsr "$EX/bsr.mlir" -o "$T/f.jsonl"
expect_rc 2 "forcing what the hardware lacks"
expect_err 'cannot force bsr \(--force-spec bsr\): not supported by the accelerator' "force message"
expect_no_file "$T/f.jsonl" "no plan written"
run env SATTN_LIBEXEC_DIR="$T/nobsr" "$SIM" --probe --format text
expect_out '^specs +dense, sliding_window, block_local_global, nm_structured, topk_per_query, lsh, landmark \(mask 0xfb\)$' "probe text lists the supported specs"

# No harness: exit 4 with the install command, nothing written.
mkdir -p "$T/empty"
run env SATTN_LIBEXEC_DIR="$T/empty" "$SELECT" --use-hw-probe "$EX/bsr.mlir" -o "$T/n.jsonl"
expect_rc 4 "missing harness"
expect_err "apt-get install.*verilator" "install command"
expect_no_file "$T/n.jsonl" "no plan without a harness"

finish
