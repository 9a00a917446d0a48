# Every EXAMPLES pipeline of every man page runs and succeeds: each page's examples run in order
# (later lines may use files earlier lines wrote) in a fresh directory holding examples/, data/ and
# profiles/, with the built tools first in PATH.
source "$(dirname "$0")/lib.sh"
BIN="$(dirname "$SATTN")"
for page in "$SRC"/man/*.scd; do
  name=$(basename "$page" .scd)
  # sattn-opt is built only with MLIR (SATTN_MLIR); without it its page has nothing to run.
  [[ $name == sattn-opt.1 && ! -x $BIN/sattn-opt ]] && continue
  dir="$T/$name"
  mkdir -p "$dir"
  ln -s "$SRC/examples" "$dir/examples"
  ln -s "$SRC/profiles" "$dir/profiles"
  ln -s "$SRC/data" "$dir/data"
  # The lines inside ``` blocks of the EXAMPLES section as the rendered page shows them: scdoc
  # turns \\ into \ and drops a lone \ (so 'a\nb' reads 'anb' on the page: write 'a\\nb').
  awk '/^# EXAMPLES/{e=1;next} /^# /{e=0} e' "$page" | awk '/^```/{c=!c;next} c' |
    sed 's/\\\\/\x01/g; s/\\//g; s/\x01/\\/g' >"$dir/examples.sh"
  [[ -s $dir/examples.sh ]] || continue
  n=0
  while IFS= read -r line; do
    [[ -z $line || $line == \#* ]] && continue
    n=$((n + 1))
    printf '%s\n' "$line" >"$dir/line.sh"
    run env HOME="$dir" XDG_CONFIG_HOME= PATH="$BIN:/usr/bin:$PATH" bash -o pipefail -c "cd '$dir' && source ./line.sh"
    expect_rc 0 "$name example $n: $line"
  done <"$dir/examples.sh"
done
finish
