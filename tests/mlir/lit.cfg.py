# lit suite of sattn-opt (issue 10). CTest runs each file as mlir.<name>; by hand:
#   python3 /usr/lib/llvm-16/build/utils/lit/lit.py -v --param bin=BUILD/bin tests/mlir
# Temporary files go under --param exec_root (CTest: the build tree), never the source tree.
import os
import tempfile

import lit.formats

config.name = "sattn-mlir"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = lit_config.params.get("exec_root", os.path.join(tempfile.gettempdir(), "sattn-mlir-lit"))
bin_dir = lit_config.params.get("bin", os.environ.get("SATTN_BIN", ""))
if not os.path.isfile(os.path.join(bin_dir, "sattn-opt")):
    lit_config.fatal("no sattn-opt in --param bin=%r (the build's bin/ directory)" % bin_dir)
llvm_bin = "/usr/lib/llvm-16/bin"  # FileCheck, split-file, not
config.environment["PATH"] = os.pathsep.join([bin_dir, llvm_bin, "/usr/bin", "/bin"])
# Selection overrides from the caller's environment must not leak into the tests.
for k in list(config.environment):
    if k.startswith("SATTN_"):
        config.environment.pop(k)
config.substitutions.append(("%examples", os.path.join(os.path.dirname(__file__), "..", "..", "examples")))
config.substitutions.append(("%python", "/usr/bin/python3"))
config.substitutions.append(("%selections", "/usr/bin/python3 " + os.path.join(os.path.dirname(__file__), "selections.py")))
