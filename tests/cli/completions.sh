# Completion scripts: the committed files are what `sattn completions` generates, and every long
# option of every tool appears in each of them.
source "$(dirname "$0")/lib.sh"

for sh in bash zsh fish; do
  run "$SATTN" completions $sh
  expect_rc 0 "completions $sh"
  ext=$sh
  [[ $sh == zsh ]] && f="$SRC/completions/_sattn" || f="$SRC/completions/sattn.$ext"
  if diff -q <(echo "$out") "$f" >/dev/null; then ok; else fail "$f is stale: regenerate with 'sattn completions $sh > $f'"; fi
done

run "$SATTN" completions bash
bash -n <(echo "$out") && ok || fail "bash script parses"
run "$SATTN" completions tcsh
expect_rc 2 "unknown shell"

# Every long option of every tool (read from its --help) is in every script.
for tool in $("$SATTN" --help | awk '/^Tools:/{t=1;next} t && /^  [a-z]/{print $1}'); do
  for opt in $("$SATTN" help "$tool" | grep -oE -- '--[a-z][a-z0-9-]+' | sort -u); do
    [[ $opt == --help ]] && continue
    name=${opt#--}
    grep -q -- "$opt" "$SRC/completions/sattn.bash" && ok || fail "bash completion lacks $tool $opt"
    grep -q -- "$opt" "$SRC/completions/_sattn" && ok || fail "zsh completion lacks $tool $opt"
    grep -q -- "-l $name" "$SRC/completions/sattn.fish" && ok || fail "fish completion lacks $tool $opt"
  done
done

finish
