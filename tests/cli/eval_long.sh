# sattn-eval at seq_len 32768 (issue 20): it streams over rows, so its memory stays
# O(kv_len * head_dim), far below the 4 GiB a 32768^2 float score matrix would take. One head,
# head_dim 8 (the cost is the 32768^2 / 2 causal scores; a minute or less on two cores), the
# peak resident size under 512 MB, and the density of a causal window of 64 equal to its exact
# count.
source "$(dirname "$0")/lib.sh"
BIN="$(dirname "$SATTN")"
cat >"$T/long.json" <<'J'
{"schema": "sattn.op/v1", "name": "long", "heads": 1, "kv_heads": 1, "seq_len": 32768, "head_dim": 8, "causal": true, "window_size": 64}
J
run $PY - "$BIN/sattn-eval" "$T/long.json" "$T/out.json" <<'PY'
import json, resource, subprocess, sys
tool, op, out = sys.argv[1:4]
subprocess.run([tool, op, "--spec", "sliding_window", "-q", "-o", out], check=True)
peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
h = json.load(open(out))["results"][0]["samples"][0]["heads"][0]
n = 32768
exact = (sum(min(65, i + 1) for i in range(n))) / (n * (n + 1) / 2)
assert abs(h["density"] - exact) < 1e-12, (h["density"], exact)
assert h["rows"] == n, h["rows"]
assert 0 < h["recall"]["mean"] < h["oracle"]["mean"] <= 1, h
assert peak_mb < 512, peak_mb
print(f"peak {peak_mb:.0f} MB, density {h['density']:.5f}, recall {h['recall']['mean']:.4f}")
PY
expect_rc 0 "seq_len 32768: exact density, recall < oracle, peak RSS < 512 MB"
echo "$out"
finish
