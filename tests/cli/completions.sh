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
grep -q '^#compdef sattn sattn-opt ' "$SRC/completions/_sattn" && ok || fail "zsh script completes sattn-opt"
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

# --- Every executable (issue 21): sattn-select, sattn-emit, ... complete their own options ------------
BIN=$(dirname "$SATTN")
standalone=()
for exe in "$BIN"/sattn-*; do
  name=$(basename "$exe")
  [[ -x $exe && $name != sattn-opt && $name != sattn-accel-* && $name != *.* ]] || continue
  "$exe" --help >/dev/null 2>&1 || continue   # a tool answers --help; helper binaries need not
  standalone+=("$name")
done
[[ ${#standalone[@]} -ge 8 ]] && ok || fail "found the tool executables: ${standalone[*]}"
# The commands the install rules put completion files under (set(SATTN_COMPLETED_COMMANDS ...)).
installed=$(awk '/^set\(SATTN_COMPLETED_COMMANDS/{f=1} f{print} f&&/\)/{exit}' "$SRC/CMakeLists.txt" | tr -d '()' | tr -s ' \n' ' ')
[[ " $installed " == *" sattn "* && " $installed " == *" sattn-opt "* ]] && ok || fail "sattn and sattn-opt get completion files ($installed)"
for name in "${standalone[@]}"; do
  grep -q "^complete -o filenames -F _sattn sattn .*\b$name\b" "$SRC/completions/sattn.bash" && ok || fail "bash: complete names $name"
  grep -q "^#compdef .*\b$name\b" "$SRC/completions/_sattn" && ok || fail "zsh: #compdef names $name"
  grep -q "^complete -c $name " "$SRC/completions/sattn.fish" && ok || fail "fish: completions for $name"
  # Every long option of the executable's --help is in its own fish lines (bash and zsh share
  # the umbrella's tool table, checked above).
  for opt in $("$BIN/$name" --help | grep -oE -- '--[a-z][a-z0-9-]+' | sort -u); do
    [[ $opt == --help ]] && continue
    grep -q -- "^complete -c $name .*-l ${opt#--}\b" "$SRC/completions/sattn.fish" && ok || fail "fish: $name lacks $opt"
  done
  # The install rules put each script under the executable's name (bash-completion and fish load
  # a command's completions on demand from a file named after it).
  [[ " $installed " == *" $name "* ]] && ok || fail "CMakeLists.txt installs completions for $name (SATTN_COMPLETED_COMMANDS: $installed)"
done

complete_cmd() {  # as complete_line, but the first word is the command itself (sattn-select ...)
  (cd "$SRC" && PATH="$(dirname "$SATTN"):$PATH" bash -c '
    source "$0"
    COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
    _sattn 2>/dev/null
    printf "%s\n" "${COMPREPLY[@]}"' "$SRC/completions/sattn.bash" "$@")
}
got=$(complete_cmd sattn-select --force-spec top)
[[ $got == topk_per_query ]] && ok || fail "sattn-select --force-spec top<TAB> (got: $got)"
got=$(complete_cmd sattn-emit --lay)
[[ $got == --layout ]] && ok || fail "sattn-emit --lay<TAB> (got: $got)"
got=$(complete_cmd sattn-run-rvv --vlen "")
[[ $got == $'128\n256\n512\n1024' ]] && ok || fail "sattn-run-rvv --vlen <TAB> (got: $got)"
got=$(complete_cmd /usr/bin/sattn-calibrate --prec)
[[ $got == --precision ]] && ok || fail "a command given by its path (got: $got)"
got=$(complete_cmd sattn-select examples/bs)
[[ $got == examples/bsr.mlir ]] && ok || fail "sattn-select op files (got: $got)"
got=$(complete_cmd sattn-select --select)
[[ -z $got ]] && ok || fail "sattn-select: no tool names where options go (got: $got)"

# Comma-separated lists: the items typed so far are kept, the last one completes.
got=$(complete_line sattn bench --specs bsr,sl)
[[ $got == bsr,sliding_window ]] && ok || fail "--specs bsr,sl<TAB> (got: $got)"
got=$(complete_line sattn bench --precisions fp32,i)
[[ $got == $'fp32,i8\nfp32,i4' ]] && ok || fail "--precisions fp32,i<TAB> (got: $got)"
got=$(complete_line sattn bench --backends "")
[[ $got == $'cpu\nrvv\nrocc\nimc' ]] && ok || fail "--backends <TAB> (got: $got)"
got=$(complete_line sattn run --disable bsr,dense,to)
[[ $got == bsr,dense,topk_per_query ]] && ok || fail "--disable bsr,dense,to<TAB> (got: $got)"
got=$(complete_line sattn bench --kernels rvv,s)
[[ $got == rvv,scalar ]] && ok || fail "--kernels rvv,s<TAB> (got: $got)"

# --opt=VALUE, as bash splits it by default (COMP_WORDBREAKS has '='): "--opt" "=" "VALUE".
got=$(complete_line sattn run --format =)
[[ $got == $'json\ntext' ]] && ok || fail "--format=<TAB> (got: $got)"
got=$(complete_line sattn run --format = j)
[[ $got == json ]] && ok || fail "--format=j<TAB> (got: $got)"
got=$(complete_line sattn bench --specs = bsr,l)
[[ $got == $'bsr,lsh\nbsr,landmark' || $got == $'bsr,landmark\nbsr,lsh' ]] && ok || fail "--specs=bsr,l<TAB> (got: $got)"
got=$(complete_cmd sattn-select --layout = bs)
[[ $got == bshd ]] && ok || fail "sattn-select --layout=bs<TAB> (got: $got)"
got=$(complete_line sattn run --check = sa)
[[ $got == sample ]] && ok || fail "--check=sa<TAB> (got: $got)"
# ... and with '=' removed from COMP_WORDBREAKS (one word "--opt=VALUE"): the prefix is kept.
got=$(complete_line sattn run --format=t)
[[ $got == --format=text ]] && ok || fail "--format=t as one word (got: $got)"
got=$(complete_line sattn bench --specs=dense,bs)
[[ $got == $'--specs=dense,bsr' ]] && ok || fail "--specs=dense,bs as one word (got: $got)"
got=$(complete_line sattn run --quiet = x)
[[ -z $got ]] && ok || fail "a flag that takes no value offers none (got: $got)"

# The scripts are syntactically valid where the shells exist.
command -v zsh >/dev/null && { zsh -n "$SRC/completions/_sattn" && ok || fail "zsh -n"; }
command -v fish >/dev/null && { fish -n "$SRC/completions/sattn.fish" && ok || fail "fish -n"; }
finish
