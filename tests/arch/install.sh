#!/usr/bin/env bash
# The installed C++ API: `cmake --install` into a temporary prefix, then examples/cpp-api (a
# project outside the tree) finds it with find_package(sattn), builds, and runs one op end to end;
# the same program also builds with pkg-config alone. Checks the SONAME and that only the public
# headers are installed.
set -euo pipefail
: "${SRC:?}" "${BUILD:?}"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cmake --install "$BUILD" --prefix "$tmp/prefix" >/dev/null
lib=$(find "$tmp/prefix" -name 'libsattn.so.0' | head -n 1)
[ -n "$lib" ] || { echo "libsattn.so.0 not installed"; exit 1; }
soname=$(objdump -p "$lib" | awk '/SONAME/ {print $2}')
[ "$soname" = libsattn.so.0 ] || { echo "SONAME is '$soname'"; exit 1; }
for h in sattn.hpp op.hpp plan.hpp select.hpp layout.hpp attention.hpp formats.hpp backend.hpp error.hpp tensor.hpp \
  profile.hpp cancel.hpp; do
  [ -f "$tmp/prefix/include/sattn/$h" ] || { echo "include/sattn/$h not installed"; exit 1; }
done
if grep -lE '#include <(nlohmann|yaml-cpp|CLI)/' "$tmp"/prefix/include/sattn/*.hpp; then
  echo "an installed header includes a third-party header"; exit 1
fi
cat >"$tmp/op.json" <<'OP'
{"schema": "sattn.op/v1", "name": "api", "heads": 4, "kv_heads": 2, "seq_len": 300, "head_dim": 32,
 "causal": true, "window_size": 40}
OP
# A sanitized libsattn (make test-asan) needs its users built with the same runtime.
san=()
if grep -q '^SATTN_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null; then san=(-fsanitize=address,undefined); fi
cmake -S "$SRC/examples/cpp-api" -B "$tmp/b" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DCMAKE_CXX_FLAGS="${san[*]}" >/dev/null
cmake --build "$tmp/b" >/dev/null
out=$("$tmp/b/sattn-api-example" "$tmp/op.json")
echo "$out"
grep -q '^api: spec sliding_window, density .* ok$' <<<"$out"
# pkg-config, no CMake
pcdir=$(dirname "$(find "$tmp/prefix" -name sattn.pc | head -n 1)")
flags=$(PKG_CONFIG_PATH="$pcdir" pkg-config --define-variable=prefix="$tmp/prefix" --cflags --libs sattn)
c++ "${san[@]}" "$SRC/examples/cpp-api/main.cpp" $flags -Wl,-rpath,"$(dirname "$lib")" -o "$tmp/pc-example"
"$tmp/pc-example" "$tmp/op.json" | grep -q ' ok$'
echo "installed API: ok"
