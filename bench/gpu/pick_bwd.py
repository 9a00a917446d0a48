"""Picks the backward and forward tile macros from bench/gpu/bwd_variants.sh's output: per head_dim, the
variant with the smallest geometric mean of (backward time / the first variant's) over the
measured configurations, among those whose GPU tests passed; a variant less than 2% faster than
the first (the reference) does not replace it. Prints the nvcc flags (-D...) of
the pick, and a line per head_dim on stderr.

Usage: python3 bench/gpu/pick_bwd.py BWD_VARIANTS.json TESTS.txt "name:-DA=1,-DB=2 ..."
"""
import json, math, re, sys

rows = json.load(open(sys.argv[1]))
tests = open(sys.argv[2]).read()
variants = {}
for v in sys.argv[3].split():
    name, defs = v.split(":", 1)
    variants[name] = dict(d[2:].split("=") for d in defs.split(",") if d)
passed = {n for n in variants if re.search(r"^== %s: .*exit 0" % re.escape(n), tests, re.M)}
defaults = {"SATTN_BWD_DQ_WARPS_64": "4", "SATTN_BWD_DQ_WARPS_128": "4", "SATTN_BWD_KV_WARPS_64": "4",
            "SATTN_BWD_KV_WARPS_128": "4", "SATTN_BWD_KV_KS64": "64", "SATTN_BWD_KV_MINB": "1",
            "SATTN_BWD_DQ_FUSED_64": "1", "SATTN_BWD_DQ_FUSED_128": "1",
            "SATTN_FWD_WARPS_128": "4", "SATTN_FWD_KS_128": "32", "SATTN_FWD_MINB_128": "1",
            "SATTN_FWD_WARPS_64": "4", "SATTN_FWD_KS_64": "64", "SATTN_FWD_MINB_64": "1"}
# (what is timed, head_dim): the macros picked from that time's best variant.
per_dim = {("bwd", 64): ("SATTN_BWD_DQ_WARPS_64", "SATTN_BWD_KV_WARPS_64", "SATTN_BWD_KV_KS64", "SATTN_BWD_KV_MINB",
                         "SATTN_BWD_DQ_FUSED_64"),
           ("bwd", 128): ("SATTN_BWD_DQ_WARPS_128", "SATTN_BWD_KV_WARPS_128", "SATTN_BWD_DQ_FUSED_128"),
           ("fwd", 64): ("SATTN_FWD_WARPS_64", "SATTN_FWD_KS_64", "SATTN_FWD_MINB_64"),
           ("fwd", 128): ("SATTN_FWD_WARPS_128", "SATTN_FWD_KS_128", "SATTN_FWD_MINB_128")}
first = next(k[:-len("_bwd_ms")] for k in rows[0] if k.endswith("_bwd_ms"))
pick = dict(defaults)
for (what, D), keys in per_dim.items():
    # Only variants that change nothing of the other kind compete (a forward variant does not
    # pick the backward macros and vice versa).
    score = {}
    for n in passed:
        other = "SATTN_BWD_" if what == "fwd" else "SATTN_FWD_"
        if any(k.startswith(other) and variants[n][k] != defaults.get(k) for k in variants[n]):
            continue
        # ... and only variants that set one of these macros (or the reference): a variant for
        # the other head_dim would win here on noise alone.
        if n != first and not any(k in keys and variants[n][k] != defaults.get(k) for k in variants[n]):
            continue
        rs = [r for r in rows if r["head_dim"] == D and n + f"_{what}_ms" in r]
        if rs:
            score[n] = math.exp(sum(math.log(r[n + f"_{what}_ms"] / r[first + f"_{what}_ms"]) for r in rs) / len(rs))
    if not score:
        sys.exit("no variant passed its tests")
    best = min(score, key=score.get)
    if first in score and score[best] > 0.98 * score[first]:
        best = first  # within 2% of the reference: noise, keep it
    print(f"{what} head_dim {D}: {best} (time vs {first}: " +
          ", ".join(f"{n} {s:.3f}" for n, s in sorted(score.items(), key=lambda x: x[1])) + ")", file=sys.stderr)
    for k in keys:
        pick[k] = variants[best].get(k, defaults[k])
print(" ".join(f"-D{k}={v}" for k, v in pick.items()))
