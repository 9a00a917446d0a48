#!/usr/bin/env bash
# The Python package's CUDA path on a GPU machine that cannot build libsattn itself (no CLI11,
# yaml-cpp, nlohmann-json or BLAS there): libsattn.so is built elsewhere WITH the CUDA kernels
# (any x86-64 build with nvcc, e.g. `cmake --build build --target libsattn`) and copied with its
# shared-library dependencies into LIBDIR; this script compiles only the pybind11 extension
# (python/src, public headers) for the python3 found here, assembles the package in
# $BUILD/python/sattn, and runs the given pytest files (default: the CUDA tests). `--build-only`
# stops after the build; `--test-only` runs the tests of an earlier build.
# Environment: LIBDIR (libsattn.so.0 and its dependencies), INCDIR (extra headers: dlpack/dlpack.h
# where the machine lacks it), BUILD (scratch), PY (interpreter, default python3),
# PYBIND11_INCLUDES (default: `$PY -m pybind11 --includes`).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${LIBDIR:?LIBDIR must hold libsattn.so.0 and its dependencies}"
b=${BUILD:-/tmp/sattn-py}
PY=${PY:-python3}
pkg="$b/python/sattn"
mode=
case "${1:-}" in --build-only|--test-only) mode=$1; shift;; esac
if [ "$mode" != --test-only ]; then
mkdir -p "$pkg" "$b/obj"
cp python/sattn/*.py python/sattn/*.pyi python/sattn/py.typed "$pkg/"
ext=$($PY -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
inc=${PYBIND11_INCLUDES:-$($PY -m pybind11 --includes)}
objs=()
for f in python/src/*.cpp; do
  o="$b/obj/$(basename "$f" .cpp).o"; objs+=("$o")
  ${CXX:-g++} -O1 -std=c++20 -fPIC -fvisibility=hidden $inc -Iinclude ${INCDIR:+-I"$INCDIR"} -c "$f" -o "$o" &
done
wait
${CXX:-g++} -shared "${objs[@]}" -L"$LIBDIR" -l:libsattn.so.0 -Wl,-rpath,"$(cd "$LIBDIR" && pwd)" -Wl,--disable-new-dtags -o "$pkg/_sattn$ext"
fi
[ "$mode" = --build-only ] && exit 0
LD_LIBRARY_PATH="$LIBDIR" $PY -X faulthandler -c "import sys; sys.path.insert(0, '$b/python'); import torch, sattn; print('sattn', sattn.__file__, 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"
LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" PYTHONPATH="$b/python" BUILD="$b" $PY -X faulthandler -m pytest -q -p no:cacheprovider -rs "${@:-tests/python/test_bad_input.py}"
