# Helpers for CLI tests: run the real executable, check exit code, stdout and stderr.
# Each test script sources this, calls `check ...` lines, and ends with `finish`.
set -u
: "${SATTN:?SATTN must point at the sattn executable}"
: "${SRC:?SRC must point at the source tree}"
PY=/usr/bin/python3   # Debian's python3 has numpy (installed by scripts/install-deps)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
failures=0
passes=0

# run CMD... : runs a command, capturing $out, $err and $rc.
run() {
  "$@" >"$T/out" 2>"$T/err"
  rc=$?
  out=$(cat "$T/out")
  err=$(cat "$T/err")
}

fail() {
  echo "FAIL: $*"
  local o=${out-} e=${err-}
  echo "  command rc=${rc-none}"
  echo "  stdout: ${o:0:2000}"
  echo "  stderr: ${e:0:2000}"
  failures=$((failures + 1))
}
ok() { passes=$((passes + 1)); }

expect_rc() { [[ $rc -eq $1 ]] && ok || fail "$2: expected exit $1"; }
expect_out() { grep -qE -- "$1" <<<"$out" && ok || fail "$2: stdout should match /$1/"; }
expect_err() { grep -qE -- "$1" <<<"$err" && ok || fail "$2: stderr should match /$1/"; }
expect_no_out() { [[ -z $out ]] && ok || fail "$1: stdout should be empty"; }
expect_file() { [[ -f $1 ]] && ok || fail "$2: $1 should exist"; }
expect_no_file() { [[ ! -e $1 ]] && ok || fail "$2: $1 should not exist"; }

# wait_for_child PID [TENTHS]: returns once process PID has started a child process (qemu, the
# Verilator harness, a bench point: the long part of a run is under way), once it has exited, or
# after TENTHS tenths of a second (default 600). Signal tests wait on this, not on a fixed delay,
# so that a fast machine cannot finish the run before the signal.
wait_for_child() {
  local i
  for ((i = 0; i < ${2:-600}; i++)); do
    [[ -n $(cat /proc/"$1"/task/*/children 2>/dev/null) ]] && return 0
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
}

finish() {
  echo "$passes passed, $failures failed"
  [[ $failures -eq 0 ]]
}
