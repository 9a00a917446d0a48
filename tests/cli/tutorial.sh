# docs/tutorial.md: every ```sh block, in order, as one shell session in a temp directory that
# holds examples/ and data/ (as the checkout's root does), with the built tools first in PATH and
# python3 being /usr/bin/python3. The ```console blocks (make demo, doctor) are not run here.
source "$(dirname "$0")/lib.sh"
BIN="$(dirname "$SATTN")"
doc="$SRC/docs/tutorial.md"
awk '/^```sh$/{f=1;next} f && /^```$/{f=0;print "";next} f' "$doc" >"$T/tutorial.sh"
[[ $(grep -c . "$T/tutorial.sh") -ge 20 ]] && ok || fail "the tutorial has its sh blocks"
mkdir -p "$T/w" "$T/py"
ln -s "$SRC/examples" "$T/w/examples"
ln -s "$SRC/data" "$T/w/data"
ln -s /usr/bin/python3 "$T/py/python3"
run env PATH="$BIN:$T/py:/usr/bin:/bin" MANPATH_BUILD="$(dirname "$BIN")/man" HOME="$T/w" \
  bash -euo pipefail -c "cd '$T/w' && source '$T/tutorial.sh'"
expect_rc 0 "the tutorial's commands run"
expect_out "^sattn [0-9.]+" "sattn --version"
expect_out "^mine +bsr +fp32 +0\.[0-9]+ .* ok$" "one op runs and passes"
expect_out "^op mine \(open.json:1:1\) on cpu: [a-z_]+ \[cost\]$" "--explain: the cost model chose"
expect_out "^numpy agrees: max relative error [0-9.]+e-[0-9]+$" "numpy agrees with sattn on the user's data"
expect_out "^mine +cpu +bsr" "backend all: cpu row"
expect_out "^mine +rvv +bsr" "backend all: rvv row"
expect_out "^mine +imc +bsr" "backend all: imc row"
expect_file "$T/w/out/o.npy" "the output array"
finish
