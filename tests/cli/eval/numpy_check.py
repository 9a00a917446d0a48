#!/usr/bin/env python3
"""Recall, oracle recall and output error of sattn-eval against a direct numpy computation.

usage: numpy_check.py EVAL_JSON DATA_DIR SPEC PARAM CAUSAL
SPEC is sliding_window (PARAM = window_size) or topk_per_query (PARAM = topk_k). The mask is
built here from the spec's definition (sattn-emit(1)), not from sattn's layout code.
"""
import json
import math
import sys

import numpy as np

doc = json.load(open(sys.argv[1]))
d = sys.argv[2]
spec, param, causal = sys.argv[3], int(sys.argv[4]), sys.argv[5] == "true"
q = np.load(f"{d}/q.npy").astype(np.float64)
k = np.load(f"{d}/k.npy").astype(np.float64)
v = np.load(f"{d}/v.npy").astype(np.float64)
B, H, S, D = q.shape
KVH, L = k.shape[1], k.shape[2]
G = H // KVH
off = L - S
scale = 1 / math.sqrt(D)
(res,) = [r for r in doc["results"] if r["spec"] == spec]
heads = res["samples"][0]["heads"]
assert len(heads) == B * H, len(heads)


def nearest_rank_p10(x):
    x = np.sort(x)
    return x[max(math.ceil(0.1 * len(x)), 1) - 1]


def close(a, b, what):
    if not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12):
        sys.exit(f"{what}: sattn-eval {a!r}, numpy {b!r}")


for h in range(H):
    kvh = h // G
    allowed = np.ones((S, L), bool)
    if causal:
        allowed = np.arange(L)[None, :] <= np.arange(S)[:, None] + off
    if spec == "sliding_window":
        pos = np.arange(S)[:, None] + off
        j = np.arange(L)[None, :]
        kept = (j >= pos - param) & (j <= (pos if causal else pos + param)) & allowed
    else:  # topk_per_query: the group-summed query's top-k allowed keys
        qs = q[0, kvh * G:(kvh + 1) * G].sum(axis=0)
        sc = qs @ k[0, kvh].T
        kept = np.zeros((S, L), bool)
        for i in range(S):
            idx = np.nonzero(allowed[i])[0]
            top = idx[np.argsort(-sc[i, idx], kind="stable")[:param]]
            kept[i, top] = True
    s = scale * (q[0, h] @ k[0, kvh].T)
    rows = allowed.any(axis=1)
    rec, ora, err_n, ref_n, err_max, ref_max = [], [], [], [], 0.0, 0.0
    for i in np.nonzero(rows)[0]:
        si = s[i, allowed[i]]
        p = np.exp(si - si.max())
        p /= p.sum()
        pk = np.where(kept[i, allowed[i]], p, 0.0)
        n = int(kept[i].sum())
        rec.append(pk.sum())
        ora.append(np.sort(p)[::-1][:n].sum())
        dense = p @ v[0, kvh][allowed[i]]
        if n:
            sk = s[i, kept[i]]
            w = np.exp(sk - sk.max())
            sparse = (w / w.sum()) @ v[0, kvh][kept[i]]
        else:
            sparse = np.zeros(D)
        err_n.append(np.linalg.norm(sparse - dense))
        ref_n.append(np.linalg.norm(dense))
        err_max = max(err_max, np.abs(sparse - dense).max())
        ref_max = max(ref_max, np.abs(dense).max())
    rec, ora = np.minimum(np.array(rec), 1), np.minimum(np.array(ora), 1)
    got = heads[h]
    tag = f"{spec} head {h}"
    close(got["density"], kept[rows].sum() / allowed[rows].sum(), tag + " density")
    for name, x in (("recall", rec), ("oracle", ora)):
        close(got[name]["min"], x.min(), f"{tag} {name} min")
        close(got[name]["p10"], nearest_rank_p10(x), f"{tag} {name} p10")
        close(got[name]["mean"], x.mean(), f"{tag} {name} mean")
    close(got["error"]["max_rel"], err_max / ref_max, tag + " max_rel")
    close(got["error"]["mean_rel"], sum(err_n) / sum(ref_n), tag + " mean_rel")
    assert 0 < rec.mean() < 1, (tag, rec.mean())  # the case is not trivial
print("ok")
