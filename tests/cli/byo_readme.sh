# README "Bring your own data": its numpy block makes a data directory and its sh block runs a
# bare op on it. Both are taken from README.md as written and run in a temp directory.
source "$(dirname "$0")/lib.sh"
section=$(awk '/^## Bring your own data/{s=1;next} s && /^## /{exit} s' "$SRC/README.md")
py=$(awk '/^```python$/{f=1;next} f && /^```$/{exit} f' <<<"$section")
sh=$(awk '/^```sh$/{f=1;next} f && /^```$/{exit} f' <<<"$section")
[[ $(wc -l <<<"$py") -eq 5 ]] && ok || fail "the numpy example is 5 lines: [$py]"
[[ -n $sh ]] && ok || fail "README has the sh block"
mkdir "$T/w"
run bash -c "cd '$T/w' && '$PY' -c \"\$1\"" _ "$py"
expect_rc 0 "the numpy block runs"
run "$PY" -c "import numpy as np; q=np.load('$T/w/mydata/q.npy'); k=np.load('$T/w/mydata/k.npy'); assert q.shape==(1,8,512,64) and k.shape==(1,2,512,64), (q.shape, k.shape)"
expect_rc 0 "it writes q [1, 8, 512, 64] and k [1, 2, 512, 64]"
# The sh block, with build/bin/sattn meaning the sattn under test.
run bash -c "cd '$T/w' && PATH='$(dirname "$SATTN")':\$PATH && set -e && ${sh//build\/bin\/sattn/sattn}"
expect_rc 0 "the sh block runs"
expect_out "^op0 +dense +fp32 .* ok$" "the op runs dense and passes the check"
expect_err "heads 8, kv_heads 2, seq_len 512, kv_len 512, head_dim 64 taken from mydata/" "the shape comes from the data"
finish
