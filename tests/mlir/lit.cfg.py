# lit suite of sattn-opt (issue 10). Run through CTest (mlir.lit) or:
#   python3 /usr/lib/llvm-16/build/utils/lit/lit.py -v tests/mlir  (with SATTN_BIN=build-X/bin)
import os
import lit.formats

config.name = "sattn-mlir"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir"]
config.excludes = ["Inputs"]
config.test_source_root = os.path.dirname(__file__)
bin_dir = lit_config.params.get("bin", os.environ.get("SATTN_BIN", ""))
llvm_bin = "/usr/lib/llvm-16/bin"
config.environment["PATH"] = os.pathsep.join([bin_dir, llvm_bin, os.environ.get("PATH", "")])
# Selection overrides from the caller's environment must not leak into the tests.
for k in list(os.environ):
    if k.startswith("SATTN_") and k != "SATTN_BIN":
        config.environment.pop(k, None)
config.substitutions.append(("%examples", os.path.join(os.path.dirname(__file__), "..", "..", "examples")))
