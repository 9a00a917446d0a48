# sattn-imc: reports, flags, --gemm, --sweep CSV, config files and every error path.
source "$(dirname "$0")/lib.sh"
IMC=("$SATTN" imc)

cat >"$T/op.json" <<'J'
{"schema":"sattn.op/v1","name":"a","seq_len":256,"heads":2,"head_dim":64,"block_size":32,"keep_ratio":0.25,"precision":"i8"}
J

run "${IMC[@]}" "$T/op.json"
expect_rc 0 "bsr op"
expect_out '"schema":"sattn.imc/v1"' "imc schema"
expect_out '"mode":"attention"' "attention mode"
[[ $(wc -l <<<"$out") -eq 1 ]] && ok || fail "one JSON line per op"
# Every breakdown adds up; sparse is cheaper than dense; the ratio is dense/sparse.
run "$PY" - "$T/op.json" "$SATTN" <<'P'
import json, subprocess, sys
j = json.loads(subprocess.run([sys.argv[2], "imc", sys.argv[1]], capture_output=True, text=True, check=True).stdout)
for side in ("sparse", "dense"):
    for kind in ("energy_pj", "latency_ns", "area_mm2"):
        b = j[side][kind]
        parts = sum(b[k] for k in ("array", "adc", "accumulation", "buffer", "interconnect", "writes"))
        assert abs(parts - b["total"]) <= 1e-9 * b["total"], (side, kind)
assert j["sparse"]["energy_pj"]["total"] < j["dense"]["energy_pj"]["total"]
assert abs(j["ratio"]["energy"] - j["dense"]["energy_pj"]["total"] / j["sparse"]["energy_pj"]["total"]) < 1e-9
assert j["sparse"]["tops_per_w"] == j["sparse"]["ops"] / j["sparse"]["energy_pj"]["total"]
assert j["mapping"]["cells_per_weight"] == 8 and j["mapping"]["density"] == 0.25
print("ok")
P
expect_out '^ok$' "report is consistent"

# The schema file is valid JSON and names the kind.
run "$PY" -c "import json; s=json.load(open('$SRC/schemas/imc.schema.json')); print(s['properties']['schema']['const'])"
expect_out '^sattn.imc/v1$' "schema file"

run "${IMC[@]}" --format text "$T/op.json"
expect_rc 0 "text format"
expect_out '^component +energy_pj +dense_energy_pj' "breakdown table"
expect_out '^total ' "total row"
expect_out '^TOPS/W ' "TOPS/W row"

# Flags override the defaults and are echoed.
run "${IMC[@]}" "$T/op.json" --tech 65 --cell sram --subarray 64x128 --adc-bits 6 --cols-per-adc 4 --parallel-rows 16 --clock-mhz 200 --kv-placement sram
expect_rc 0 "flags"
expect_out '"tech_nm":65' "tech echoed"
expect_out '"cell":"sram"' "cell echoed"
expect_out '"subarray_cols":128,"subarray_rows":64' "sub-array echoed"
expect_out '"parallel_rows":16' "parallel rows echoed"
expect_out '"clock_mhz":200' "clock echoed"

# RRAM cells with K/V in SRAM: noted, and no endurance limit.
run "${IMC[@]}" "$T/op.json" --kv-placement sram
expect_out '"kv_cell":"sram"' "kv in sram"
expect_out 'K and V are held in 1-bit SRAM-IMC arrays' "kv note"
run "${IMC[@]}" "$T/op.json" --cell rram --cell-bits 2
expect_out '"cells_per_weight":4' "2-bit cells"
expect_out '"ops_to_wearout":1000000' "endurance reported for RRAM writes"

# Data-dependent specs read --data or --seed; a plan works as well as an op.
run bash -c "\"$SATTN\" select \"$T/op.json\" | \"$SATTN\" imc - --seed 7"
expect_rc 0 "plan on stdin"
expect_out '"spec":"bsr"' "plan keeps its spec"

# --gemm: one line per GEMM, no writes charged.
run "${IMC[@]}" --gemm 64,1152,128 --gemm 1,8192,1024
expect_rc 0 "gemm"
[[ $(wc -l <<<"$out") -eq 2 ]] && ok || fail "one line per gemm"
expect_out '"mode":"gemm"' "gemm mode"
expect_out '"gemm":\{"k":1152,"m":64,"n":128\}' "gemm shape"
expect_out '"writes":0' "gemm charges no writes"
run "${IMC[@]}" --gemm 64,1152,128 --format text
expect_out '^gemm_64x1152x128 ' "gemm text title"

# --sweep: CSV with a header and one row per point.
run "${IMC[@]}" "$T/op.json" --sweep "subarray=64x64,128x128;adc_bits=3..5;cell_bits=1,2"
expect_rc 0 "sweep"
[[ $(wc -l <<<"$out") -eq 13 ]] && ok || fail "sweep: header + 12 rows"
expect_out '^op,tech_nm,cell,subarray_rows,subarray_cols,cell_bits,adc_bits,cols_per_adc,parallel_rows,energy_pj' "sweep header"
cp "$T/out" "$T/sweep.csv"
run "$PY" -c "
import csv,sys
rows=list(csv.DictReader(open('$T/sweep.csv')))
assert len(rows)==12 and len({len(r) for r in rows})==1
assert all(float(r['energy_ratio'])>1 for r in rows)
print('ok')"
expect_out '^ok$' "sweep rows parse"
run "${IMC[@]}" --gemm 8,256,64 --sweep "adc_bits=2,8" -o "$T/g.csv"
expect_rc 0 "gemm sweep to a file"
expect_no_out "sweep -o writes nothing to stdout"
[[ $(wc -l <"$T/g.csv") -eq 3 ]] && ok || fail "gemm sweep rows"

# --config: the profile section format; flags override it.
cat >"$T/c.yaml" <<'Y'
tech: 40
cell: sram
subarray: 64x64
adc_bits: 5
adc_fom_fj: 12.5
Y
run "${IMC[@]}" "$T/op.json" --config "$T/c.yaml" --adc-bits 3
expect_rc 0 "config"
expect_out '"tech_nm":40' "config tech"
expect_out '"adc_bits":3' "flag over config"
expect_out '"adc_fom_fj":12.5' "config figure"
expect_out '"overridden":\["adc_fom_fj"\]' "overrides listed"

# Errors: bad YAML keys/types/values -> 3 with file:line:col; nothing written.
printf 'tech: 22\nadc_bitz: 4\n' >"$T/bad1.yaml"
run "${IMC[@]}" "$T/op.json" --config "$T/bad1.yaml" -o "$T/never.json"
expect_rc 3 "unknown config key"
expect_err "bad1.yaml:2:1: unknown key 'adc_bitz'" "unknown key located"
expect_no_file "$T/never.json" "nothing written on error"
printf 'cell_bits: two\n' >"$T/bad2.yaml"
run "${IMC[@]}" "$T/op.json" --config "$T/bad2.yaml"
expect_rc 3 "wrong type"
expect_err "bad2.yaml:1:12: imc.cell_bits must be an integer" "wrong type located"
printf 'adc_bits: [4\n' >"$T/bad3.yaml"
run "${IMC[@]}" "$T/op.json" --config "$T/bad3.yaml"
expect_rc 3 "malformed YAML"
expect_err "bad3.yaml:[0-9]+:[0-9]+:" "YAML syntax error located"

# Out-of-range values -> 3; malformed values -> 2.
for args in "--adc-bits 13" "--tech 30" "--cell-bits 5" "--subarray 4x4" "--parallel-rows 999" "--cols-per-adc 0" "--clock-mhz 0"; do
  run "${IMC[@]}" "$T/op.json" $args -o "$T/never.json"
  expect_rc 3 "out of range: $args"
  expect_err "out of range" "range message: $args"
done
expect_no_file "$T/never.json" "nothing written on range errors"
run "${IMC[@]}" "$T/op.json" --cell sram --cell-bits 2
expect_rc 3 "sram with 2-bit cells"
expect_err "SRAM cells hold 1 bit" "sram cell bits message"
for args in "--subarray 128" "--cell pcm" "--kv-placement dram" "--gemm 1,2" "--format xml" "--adc-bits x" "--sweep adc_bits" "--sweep foo=1"; do
  run "${IMC[@]}" "$T/op.json" $args
  expect_rc 2 "usage: $args"
done
# A sweep with one infeasible point fails before writing anything.
run "${IMC[@]}" "$T/op.json" --cell sram --sweep "cell_bits=1,2" -o "$T/never.csv"
expect_rc 3 "infeasible sweep point"
expect_no_file "$T/never.csv" "no partial CSV"
run "${IMC[@]}" "$T/missing.json"
expect_rc 1 "missing input"

# A profile's imc: section sets the parameters (below --config and the flags), checked strictly.
cat >"$T/p.yaml" <<'Y'
schema: sattn.profile/v1
imc:
  tech: 28
  adc_bits: 6
Y
run "${IMC[@]}" "$T/op.json" --profile "$T/p.yaml" --adc-bits 5
expect_rc 0 "profile imc section"
expect_out '"tech_nm":28' "profile tech"
expect_out '"adc_bits":5' "flag over profile"
printf 'schema: sattn.profile/v1\nimc:\n  adc_bits: 99\n' >"$T/pbad.yaml"
run "${IMC[@]}" "$T/op.json" --profile "$T/pbad.yaml"
expect_rc 3 "bad profile imc value"
expect_err "pbad.yaml:3:13: imc.adc_bits = 99 is out of range" "profile error located"

finish
