# Selector regret (issue 8): on the committed measurements (bench/regret/cache.json), the specs
# sattn-select picks for the sweep of bench/regret/sweep.yaml meet the target on each backend
# (>= 90% of configurations within 10% regret of the measured best candidate, none above 50%),
# and bench/regret/results.json is what today's selector picks. Runs sattn-select only (seconds):
# the measurements themselves come from bench/regret/run.sh.
source "$(dirname "$0")/lib.sh"
REGRET="$SRC/bench/regret/regret.py"

run "$PY" "$REGRET" select "$BUILD" --check
expect_rc 0 "the committed sweep meets the regret target and results.json is current"
expect_err '^rocc/all +n= *[0-9]+ within10%=' "rocc summary"
expect_err '^rvv/all +n= *[0-9]+ within10%=' "rvv summary"
expect_err '^rocc/heldout ' "held-out configurations are reported separately"
# At least 60 configurations; every one is either in a backend's statistics or listed as
# unmeasured in results.json (nothing silently dropped), and most of them are measured.
"$PY" - "$SRC/bench/regret/sweep.yaml" "$SRC/bench/regret/results.json" <<'P' >"$T/count" 2>&1
import json, sys, yaml
n = yaml.safe_load(open(sys.argv[1]))["configs"]
r = json.load(open(sys.argv[2]))
assert n >= 60, f"only {n} configurations"
for b in ("rocc", "rvv"):
    counted = r["summary"][f"{b}/all"]["n"]
    listed = sum(1 for u in r["unmeasured"] if u.endswith("/" + b))
    assert counted + listed == n, f"{b}: {counted} counted + {listed} unmeasured != {n}"
    assert counted >= 50, f"{b}: only {counted} configurations measured"
    print(b, counted, "of", n)
P
[[ $? -eq 0 ]] && ok || { out=$(cat "$T/count"); fail "configurations counted or listed"; }
grep -qE "^rocc/all +n= *$(awk '/^rocc/{print $2}' "$T/count") " <<<"$err" && ok || fail "rocc summary counts the measured configurations"

# The check can fail: swap the measured cycles of sliding_window and bsr in every configuration,
# so that the selector's picks become the wrong ones.
"$PY" - "$SRC/bench/regret/cache.json" "$T/swapped.json" <<'P'
import json, sys
c = json.load(open(sys.argv[1]))
by = {}
for k, v in c.items():
    by.setdefault((v["config"], v["backend"]), {})[v["spec"]] = k
for specs in by.values():
    a, b = specs.get("sliding_window"), specs.get("bsr")
    if a and b and "cycles" in c[a] and "cycles" in c[b]:
        c[a]["cycles"], c[b]["cycles"] = c[b]["cycles"], c[a]["cycles"]
json.dump(c, open(sys.argv[2], "w"))
P
run "$PY" "$REGRET" select "$BUILD" --check --cache "$T/swapped.json"
expect_rc 5 "swapped measurements miss the target"
expect_err 'regret: error: target missed' "names the missed target"
expect_err '^  c[0-9]+ (rocc|rvv): chose [a-z_]+, oracle [a-z_]+, regret [0-9.]+$' "lists the configurations above 10%"
finish
