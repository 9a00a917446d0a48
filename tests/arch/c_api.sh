#!/usr/bin/env bash
# The installed C API: `cmake --install` into a temporary prefix, then examples/c-api/main.c is
# compiled as strict C99 (-std=c99 -pedantic-errors -Werror) against the installed sattn.h and
# libsattn alone, and run end to end (parse, select, layout, forward, backward, errors), checking
# every number against its own plain-C computation. Also checks that libsattn exports no
# unmangled symbol outside the sattn_ prefix.
set -euo pipefail
: "${SRC:?}" "${BUILD:?}"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cmake --install "$BUILD" --prefix "$tmp/prefix" >/dev/null
[ -f "$tmp/prefix/include/sattn/sattn.h" ] || { echo "include/sattn/sattn.h not installed"; exit 1; }
lib=$(find "$tmp/prefix" -name 'libsattn.so' | head -n 1)
[ -n "$lib" ] || { echo "libsattn.so not installed"; exit 1; }
libdir=$(dirname "$lib")
# Exported C symbols: every defined dynamic symbol that is not a mangled C++ name starts sattn_.
others=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^_Z' | grep -v '^sattn_' || true)
if [ -n "$others" ]; then echo "libsattn exports C symbols outside sattn_*:"; echo "$others"; exit 1; fi
# grep without -q: -q exits at the first match and awk's last write then gets SIGPIPE (pipefail).
nm -D --defined-only "$lib" | awk '{print $3}' | grep -x sattn_backward >/dev/null || { echo "sattn_backward not exported"; exit 1; }
san=()
if grep -q '^SATTN_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null; then san=(-fsanitize=address,undefined); fi
cc -std=c99 -pedantic-errors -Wall -Wextra -Werror "${san[@]}" -I "$tmp/prefix/include" "$SRC/examples/c-api/main.c" \
  -L "$libdir" -lsattn -lm -Wl,-rpath,"$libdir" -o "$tmp/c-example"
mkdir "$tmp/work"
out=$("$tmp/c-example" "$tmp/work")
echo "$out"
grep -q '^plan: sliding_window (override: ' <<<"$out"
grep -q '^error: bad.json:2:' <<<"$out"
grep -q '^c api: ok$' <<<"$out"
[ -f "$tmp/work/artifacts/artifacts.json" ]
# The header alone is C99 too, and usable from C++.
printf '#include <sattn/sattn.h>\nint main(void) { return sattn_version() == 0; }\n' >"$tmp/h.c"
cc -std=c99 -pedantic-errors -Wall -Wextra -Werror -I "$tmp/prefix/include" -c "$tmp/h.c" -o "$tmp/h.o"
c++ -std=c++17 -Wall -Wextra -Werror -I "$tmp/prefix/include" -x c++ -c "$tmp/h.c" -o "$tmp/hpp.o"
echo "installed C API: ok"
