# sattn-select under a quality target (--min-recall, SATTN_MIN_RECALL, the profile's
# select.min_recall; issue 20): 1.0 selects dense with a warning, 0 the cheapest candidate; the
# choice keeps at least R of the attention mass on the calibration data (checked by sattn-eval);
# the real activations beside the synthetic data; flags > environment > profile; bad input.
source "$(dirname "$0")/lib.sh"
BIN="$(dirname "$SATTN")"
declare -A cost
REAL="$SRC/data/real"
OP="$REAL/ops/layer3.json"
field() { $PY -c "import json,sys; p=json.loads(open(sys.argv[1]).readline()); print(eval(sys.argv[2]))" "$@"; }

for data in "" "--data $REAL/calib/layer3"; do
  what=${data:+real}; what=${what:-synthetic}
  # 1.0: no sparse candidate keeps all the mass: dense, with a warning and the note in --explain.
  run "$BIN/sattn-select" --min-recall 1.0 $data --explain "$OP" -o "$T/all.json"
  expect_rc 0 "$what: --min-recall 1.0"
  [[ $(field "$T/all.json" "p['spec']") == dense ]] && ok || fail "$what: --min-recall 1.0 selects dense"
  expect_err "sattn-select: warning: op 'real_layer3': no sparse candidate reaches recall 1 " "$what: the warning"
  expect_err "recall +target +density" "$what: --explain shows the recall column"
  expect_err "note: no sparse candidate meets recall >= 1 on the calibration data: dense is selected" "$what: --explain says so"
  # 0: the cheapest feasible candidate of the grid, whatever its recall.
  run "$BIN/sattn-select" --min-recall 0 $data "$OP" -o "$T/any.json"
  expect_rc 0 "$what: --min-recall 0"
  run field "$T/any.json" "[c['terms']['params'] for c in p['selection']['candidates'] if c['terms']['chosen']] == [min((c for c in p['selection']['candidates'] if c['feasible']), key=lambda c: c['cost'])['terms']['params']] and p['spec'] != 'dense' and len(p['selection']['candidates']) > 20"
  [[ $out == True ]] && ok || fail "$what: --min-recall 0 selects the cheapest of the grid"
  # 0.9: what was chosen keeps >= 0.9 on the calibration data (recomputed by sattn-eval from the
  # plan), and every cheaper candidate misses it.
  run "$BIN/sattn-select" --min-recall 0.9 $data "$OP" -o "$T/p9.json"
  expect_rc 0 "$what: --min-recall 0.9"
  run "$BIN/sattn-eval" "$T/p9.json" ${data:---seed 23159} -o "$T/p9-eval.json"
  expect_rc 0 "$what: sattn-eval on the plan"
  run $PY - "$T/p9.json" "$T/p9-eval.json" <<'PY'
import json, sys
plan = json.loads(open(sys.argv[1]).readline())
ev = json.load(open(sys.argv[2]))
got = ev["results"][0]["summary"]["worst_head_recall"]
cands = plan["selection"]["candidates"]
(chosen,) = [c for c in cands if c["terms"]["chosen"]]
# The plan's mean is sattn-eval's worst head mean recall; the bound compared with R is below it
# (strictly, on data whose rows vary) and reaches R.
bound = chosen["terms"]["recall"]
assert abs(chosen["terms"]["recall_mean"] - got) < 1e-9, (chosen["terms"]["recall_mean"], got)
assert 0.9 <= bound and (bound < got or plan["spec"] == "dense"), (bound, got)
for c in cands:
    if "recall" in c["terms"] and c["spec"] != "dense":
        assert c["terms"]["recall"] <= c["terms"]["recall_mean"] + 1e-12, c
    if c["feasible"] and c["cost"] < chosen["cost"]:
        assert c["terms"]["recall"] < 0.9, c
print(plan["spec"], chosen["terms"]["params"], got)
PY
  expect_rc 0 "$what: the choice meets 0.9 (sattn-eval agrees) and every cheaper candidate misses it"
done

# A recall plan carries the chosen parameters in its op: the tools downstream read it (layer 2 at
# 0.9 chooses a bsr keep ratio other than the default).
run "$BIN/sattn-select" --min-recall 0.9 --data "$REAL/calib/layer2" "$REAL/ops/layer2.json" -o "$T/l2.json"
expect_rc 0 "layer 2 at 0.9"
expect_out_file() { grep -qE -- "$1" "$2" && ok || fail "$3: $2 should match /$1/"; }
expect_out_file '"keep_ratio":0.7' "$T/l2.json" "the op carries the chosen keep_ratio"
run "$SATTN" eval "$T/l2.json" --data "$REAL/eval/layer2" --format text
expect_rc 0 "sattn eval reads the recall plan"
expect_out "real_layer2 +bsr +keep_ratio=0.7,block_size=32 +0 +all" "sattn eval evaluates the chosen point"
run "$SATTN" run "$T/l2.json" --data "$REAL/eval/layer2"
expect_rc 0 "sattn run runs the recall plan"
run bash -c "'$SATTN' emit '$T/l2.json' --out-dir '$T/l2-out' >/dev/null && '$SATTN' eval '$T/l2-out/artifacts.json' --format text"
expect_rc 0 "sattn emit, then sattn eval on its artifacts"
expect_out "bsr +keep_ratio=0.7,block_size=32 .* all" "the artifacts' layout evaluated"

# The environment and the profile; flags outrank both, the environment the profile.
run env SATTN_MIN_RECALL=1 "$BIN/sattn-select" -q "$OP"
[[ $(field <(echo "$out") "p['spec']+' '+p['selection']['kind']") == "dense recall" ]] && ok || fail "SATTN_MIN_RECALL=1: dense"
expect_no_out_err() { [[ -z $err ]] && ok || fail "$1: stderr should be empty"; }
expect_no_out_err "-q silences the warning"
run env SATTN_MIN_RECALL=1 "$BIN/sattn-select" --min-recall 0 "$OP"
[[ $(field <(echo "$out") "p['spec']") != dense ]] && ok || fail "--min-recall outranks SATTN_MIN_RECALL"
cat >"$T/prof.yaml" <<'Y'
schema: sattn.profile/v1
name: quality
select:
  min_recall: 1.0
Y
run "$BIN/sattn-select" --profile "$T/prof.yaml" "$OP"
expect_rc 0 "profile select.min_recall"
expect_out '"min_recall":1' "the plan records the target"
expect_out 'profile .*min_recall: 1' "the reason names the profile"
run env SATTN_MIN_RECALL=0 "$BIN/sattn-select" --profile "$T/prof.yaml" "$OP"
[[ $(field <(echo "$out") "p['spec']") != dense ]] && ok || fail "SATTN_MIN_RECALL outranks the profile"
# The other tools that select bare ops honour SATTN_MIN_RECALL (calibrating on the synthetic sample).
run env SATTN_MIN_RECALL=1 "$SATTN" run "$OP" --data "$REAL/eval/layer3"
expect_rc 0 "sattn run under SATTN_MIN_RECALL=1"
expect_out '"spec":"dense"' "sattn run: dense"
expect_out '"kind":"recall"' "sattn run: a recall selection"
# The plan validates against its schema.
run $PY -c "import json,jsonschema,sys; jsonschema.validate(json.loads(open('$T/p9.json').readline()), json.load(open('$SRC/schemas/plan.schema.json')))"
expect_rc 0 "a recall plan validates"
# Without a target, nothing changes: the cost model decides as before.
run "$BIN/sattn-select" "$OP"
expect_out '"kind":"default"' "no target: the usual selection"

# --recall-confidence C: the bound is mean - sqrt(2) z(C) se per head; 0.5 compares the plain mean.
# Recomputed here from each candidate's recall_heads ([mean, se] per head); a lower confidence
# never chooses a dearer point; SATTN_RECALL_CONFIDENCE and the profile's select.recall_confidence
# rank below the flag; bad values are usage errors (exit 2), a bad profile value invalid input.
for c in 0.5 0.8 0.99; do
  run "$BIN/sattn-select" --min-recall 0.9 --recall-confidence $c --data "$REAL/calib/layer2" "$REAL/ops/layer2.json" -o "$T/c$c.json"
  expect_rc 0 "--recall-confidence $c"
  run $PY - "$T/c$c.json" $c <<'PY'
import json, sys
from statistics import NormalDist
plan = json.loads(open(sys.argv[1]).readline())
k = 2 ** 0.5 * NormalDist().inv_cdf(float(sys.argv[2]))
assert ("at confidence " + sys.argv[2]) in plan["selection"]["reason"], plan["selection"]["reason"]
for c in plan["selection"]["candidates"]:
    if "recall_heads" in c["terms"]:
        want = min(min(1.0, max(0.0, m - k * se)) for m, se in c["terms"]["recall_heads"])
        assert abs(c["terms"]["recall"] - want) < 1e-12, (c["terms"], want)
print(plan["spec"], int(round([c["cost"] for c in plan["selection"]["candidates"] if c["terms"]["chosen"]][0])))
PY
  expect_rc 0 "--recall-confidence $c: the bound is mean - sqrt(2) z(C) se"
  cost[${c/./}]=${out##* }
done
(( ${cost[05]} <= ${cost[08]} && ${cost[08]} <= ${cost[099]} )) && ok || fail "a lower confidence never chooses a dearer point (${cost[*]})"
run env SATTN_RECALL_CONFIDENCE=0.5 "$BIN/sattn-select" -q --min-recall 0.9 --data "$REAL/calib/layer2" "$REAL/ops/layer2.json"
expect_out 'at confidence 0.5.*SATTN_RECALL_CONFIDENCE=0.5' "SATTN_RECALL_CONFIDENCE applies and is named"
run env SATTN_RECALL_CONFIDENCE=0.5 "$BIN/sattn-select" -q --min-recall 0.9 --recall-confidence 0.8 --data "$REAL/calib/layer2" "$REAL/ops/layer2.json"
expect_out 'at confidence 0.8.*--recall-confidence 0.8' "--recall-confidence outranks SATTN_RECALL_CONFIDENCE"
cat >"$T/conf.yaml" <<'Y'
schema: sattn.profile/v1
name: cheap
select:
  min_recall: 0.9
  recall_confidence: 0.6
Y
run "$BIN/sattn-select" -q --profile "$T/conf.yaml" "$OP"
expect_out 'at confidence 0.6.*select.recall_confidence: 0.6' "the profile's select.recall_confidence"
run env SATTN_RECALL_CONFIDENCE=0.7 "$BIN/sattn-select" -q --profile "$T/conf.yaml" "$OP"
expect_out 'at confidence 0.7' "SATTN_RECALL_CONFIDENCE outranks the profile"
for c in 1 0.4 x; do
  run "$BIN/sattn-select" --min-recall 0.9 --recall-confidence=$c "$OP"
  expect_rc 2 "--recall-confidence $c"
  expect_err "sattn-select: error: .*--recall-confidence" "--recall-confidence $c: the flag is named"
done
run env SATTN_RECALL_CONFIDENCE=1 "$BIN/sattn-select" --min-recall 0.9 "$OP"
expect_rc 2 "SATTN_RECALL_CONFIDENCE=1"
expect_err "SATTN_RECALL_CONFIDENCE" "names the variable"
printf 'schema: sattn.profile/v1\nname: bad\nselect:\n  recall_confidence: 1\n' >"$T/badconf.yaml"
run "$BIN/sattn-select" --min-recall 0.9 --profile "$T/badconf.yaml" "$OP"
expect_rc 3 "select.recall_confidence: 1"
expect_err "badconf.yaml:4:[0-9]+: .*recall_confidence" "the profile's position is named"

# Several samples pool: per head, the mean over the samples minus z(C) x their sd x sqrt(1 + 1/n)
# (a prediction bound for one more window); the worst head's bound is the point's recall and
# recall_mean the worst head's mean over the samples. Recomputed here from recall_heads ([mean, se]
# per sample and head, sample by sample); the chosen point is the cheapest whose bound reaches R.
# Three samples: layer 2's calib and eval windows, and the calib window once more (only two windows
# of real text ship; a repeated sample is still a sample of the formula).
for c in 0.95 0.8; do
  run "$BIN/sattn-select" --min-recall 0.9 --recall-confidence $c --data "$REAL/calib/layer2" --data "$REAL/eval/layer2" \
    --data "$REAL/calib/layer2" "$REAL/ops/layer2.json" -o "$T/pooled$c.json"
  expect_rc 0 "three samples, confidence $c"
  run $PY - "$T/pooled$c.json" $c <<'PY'
import json, sys
from statistics import NormalDist
plan = json.loads(open(sys.argv[1]).readline())
z = NormalDist().inv_cdf(float(sys.argv[2]))
assert "3 calibration samples, pooled" in plan["selection"]["reason"], plan["selection"]["reason"]
cands = plan["selection"]["candidates"]
(chosen,) = [c for c in cands if c["terms"]["chosen"]]
for c in cands:
    rh = c["terms"].get("recall_heads")
    if not rh:
        continue
    heads = len(rh) // 3
    assert len(rh) == 3 * heads == 18, len(rh)
    bounds, means = [], []
    for h in range(heads):
        m = [rh[s * heads + h][0] for s in range(3)]
        mu = sum(m) / 3
        sd = (sum((x - mu) ** 2 for x in m) / 2) ** 0.5
        bounds.append(min(1.0, max(0.0, mu - z * sd * (1 + 1 / 3) ** 0.5)))
        means.append(mu)
    assert abs(c["terms"]["recall"] - min(bounds)) < 1e-12, (c["terms"]["recall"], min(bounds))
    assert abs(c["terms"]["recall_mean"] - min(means)) < 1e-12, (c["terms"]["recall_mean"], min(means))
    if c["feasible"] and c["cost"] < chosen["cost"]:
        assert c["terms"]["recall"] < 0.9, c
assert chosen["spec"] == "dense" or chosen["terms"]["recall"] >= 0.9
print(plan["spec"], chosen["terms"]["params"])
PY
  expect_rc 0 "three samples, confidence $c: the pooled bound, recomputed"
done

# --recall-bound mean (SATTN_RECALL_BOUND=mean): a confidence bound for the mean over windows.
# One sample: mean - z(C) se per head (the band standard error standing for one window's spread;
# the window bound is sqrt(2) z se); two samples: mean - z(C) sd sqrt(1/2). Recomputed from
# recall_heads; the flag outranks the variable, and both are named in the reason.
for how in flag env; do
  for n in 1 2; do
    data=(--data "$REAL/calib/layer2")
    [[ $n == 2 ]] && data+=(--data "$REAL/eval/layer2")
    if [[ $how == flag ]]; then
      run "$BIN/sattn-select" --min-recall 0.9 --recall-bound mean "${data[@]}" "$REAL/ops/layer2.json" -o "$T/mean$n.json"
    else
      run env SATTN_RECALL_BOUND=mean "$BIN/sattn-select" --min-recall 0.9 "${data[@]}" "$REAL/ops/layer2.json" -o "$T/mean$n.json"
    fi
    expect_rc 0 "--recall-bound mean ($how), $n samples"
    run $PY - "$T/mean$n.json" $n $how <<'PY'
import json, sys
from statistics import NormalDist
plan = json.loads(open(sys.argv[1]).readline())
n, how = int(sys.argv[2]), sys.argv[3]
z = NormalDist().inv_cdf(0.95)
reason = plan["selection"]["reason"]
assert "for the mean over text" in reason, reason
assert ("--recall-bound mean" if how == "flag" else "SATTN_RECALL_BOUND=mean") in reason, reason
cands = plan["selection"]["candidates"]
(chosen,) = [c for c in cands if c["terms"]["chosen"]]
for c in cands:
    rh = c["terms"].get("recall_heads")
    if not rh:
        continue
    heads = len(rh) // n
    bounds = []
    for h in range(heads):
        if n == 1:
            m, se = rh[h]
            bounds.append(min(1.0, max(0.0, m - z * se)))
        else:
            m = [rh[s * heads + h][0] for s in range(n)]
            mu = sum(m) / n
            sd = (sum((x - mu) ** 2 for x in m) / (n - 1)) ** 0.5
            bounds.append(min(1.0, max(0.0, mu - z * sd * (1 / n) ** 0.5)))
    assert abs(c["terms"]["recall"] - min(bounds)) < 1e-12, (c["terms"]["recall"], min(bounds))
    if c["feasible"] and c["cost"] < chosen["cost"]:
        assert c["terms"]["recall"] < 0.9, c
assert chosen["spec"] == "dense" or chosen["terms"]["recall"] >= 0.9
PY
    expect_rc 0 "--recall-bound mean ($how), $n samples: the bound, recomputed"
  done
done
# --recall-bound cv: the mean bound at the confidence leave-one-out cross-validation over 4 or more
# samples picks (here the two windows, each twice); the reason names the confidence, and the choice
# is the one --recall-bound mean makes at that confidence; from the variable and the profile too.
# Fewer samples: the mean bound at the given confidence, said so.
cv4=(--data "$REAL/calib/layer2" --data "$REAL/eval/layer2" --data "$REAL/calib/layer2" --data "$REAL/eval/layer2")
for r in 0.8 0.9 0.95; do
  run "$BIN/sattn-select" -q --min-recall $r --recall-bound cv "${cv4[@]}" "$REAL/ops/layer2.json" -o "$T/cv$r.json"
  expect_rc 0 "--recall-bound cv, R $r"
  conf=$($PY -c "import json,re,sys; r=json.loads(open(sys.argv[1]).readline())['selection']['reason']; print(re.search(r'; confidence ([0-9.]+) chosen by leave-one-out cross-validation over the 4 samples \(out-of-sample recall [0-9.]+\)', r).group(1))" "$T/cv$r.json")
  [[ -n $conf ]] && ok || fail "--recall-bound cv, R $r: the reason names the chosen confidence"
  run "$BIN/sattn-select" -q --min-recall $r --recall-bound mean --recall-confidence "$conf" "${cv4[@]}" "$REAL/ops/layer2.json" -o "$T/cvmean$r.json"
  expect_rc 0 "--recall-bound mean at cv's confidence $conf, R $r"
  run $PY -c "import json,sys; a,b=(json.loads(open(f).readline()) for f in sys.argv[1:]); assert (a['spec'], a['params']) == (b['spec'], b['params']), (a['params'], b['params'])" "$T/cv$r.json" "$T/cvmean$r.json"
  expect_rc 0 "--recall-bound cv, R $r: the choice of the mean bound at confidence $conf"
done
run env SATTN_RECALL_BOUND=cv "$BIN/sattn-select" -q --min-recall 0.9 "${cv4[@]}" "$REAL/ops/layer2.json"
expect_out 'cross-validation over the 4 samples.*SATTN_RECALL_BOUND=cv' "SATTN_RECALL_BOUND=cv applies and is named"
printf 'schema: sattn.profile/v1\nname: cv\nselect:\n  min_recall: 0.9\n  recall_bound: cv\n' >"$T/cv.yaml"
run "$BIN/sattn-select" -q --profile "$T/cv.yaml" "${cv4[@]}" "$REAL/ops/layer2.json"
expect_out 'cross-validation over the 4 samples.*select.recall_bound: cv' "the profile's select.recall_bound: cv"
run "$BIN/sattn-select" -q --min-recall 0.9 --recall-bound cv --data "$REAL/calib/layer2" "$REAL/ops/layer2.json"
expect_out 'at confidence 0.95 for the mean over text.*cv needs 4 or more samples: the mean bound at 0.95' "--recall-bound cv with one sample: the mean bound, said so"
run env SATTN_RECALL_BOUND=mean "$BIN/sattn-select" -q --min-recall 0.9 --recall-bound window --data "$REAL/calib/layer2" "$REAL/ops/layer2.json"
expect_out '--recall-bound window' "--recall-bound outranks SATTN_RECALL_BOUND"
printf 'schema: sattn.profile/v1\nname: bound\nselect:\n  min_recall: 0.9\n  recall_bound: mean\n' >"$T/bound.yaml"
run "$BIN/sattn-select" -q --profile "$T/bound.yaml" --data "$REAL/calib/layer2" "$REAL/ops/layer2.json"
expect_out 'for the mean over text.*select.recall_bound: mean' "the profile's select.recall_bound"
run env SATTN_RECALL_BOUND=window "$BIN/sattn-select" -q --profile "$T/bound.yaml" --data "$REAL/calib/layer2" "$REAL/ops/layer2.json"
expect_out 'SATTN_RECALL_BOUND=window' "SATTN_RECALL_BOUND outranks the profile"
printf 'schema: sattn.profile/v1\nname: bad\nselect:\n  recall_bound: median\n' >"$T/badbound.yaml"
run "$BIN/sattn-select" --min-recall 0.9 --profile "$T/badbound.yaml" "$OP"
expect_rc 3 "select.recall_bound: median"
expect_err "badbound.yaml:4:[0-9]+: .*recall_bound" "the profile's position is named"
run "$BIN/sattn-select" --min-recall 0.9 --recall-bound median "$OP"
expect_rc 2 "--recall-bound median"
expect_err "sattn-select: error: .*--recall-bound" "--recall-bound median: the flag is named"
run env SATTN_RECALL_BOUND=median "$BIN/sattn-select" --min-recall 0.9 "$OP"
expect_rc 2 "SATTN_RECALL_BOUND=median"
expect_err "SATTN_RECALL_BOUND.*window, mean or cv" "names the variable and the values"

# Bad input: exit 3.
for r in 1.5 -0.1; do
  run "$BIN/sattn-select" --min-recall=$r "$OP"
  expect_rc 3 "--min-recall $r"
  expect_err "sattn-select: error: --min-recall must be from 0 to 1" "--min-recall $r: the message"
done
run env SATTN_MIN_RECALL=2 "$BIN/sattn-select" "$OP"
expect_rc 2 "SATTN_MIN_RECALL out of range"
expect_err "SATTN_MIN_RECALL" "names the variable"
mkdir -p "$T/nan" "$T/short"
$PY "$SRC/tests/cli/eval/make_data.py" "$T/nan" 1 6 2 1024 1024 64 1 nan
$PY "$SRC/tests/cli/eval/make_data.py" "$T/short" 1 6 2 512 512 64 1
run "$BIN/sattn-select" --min-recall 0.5 --data "$T/nan" "$OP" -o "$T/none.json"
expect_rc 3 "NaN in the calibration data"
expect_err "$T/nan/k.npy.*NaN" "the file is named"
expect_no_file "$T/none.json" "nothing written"
run "$BIN/sattn-select" --min-recall 0.5 --data "$T/short" "$OP"
expect_rc 3 "calibration data of another shape"
expect_err "$T/short/q.npy.*does not match the op" "the file is named"
finish
