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

# Real bash completion: source the committed script, set COMP_WORDS/COMP_CWORD as bash would
# for a partial command line, call the function, and read COMPREPLY. `sattn` must be in PATH
# (profile names come from `sattn profile list -q`); run from the source tree so ./profiles exist.
complete_line() {  # complete_line WORD... : completes the last word; prints COMPREPLY, one per line
  (cd "$SRC" && PATH="$(dirname "$SATTN"):$PATH" bash -c '
    source "$0"
    COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
    _sattn
    printf "%s\n" "${COMPREPLY[@]}"' "$SRC/completions/sattn.bash" "$@")
}
got=$(complete_line sattn se)
[[ $got == *select* ]] && ok || fail "sattn se<TAB> offers select (got: $got)"
got=$(complete_line sattn select --forc)
[[ $got == --force-spec ]] && ok || fail "sattn select --forc<TAB> is --force-spec (got: $got)"
got=$(complete_line sattn select --force-spec top)
[[ $got == topk_per_query ]] && ok || fail "spec names complete (got: $got)"
got=$(complete_line sattn run --format "")
[[ $got == $'json\ntext' ]] && ok || fail "--format values (got: $got)"
got=$(complete_line sattn select --profile low)
[[ $got == lowpower ]] && ok || fail "profile names complete (got: $got)"
got=$(complete_line sattn profile sh)
[[ $got == show ]] && ok || fail "profile actions complete (got: $got)"
got=$(complete_line sattn profile show hi)
[[ $got == highperf ]] && ok || fail "profile show completes names (got: $got)"
got=$(complete_line sattn completions z)
[[ $got == zsh ]] && ok || fail "shell names complete (got: $got)"
got=$(complete_line sattn run examples/bs)
[[ $got == examples/bsr.mlir ]] && ok || fail "op files complete (got: $got)"

# sattn-opt (built with MLIR): its passes, pipelines and pass options, in every script; where it
# is built, every sattn pass and pipeline its --help lists.
opt_flags="-sattn-select-spec -sattn-lower-rvv -sattn-lower-rocc -sattn-to-rvv -sattn-to-rocc -pass-pipeline -mlir-print-op-generic"
if [[ -x $(dirname "$SATTN")/sattn-opt ]]; then
  opt_flags+=" $("$(dirname "$SATTN")"/sattn-opt --help | grep -oE -- '--sattn-[a-z-]+' | sed 's/^-//' | sort -u | tr '\n' ' ')"
  [[ $opt_flags == *"-sattn-to-rocc "*"-sattn-select-spec"* ]] && ok || fail "sattn-opt --help lists its passes: $opt_flags"
fi
for f in $opt_flags; do
  grep -q -- "$f" "$SRC/completions/sattn.bash" && ok || fail "bash completion lacks sattn-opt $f"
  grep -q -- "'$f" "$SRC/completions/_sattn" && ok || fail "zsh completion lacks sattn-opt $f"
  grep -q -- "-c sattn-opt -o ${f#-}" "$SRC/completions/sattn.fish" && ok || fail "fish completion lacks sattn-opt $f"
done
grep -q '^#compdef sattn sattn-opt$' "$SRC/completions/_sattn" && ok || fail "zsh script completes sattn-opt"
complete_opt() {  # as complete_line, for sattn-opt
  (cd "$SRC" && bash -c '
    source "$0"
    COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
    _sattn_opt 2>/dev/null
    printf "%s\n" "${COMPREPLY[@]}"' "$SRC/completions/sattn.bash" "$@")
}
got=$(complete_opt sattn-opt -sattn-lo)
[[ $got == $'-sattn-lower-rvv\n-sattn-lower-rocc' ]] && ok || fail "sattn-opt -sattn-lo<TAB> (got: $got)"
got=$(complete_opt sattn-opt -sattn-select-spec = pre)
[[ $got == $'prefer-bsr\nprefer-sw' ]] && ok || fail "sattn-opt pass options complete (got: $got)"
got=$(complete_opt sattn-opt examples/rin)
[[ $got == examples/ring.mlir ]] && ok || fail "sattn-opt input files complete (got: $got)"

finish
