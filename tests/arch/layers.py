#!/usr/bin/env python3
"""The architecture's dependency rules (ARCHITECTURE.md), checked on the sources.

usage: layers.py SRC LAYERS_FILE [LIBSATTN_SO]

LAYERS_FILE is written by libsattn/CMakeLists.txt: one line per library part, "DIR DEP_DIR...",
the folders (under libsattn/) a part's sources may include from. Checks:
  R1-R3  a libsattn part includes only its own folder, the folders of the parts it declares, and
         the public headers (include/sattn); the link check (sattn_check_*) covers calls;
  R4     no libsattn source includes CLI11 or installs a signal handler; libsattn.so (when
         given) defines no CLI:: symbol and no main;
  R6     no #include climbs out of its top-level folder with "../", and mlir/, fuzz/ and tests/
         include no tool header (tools/cli).
Prints one line per violation and exits 1 if there is any.
"""
import os
import re
import subprocess
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)
SOURCE_EXT = ('.cpp', '.hpp', '.h', '.c', '.cu')


def sources(root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith('build') and d != '.git']
        for f in filenames:
            if f.endswith(SOURCE_EXT):
                yield os.path.join(dirpath, f)


def main():
    src, layers_file = sys.argv[1], sys.argv[2]
    so = sys.argv[3] if len(sys.argv) > 3 else None
    lib = os.path.join(src, 'libsattn')
    parts = {}
    for line in open(layers_file):
        words = line.split()
        if words:
            parts[words[0]] = set(words)
    # The longest part folder that holds a file owns it (backends/cpu before backends).
    owners = sorted(parts, key=len, reverse=True)
    problems = []
    for path in sources(lib):
        rel = os.path.relpath(path, lib)
        owner = next((p for p in owners if p and rel.startswith(p + '/')), None)
        if owner is None and os.path.dirname(rel) == '':
            owner = ''
        if owner is None:
            problems.append(f'{rel}: not in any part declared in libsattn/CMakeLists.txt')
            continue
        text = open(path, encoding='utf-8', errors='replace').read()
        if re.search(r'#\s*include\s*[<"]CLI/', text):
            problems.append(f'libsattn/{rel}: includes CLI11 (R4: tools/ is its only user)')
        if re.search(r'\bsigaction\s*\(|\bsignal\s*\(\s*SIG', text):
            problems.append(f'libsattn/{rel}: installs a signal handler (R4: the tools do)')
        for inc in INCLUDE.findall(text):
            if inc.startswith('sattn/') or '/' not in inc:
                continue  # public headers; same-folder headers
            folder = os.path.dirname(inc)
            known = next((p for p in owners if p and (folder == p or folder.startswith(p + '/'))), None)
            if known is None:
                continue  # not a library folder (hw/sim's dram_model via its target, system headers)
            if known not in parts[owner]:
                problems.append(f'libsattn/{rel}: includes "{inc}": part {owner or "registry"} does not '
                                f'declare {known} (libsattn/CMakeLists.txt)')
    for top in ('libsattn', 'tools', 'mlir', 'fuzz', 'tests', 'bench', 'hw', 'target', 'include', 'python'):
        for path in sources(os.path.join(src, top)):
            text = open(path, encoding='utf-8', errors='replace').read()
            for inc in INCLUDE.findall(text):
                target = os.path.normpath(os.path.join(os.path.dirname(path), inc))
                if inc.startswith('..') and not target.startswith(os.path.join(src, top) + os.sep):
                    problems.append(f'{os.path.relpath(path, src)}: includes "{inc}" across top-level folders (R6)')
                if top == 'python' and '/' in inc and not inc.startswith('sattn/'):
                    problems.append(f'{os.path.relpath(path, src)}: includes "{inc}": python/ sees the public '
                                    f'headers (include/sattn) only (R6)')
                if top in ('mlir', 'fuzz', 'tests') and inc.startswith('cli/'):
                    problems.append(f'{os.path.relpath(path, src)}: includes the tools\' header "{inc}" (R6)')
    if so:
        out = subprocess.run(['nm', '-DC', '--defined-only', so], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            name = line.split(' ', 2)[-1]
            if 'CLI::' in name:
                problems.append(f'{so}: defines a CLI11 symbol: {name} (R4)')
                break
            if name == 'main':
                problems.append(f'{so}: defines main (R4)')
    for p in problems:
        print(p)
    if problems:
        print(f'{len(problems)} architecture rule violation(s)')
        return 1
    print('architecture rules hold: %d parts' % len(parts))
    return 0


if __name__ == '__main__':
    sys.exit(main())
