#!/bin/bash
# cpu_isa_leak.sh LIBSATTN: no function that baseline code can reach uses AVX/AVX-512 registers.
# The per-ISA copies of the fast CPU kernels (docs/decisions.md "CPU kernels: one source, one
# object per ISA"; the layout part's score kernels likewise) may use them only in their own
# namespaces (fast::avx2::, fast::avx512::, fast::amx:: and fast::amx_isa:: (the AMX tiles),
# layout_detail::avx2::, ::avx512::) and in
# their object-local functions; a global or weak function with ymm/zmm code outside those (say
# an AVX-512 std::vector instantiation the linker kept instead of the baseline's) fails.
set -euo pipefail
lib=$1
/usr/bin/python3 - "$lib" <<'PY'
import re, subprocess, sys
lib = sys.argv[1]
# Global (T) and weak (W) function symbols: the ones another object's call can bind to.
glob = set()
for line in subprocess.run(["nm", "--defined-only", lib], capture_output=True, text=True, check=True).stdout.splitlines():
    parts = line.split()
    if len(parts) == 3 and parts[1] in ("T", "W"):
        glob.add(parts[2])
dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", lib], capture_output=True, text=True, check=True).stdout
bad, fn, checked = set(), None, 0
for line in dis.splitlines():
    m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
    if m:
        fn = m.group(1); checked += 1; continue
    if fn in glob and re.search(r"%[yz]mm", line) and not re.search(r"N5sattn(4fast|13layout_detail)(4avx2|6avx512|3amx|7amx_isa)", fn):
        bad.add(fn)
if checked < 1000:
    sys.exit(f"cpu_isa_leak: only {checked} functions disassembled from {lib}")
isa_fns = [f for f in glob if re.search(r"N5sattn(4fast|13layout_detail)(4avx2|6avx512|3amx|7amx_isa)", f)]
if not isa_fns:
    sys.exit("cpu_isa_leak: no fast::avx2/avx512 functions found: is dispatch built?")
if bad:
    sys.exit("cpu_isa_leak: global functions outside the ISA copies use AVX registers:\n  " + "\n  ".join(sorted(bad)[:20]))
print(f"cpu_isa_leak: ok ({checked} functions, {len(isa_fns)} in the avx2/avx512 copies)")
PY
