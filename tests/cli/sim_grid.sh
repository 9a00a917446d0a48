#!/usr/bin/env bash
# sattn sim on a tile grid (hw/README.md "Grid"): --grid, --multicast, --schedule, --model-only;
# the grid's counters in the result; the same output on every grid; bad values (exit 3 naming
# the flag); the RTL grid (2x2, 2x4) against the model; a grid not built in RTL without
# --model-only (exit 2); the watchdog; the profiles' grids; the probe's grid.
source "$(dirname "$0")/lib.sh"
cd "$SRC"  # the shipped profiles (profiles/*.yaml)

# A small causal GQA op (8 query heads, 2 KV heads: groups of 4), a partial last block.
cat >"$T/op.json" <<'J'
{"schema": "sattn.op/v1", "name": "g", "seq_len": 200, "heads": 8, "kv_heads": 2, "head_dim": 32,
 "causal": true, "precision": "i8", "spec": "bsr", "block_size": 32, "keep_ratio": 0.3}
J
field() { $PY -c "import json,sys; d=json.loads(open(sys.argv[1]).readline()); print($2)" "$1"; }

run "$SATTN" sim "$T/op.json" --model-only -q -o "$T/one.json"
expect_rc 0 "1x1 model run"
[[ $(field "$T/one.json" '"grid" in d["sim"]') == False ]] && ok || fail "1x1: no grid section"

for sched in static zigzag dynamic lpt; do
  for mc in on off; do
    run "$SATTN" sim "$T/op.json" --model-only --grid 2x4 --schedule $sched --multicast $mc -q -o "$T/g-$sched-$mc.json"
    expect_rc 0 "2x4 $sched multicast $mc"
  done
done
# Every grid: the check passes, the MACs are the 1x1 run's, the grid section says what ran.
$PY - "$T" <<'P' && ok || fail "grid results: MACs, check, multicast bytes, speedup"
import json, sys, glob
T = sys.argv[1]
one = json.loads(open(f"{T}/one.json").readline())["sim"]
for sched in ("static", "zigzag", "dynamic", "lpt"):
    read = {}
    for mc in ("on", "off"):
        d = json.loads(open(f"{T}/g-{sched}-{mc}.json").readline())
        s, g = d["sim"], d["sim"]["grid"]
        assert d["check"]["passed"], (sched, mc)
        assert s["macs_issued"] == one["macs_issued"], (sched, mc)
        assert g["grid"] == "2x4" and g["tiles"] == 8 and g["schedule"] == sched and g["multicast"] == (mc == "on")
        assert len(g["per_tile"]) == 8 and sum(t["tasks"] for t in g["per_tile"]) == g["tasks"]
        assert g["group_tiles"] == (4 if mc == "on" else 1)
        assert s["cycles"] == g["cycles"] < one["cycles"], (sched, mc, s["cycles"], one["cycles"])
        assert 0 <= g["imbalance"] < 1
        read[mc] = g["dram_bytes_read"]
    assert read["on"] < read["off"], (sched, read)
P

# Bad values: exit 3, the message names the flag.
run "$SATTN" sim "$T/op.json" --model-only --grid 9x10
expect_rc 3 "--grid 9x10"
expect_err "error: --grid 9x10 is outside what the ISA allows: 1x1 to 8x10" "names --grid and the limit"
run "$SATTN" sim "$T/op.json" --model-only --grid 8x11
expect_rc 3 "--grid 8x11"
run "$SATTN" sim "$T/op.json" --model-only --grid 0x4
expect_rc 3 "--grid 0x4"
run "$SATTN" sim "$T/op.json" --model-only --grid four
expect_rc 3 "--grid four"
expect_err "error: --grid must be ROWSxCOLS" "malformed --grid"
run "$SATTN" sim "$T/op.json" --model-only --schedule random
expect_rc 3 "--schedule random"
expect_err "error: --schedule must be static, zigzag, dynamic or lpt \(got 'random'\)" "names --schedule"
run "$SATTN" sim "$T/op.json" --model-only --multicast yes
expect_rc 3 "--multicast yes"
expect_err "error: --multicast must be on, heads or off \(got 'yes'\)" "names --multicast"
# A grid the RTL is not built as needs --model-only; nothing is written.
run "$SATTN" sim "$T/op.json" --grid 4x4 -o "$T/nope.json"
expect_rc 2 "4x4 grid without --model-only"
expect_err "the 4x4 grid runs in the model only: the RTL grid is built as 1x1, 2x2 and 2x4 \(add --model-only\)" "says how"
expect_no_file "$T/nope.json" "no output on a usage error"
run "$SATTN" sim "$T/op.json" --grid 2x2 --lanes 8 -o "$T/nope.json"
expect_rc 2 "2x2 grid with 8 lanes without --model-only"
expect_err "the RTL grid is built with 16 lanes" "says which lanes"
expect_no_file "$T/nope.json" "no output on a usage error"

# The RTL grid (2x2, 2x4): checked against the model bit for bit and counter for counter; its
# grid section is the RTL's counters, equal to a --model-only run's.
for g in 2x2 2x4; do
  sched=zigzag
  [[ $g == 2x4 ]] && sched=lpt  # lpt runs in RTL too (the table in the driver's order)
  run "$SATTN" sim "$T/op.json" --grid $g --schedule $sched -q -o "$T/rtl-$g.json"
  expect_rc 0 "RTL grid $g"
  run "$SATTN" sim "$T/op.json" --grid $g --schedule $sched --model-only -q -o "$T/model-$g.json"
  expect_rc 0 "model grid $g"
  $PY - "$T/rtl-$g.json" "$T/model-$g.json" $g <<'P' && ok || fail "RTL grid $g: engine, model_match, counters equal the model's"
import json, sys
r, m = (json.loads(open(f).readline()) for f in sys.argv[1:3])
assert r["sim"]["engine"] == "rtl" and r["check"]["model_match"] is True and r["check"]["passed"] is True, r["check"]
assert "sattn-accel-grid-sim-%s-lanes16" % sys.argv[3] in r["sim"]["harness"], r["sim"]["harness"]
assert r["sim"]["grid"] == m["sim"]["grid"], (r["sim"]["grid"], m["sim"]["grid"])
assert r["sim"]["cycles"] == m["sim"]["cycles"] and r["sim"]["grid"]["multicast_loads"] > 0
assert r["timing"]["sim_speed_cycles_per_s"] > 0
P
done

# Multicast across query tiles (hw/README.md "Multicast"): causal block_local_global, 8 query tiles
# of 32 rows a head, GQA 4, on 2x4: on = gangs of 4 heads x 2 query tiles (the global block fetched
# once for 8 tiles), heads = the heads of one query tile, off. The RTL grid runs on and matches the
# model; fewer DRAM bytes on than heads than off, the same MACs and output.
cat >"$T/blg.json" <<'J'
{"schema": "sattn.op/v1", "name": "b", "seq_len": 256, "heads": 8, "kv_heads": 2, "head_dim": 32,
 "causal": true, "precision": "i8", "spec": "block_local_global", "block_size": 32, "window_blocks": 1,
 "global_tokens": 32}
J
for mc in on heads off; do
  run "$SATTN" sim "$T/blg.json" --model-only --grid 2x4 --multicast $mc -q -o "$T/blg-$mc.json"
  expect_rc 0 "blg 2x4 multicast $mc"
done
run "$SATTN" sim "$T/blg.json" --grid 2x4 --multicast on -q -o "$T/blg-rtl.json"
expect_rc 0 "blg RTL 2x4 multicast on"
$PY - "$T" <<'P' && ok || fail "multicast on / heads / off: gangs, bytes, MACs, the RTL"
import json, sys
T = sys.argv[1]
d = {mc: json.loads(open(f"{T}/blg-{mc}.json").readline()) for mc in ("on", "heads", "off", "rtl")}
g = {mc: d[mc]["sim"]["grid"] for mc in d}
assert (g["on"]["group_tiles"], g["on"]["group_heads"], g["on"]["query_tiles"]) == (8, 4, 2), g["on"]
assert (g["heads"]["group_tiles"], g["heads"]["query_tiles"]) == (4, 1) and g["off"]["group_tiles"] == 1
assert g["on"]["dram_bytes_read"] < g["heads"]["dram_bytes_read"] < g["off"]["dram_bytes_read"]
assert len({d[mc]["sim"]["macs_issued"] for mc in d}) == 1 and all(d[mc]["check"]["passed"] for mc in d)
assert d["rtl"]["sim"]["engine"] == "rtl" and d["rtl"]["check"]["model_match"] is True and g["rtl"] == g["on"]
P

# The watchdog on a grid: exit 1, the unit states of the stuck tiles, no output (the RTL's and
# the model's).
run "$SATTN" sim "$T/op.json" --grid 2x2 --max-cycles 1000 -o "$T/wd.json"
expect_rc 1 "RTL grid watchdog"
expect_err "accel grid 2x2: the RTL watchdog fired: no completion within max_cycles = 1000 simulated cycles; tile 0: .*dma=" "RTL watchdog names the tiles' states"
expect_no_file "$T/wd.json" "no output when the RTL watchdog fires"
run "$SATTN" sim "$T/op.json" --model-only --grid 2x2 --max-cycles 1000 -o "$T/wd.json"
expect_rc 1 "grid watchdog"
expect_err "accel grid 2x2: watchdog fired after 1000 cycles \(max_cycles\) with [0-9]+ tiles busy; tile 0: dma=" "watchdog names the tiles' states"
expect_no_file "$T/wd.json" "no output when the watchdog fires"

# The profiles: highperf an 8x10 grid (model only), lowpower one tile.
run "$SATTN" sim "$T/op.json" --model-only --profile highperf -q -o "$T/hp.json"
expect_rc 0 "highperf model run"
[[ $(field "$T/hp.json" 'd["sim"]["grid"]["grid"], d["sim"]["config"]["grid"]') == "8x10 8x10" ]] && ok || fail "highperf: 8x10"
# Without --model-only the profile's grid does not stop an RTL run: the RTL runs its one tile,
# with a note (only --grid RxC without --model-only is a usage error).
run "$SATTN" sim "$T/op.json" --profile highperf -o "$T/hp-rtl.json"
expect_rc 0 "highperf without --model-only: the RTL's one tile"
expect_err "note: .*the profile's 8x10 grid runs in the model only \(sattn-sim --model-only\); the RTL ran one tile" "says the grid was narrowed"
[[ $(field "$T/hp-rtl.json" 'd["sim"]["engine"], d["sim"]["config"]["grid"], "grid" in d["sim"]') == "rtl 1x1 False" ]] && ok || fail "highperf RTL run: one tile"
run "$SATTN" sim "$T/op.json" --model-only --profile lowpower --precision i4 -q -o "$T/lp.json"
expect_rc 0 "lowpower model run"
[[ $(field "$T/lp.json" 'd["sim"]["config"]["grid"]') == 1x1 ]] && ok || fail "lowpower: 1x1"
# --grid overrides the profile.
run "$SATTN" sim "$T/op.json" --model-only --profile highperf --grid 1x1 -q -o "$T/hp1.json"
expect_rc 0 "highperf --grid 1x1"
[[ $(field "$T/hp1.json" '"grid" in d["sim"]') == False ]] && ok || fail "--grid 1x1 over the profile"

# A profile with a bad grid: exit 3 with file:line:col.
printf 'schema: sattn.profile/v1\ndescription: bad\nrocc:\n  grid: 9x9\n' >"$T/bad.yaml"
run "$SATTN" sim "$T/op.json" --model-only --profile "$T/bad.yaml"
expect_rc 3 "profile grid 9x9"
expect_err "bad.yaml:4:9: .*rocc.grid 9x9 is outside the ISA's 1x1..8x10" "profile grid error position"

# The probe reports the grid (the RTL answers PROBE; the grid is the configuration's).
run "$SATTN" sim --probe --grid 2x4 --schedule zigzag
expect_rc 0 "probe"
$PY -c "import json,sys; g=json.loads(sys.stdin.read())['grid']; assert (g['rows'], g['cols'], g['tiles'], g['max_rows'], g['max_cols'], g['schedule'], g['rtl_tiles'], g['rtl_grids']) == (2, 4, 8, 8, 10, 'zigzag', 8, ['1x1', '2x2', '2x4']), g" <<<"$out" && ok || fail "probe grid"

# The text probe names the RTL grids and the multicast mode (--multicast on|heads|off).
run "$SATTN" sim --probe --grid 2x4 --format text
expect_rc 0 "text probe"
expect_out "grid              2x4 \(8 tiles; ISA limit 8x10; RTL grids 1x1, 2x2, 2x4, larger grids run in the model\)" "text probe: grid line"
expect_out "grid_multicast    on \(a GQA group's heads x up to 2 query tiles share each K/V load\)" "text probe: multicast on"
run "$SATTN" sim --probe --grid 2x4 --format text --multicast heads
expect_out "grid_multicast    heads " "text probe: multicast heads"
run "$SATTN" sim --probe --grid 2x4 --format text --multicast off
expect_out "grid_multicast    off" "text probe: multicast off"

# --help says --model-only is the way to run a large grid.
run "$SATTN" sim --help
expect_out "--grid.*--model-only \(the only way to run e.g. 8x10\)" "help: --grid needs --model-only"

finish
