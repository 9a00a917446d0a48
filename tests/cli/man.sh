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

# The pages build (scdoc is installed by scripts/install-deps).
for page in "$SRC"/man/*.scd; do
  run scdoc <"$page"
  expect_rc 0 "scdoc $(basename "$page")"
done

finish
