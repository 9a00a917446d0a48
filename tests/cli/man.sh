# Man pages: every tool has one, and every long option of a tool is documented in it.
source "$(dirname "$0")/lib.sh"

for tool in $("$SATTN" --help | awk '/^Tools:/{t=1;next} t && /^  [a-z]/{print $1}'); do
  page="$SRC/man/sattn-$tool.1.scd"
  [[ $tool == completions || $tool == doctor || $tool == profile ]] && page="$SRC/man/sattn.1.scd"
  [[ -f $page ]] && ok || { fail "no man page for $tool ($page)"; continue; }
  for opt in $("$SATTN" help "$tool" | grep -oE -- '--[a-z][a-z0-9-]+' | sort -u); do
    [[ $opt == --help ]] && continue
    grep -q -- "\*$opt\*" "$page" && ok || fail "$page does not document $opt"
  done
done

# sattn-opt (built with MLIR): every sattn pass and pipeline its --help lists, and each of their
# options (the lines indented under them), is in sattn-opt(1).
OPT="$(dirname "$SATTN")/sattn-opt"
if [[ -x $OPT ]]; then
  help=$("$OPT" --help)
  opt_passes=$(grep -oE -- '^ +--sattn-[a-z-]+' <<<"$help" | tr -d ' ' | sort -u)
  opt_options=$(awk '/^ +--sattn-/{n=match($0,/[^ ]/); p=1; next} p && match($0,/[^ ]/)>n && /^ +--/{print $1; next} {p=0}' <<<"$help" |
    sed -E 's/^--//; s/=.*//' | sort -u)
  [[ $(wc -w <<<"$opt_passes") -ge 5 && $(wc -w <<<"$opt_options") -ge 7 ]] && ok || fail "sattn-opt --help: passes [$opt_passes] options [$opt_options]"
  for p in $opt_passes; do
    grep -q -- "\*${p#-}" "$SRC/man/sattn-opt.1.scd" && ok || fail "sattn-opt.1 does not document ${p#-}"
  done
  for o in $opt_options; do
    grep -q -- "\*$o\*" "$SRC/man/sattn-opt.1.scd" && ok || fail "sattn-opt.1 does not document the pass option $o"
  done
fi

# Each tool's page says how to invoke it: its SYNOPSIS names "sattn TOOL" and, where the tool is
# also its own executable, "sattn-TOOL"; sattn(1)'s names every command of the umbrella itself. A
# tool's --help names a page that exists, and --version answers on every executable.
BIN="$(dirname "$SATTN")"
synopsis() { awk '/^# SYNOPSIS/{s=1;next} /^# /{s=0} s' "$1"; }
for tool in $("$SATTN" --help | awk '/^Tools:/{t=1;next} t && /^  [a-z]/{print $1}'); do
  page=$("$SATTN" help "$tool" | grep -oE 'man( [0-9])? sattn[a-z-]*' | awk '{print $NF}')
  compgen -G "$SRC/man/$page.[157].scd" >/dev/null && ok || fail "sattn $tool --help names man page '$page', which does not exist"
  if [[ -f $SRC/man/sattn-$tool.1.scd ]]; then
    page=sattn-$tool
    synopsis "$SRC/man/$page.1.scd" | grep -q "\*sattn $tool\*" && ok || fail "$page.1 SYNOPSIS does not say 'sattn $tool'"
    if [[ -x $BIN/sattn-$tool ]]; then
      synopsis "$SRC/man/$page.1.scd" | grep -q "\*sattn-$tool\*" && ok || fail "$page.1 SYNOPSIS does not say 'sattn-$tool'"
    else
      grep -q "there is no \*sattn-$tool\* executable" "$SRC/man/$page.1.scd" && ok || fail "$page.1 does not say that sattn-$tool is not an executable"
    fi
  else
    synopsis "$SRC/man/sattn.1.scd" | grep -q "\*sattn $tool\*" && ok || fail "sattn.1 SYNOPSIS does not show 'sattn $tool'"
  fi
done
for name in sattn $(grep -oE '^\| `sattn-[a-z-]+`' "$SRC/README.md" | tr -d '|` '); do
  exe=$BIN/$name
  if [[ $name == sattn-opt ]]; then  # built only with MLIR; LLVM's lines, then sattn's
    [[ -x $exe ]] || continue
    run "$exe" --version
    expect_rc 0 "sattn-opt --version"
    expect_out "^sattn-opt [0-9]+\.[0-9]+\.[0-9]+( \(git [0-9a-f]{12}(\+dirty)?\))?$" "sattn-opt --version: sattn's line"
    continue
  fi
  [[ -x $exe ]] && ok || { fail "$name (README's tool table) is not built"; continue; }
  run "$exe" --version
  expect_rc 0 "$name --version"
  expect_out "^$name [0-9]+\.[0-9]+\.[0-9]+( \(git [0-9a-f]{12}(\+dirty)?\))?$" "$name --version: name, version, revision"
  # The revision is a commit of this checkout: HEAD when built after the last commit, an ancestor
  # of HEAD when commits came after the build.
  rev=$(grep -oE '\(git [0-9a-f]{12}' <<<"$out" | cut -c6-)
  if [[ -e $SRC/.git ]] && command -v git >/dev/null; then
    [[ -n $rev ]] && git -C "$SRC" merge-base --is-ancestor "$rev" HEAD && ok ||
      fail "$name --version: '$out' does not name a commit of this checkout (HEAD $(git -C "$SRC" rev-parse --short=12 HEAD))"
  fi
done
run "$SATTN" --help
expect_out "130 interrupted" "sattn --help lists exit code 130"

# The CUDA tensor-core forward's query rows per thread block, as sattn-run(1) states it, is the
# kernel's own constant (tc_qtile in libsattn/backends/cuda/kernels_internal.h).
rows=$(grep -oE 'constexpr int tc_qtile\(int[^)]*\) \{ return [0-9]+; \}' "$SRC/libsattn/backends/cuda/kernels_internal.h" | grep -oE '[0-9]+; ' | tr -dc 0-9)
[[ -n $rows ]] && ok || fail "tc_qtile not found in kernels_internal.h"
tr '\n' ' ' <"$SRC/man/sattn-run.1.scd" | grep -q "m16n8k16; $rows query rows per thread block at head_dim 64 and 128" && ok ||
  fail "sattn-run.1 does not say $rows query rows per tensor-core block"

# Rendered pages: no '_X_' left over after a bold word (scdoc starts no underline there: *nnz_*_L_
# rendered as nnz__L_), and `MANPATH=build/man man PAGE` finds the build tree's pages.
MANDIR="$(dirname "$BIN")/man"
for page in "$SRC"/man/*.scd; do
  out=$(scdoc <"$page")
  grep -nE '\\fR_[A-Za-z]+_' <<<"$out" && fail "$(basename "$page"): an underline after a bold word renders literally" || ok
done
for p in man1/sattn.1 man1/sattn-run.1 man5/sattn-profile.5 man7/sattn-artifacts.7; do
  expect_file "$MANDIR/$p" "build tree page $p"
done
if command -v man >/dev/null; then
  run env MANPATH="$MANDIR" man -w sattn-artifacts
  expect_out "^$MANDIR/man7/sattn-artifacts.7$" "MANPATH=build/man man -w sattn-artifacts"
fi

# The pages build (scdoc is installed by scripts/install-deps).
for page in "$SRC"/man/*.scd; do
  run scdoc <"$page"
  expect_rc 0 "scdoc $(basename "$page")"
done

finish
