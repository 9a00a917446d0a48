# The umbrella: help, version, usage errors and their exit codes.
source "$(dirname "$0")/lib.sh"

run "$SATTN" --help
expect_rc 0 "--help"
expect_out '^  run +Run ops' "--help lists run"
expect_out 'completions' "--help lists completions"

run "$SATTN"
expect_rc 2 "no arguments is a usage error"

run "$SATTN" --version
expect_rc 0 "--version"
expect_out '^sattn [0-9]+\.[0-9]+\.[0-9]+( \(git [0-9a-f]{12}(\+dirty)?\))?$' "--version prints the version (and the git revision)"

run "$SATTN" frobnicate
expect_rc 2 "unknown tool"
expect_err "^sattn: error: unknown tool 'frobnicate'" "unknown tool message"

run "$SATTN" help run
expect_rc 0 "help run"
expect_out -- '--backend' "help run shows --backend"
expect_out -- '--out-dir' "help run shows --out-dir"

run "$SATTN" run --no-such-flag
expect_rc 2 "unknown option"
expect_err "^sattn run: error: .*no-such-flag" "unknown option message"
expect_err "Try 'sattn run --help'" "unknown option hint"

run "$SATTN" run --threads many
expect_rc 2 "non-numeric option value"

finish
