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

# The pages build (scdoc is installed by scripts/install-deps).
for page in "$SRC"/man/*.scd; do
  run scdoc <"$page"
  expect_rc 0 "scdoc $(basename "$page")"
done

finish
