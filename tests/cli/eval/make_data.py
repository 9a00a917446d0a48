#!/usr/bin/env python3
"""Writes random q/k/v .npy files: make_data.py DIR B H KVH S L D SEED [nan|f16]."""
import sys

import numpy as np

d, b, h, kvh, s, l, dim, seed = sys.argv[1], *map(int, sys.argv[2:9])
mode = sys.argv[9] if len(sys.argv) > 9 else ""
rng = np.random.default_rng(seed)
# Scaled so that attention is peaked enough for recall to vary between specs.
q = (rng.standard_normal((b, h, s, dim)) * 1.5).astype(np.float32)
k = (rng.standard_normal((b, kvh, l, dim)) * 1.5).astype(np.float32)
v = rng.standard_normal((b, kvh, l, dim)).astype(np.float32)
if mode == "nan":
    k[0, 0, l // 2, 1] = np.nan
dt = np.float16 if mode == "f16" else np.float32
for name, a in (("q", q), ("k", k), ("v", v)):
    np.save(f"{d}/{name}.npy", a.astype(dt))
