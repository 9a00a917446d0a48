# The shipped real activations (data/, issue 20): every layer's float16 Q/K/V reads through the
# tools (widened exactly to float32), runs on the cpu backend with the layer's op, and checks
# against the reference; dense and a sparse spec on the same data differ (the data has structure
# the layouts see), and the op's shape is what the arrays hold.
source "$(dirname "$0")/lib.sh"
BIN="$(dirname "$SATTN")"
for layer in 0 1 2 3; do
  for sample in calib eval; do
    run "$SATTN" run "$SRC/data/real/ops/layer$layer.json" --data "$SRC/data/real/$sample/layer$layer" --format json
    expect_rc 0 "layer $layer $sample: cpu run"
    expect_out '"source":"npy"' "layer $layer $sample: data read from the directory"
    expect_out '"passed":true' "layer $layer $sample: check against the reference"
  done
done
# The arrays are float16 [1, heads, 1024, 64] as the op says (6 query heads, 2 KV heads).
run /usr/bin/python3 - "$SRC/data/real/eval/layer1" <<'PY'
import sys, numpy as np
d = sys.argv[1]
q, k, v = (np.load(f"{d}/{n}.npy") for n in "qkv")
assert q.dtype == np.float16 and k.dtype == np.float16 and v.dtype == np.float16, (q.dtype, k.dtype, v.dtype)
assert q.shape == (1, 6, 1024, 64) and k.shape == (1, 2, 1024, 64) and v.shape == k.shape, (q.shape, k.shape)
assert np.isfinite(q).all() and np.isfinite(k).all() and np.isfinite(v).all()
print("ok")
PY
expect_rc 0 "numpy reads the arrays with the op's shape"
# A sliding window on real data loses attention mass that dense keeps: the outputs differ.
run "$SATTN" run "$SRC/data/real/ops/layer3.json" --data "$SRC/data/real/eval/layer3" --force-spec dense --out-dir "$T/dense" -q
expect_rc 0 "dense on layer 3"
run "$SATTN" run "$SRC/data/real/ops/layer3.json" --data "$SRC/data/real/eval/layer3" --force-spec sliding_window -q --out-dir "$T/sw"
expect_rc 0 "sliding_window on layer 3"
run /usr/bin/python3 -c "import numpy as np, sys; a=np.load('$T/dense/o.npy'); b=np.load('$T/sw/o.npy'); e=np.abs(a-b).max()/np.abs(a).max(); print(e); sys.exit(0 if 1e-3 < e < 2 else 1)"
expect_rc 0 "dense and sliding_window outputs differ on real data"
finish
