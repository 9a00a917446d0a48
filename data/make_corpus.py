#!/usr/bin/env python3
"""Build the byte-level training corpus from Python 3.11's standard library.

Corpus: every ``*.py`` file under /usr/lib/python3.11 (Debian packages
libpython3.11-minimal / libpython3.11-stdlib / python3-lib2to3, license
PSF-2.0), excluding the ``dist-packages`` and ``site-packages`` folders
(third-party code under other licenses).  Files are taken in sorted order
of their path relative to the root; each one is preceded by a one-line
header ``# <<< file: RELPATH >>>\\n`` and followed by a newline.  The
concatenation is capped at --cap bytes (whole files only).

Every file is assigned to exactly one split by the first byte of
sha256(relpath):  < 230 -> train (~90 %), < 243 -> val (~5 %), else
heldout (~5 %).  The held-out split is never seen in training; the
activations under data/real/ are captured on it.

Output (deterministic: gzip with mtime 0):
  OUT/corpus.bin.gz    the concatenated bytes (all splits, in file order)
  OUT/manifest.json    per-file relpath, offset, length, split; sha256 of
                       the uncompressed corpus and of each split's bytes

Usage:  python3 data/make_corpus.py [--root /usr/lib/python3.11]
                                    [--out .gpu-carry/corpus] [--cap 24000000]
"""
import argparse
import gzip
import hashlib
import json
import os
import sys

EXCLUDE_DIRS = {"dist-packages", "site-packages", "__pycache__"}


def split_of(relpath: str) -> str:
    b = hashlib.sha256(relpath.encode("utf-8")).digest()[0]
    if b < 230:
        return "train"
    if b < 243:
        return "val"
    return "heldout"


def list_files(root: str):
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDE_DIRS)
        for f in filenames:
            if f.endswith(".py"):
                full = os.path.join(dirpath, f)
                if os.path.islink(full) or not os.path.isfile(full):
                    continue
                out.append(os.path.relpath(full, root).replace(os.sep, "/"))
    return sorted(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default="/usr/lib/python3.11")
    ap.add_argument("--out", default=".gpu-carry/corpus")
    ap.add_argument("--cap", type=int, default=24_000_000, help="max corpus bytes")
    args = ap.parse_args(argv)

    if not os.path.isdir(args.root):
        sys.exit(f"make_corpus: {args.root} not found (needs Debian's libpython3.11-stdlib)")
    files = list_files(args.root)
    blob = bytearray()
    entries = []
    split_h = {s: hashlib.sha256() for s in ("train", "val", "heldout")}
    split_n = {s: 0 for s in split_h}
    split_b = {s: 0 for s in split_h}
    for rel in files:
        with open(os.path.join(args.root, rel), "rb") as fh:
            body = fh.read()
        chunk = b"# <<< file: " + rel.encode("utf-8") + b" >>>\n" + body
        if not chunk.endswith(b"\n"):
            chunk += b"\n"
        if len(blob) + len(chunk) > args.cap:
            break
        sp = split_of(rel)
        entries.append({"path": rel, "offset": len(blob), "length": len(chunk), "split": sp})
        split_h[sp].update(chunk)
        split_n[sp] += 1
        split_b[sp] += len(chunk)
        blob += chunk

    os.makedirs(args.out, exist_ok=True)
    sha = hashlib.sha256(blob).hexdigest()
    with open(os.path.join(args.out, "corpus.bin.gz"), "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
            gz.write(bytes(blob))
    manifest = {
        "corpus": "Python 3.11 standard library sources (*.py under /usr/lib/python3.11, "
                  "without dist-packages/site-packages)",
        "license": "PSF-2.0",
        "root": args.root,
        "python_version_of_builder": sys.version.split()[0],
        "n_files": len(entries),
        "n_files_found": len(files),
        "bytes": len(blob),
        "sha256": sha,
        "splits": {s: {"files": split_n[s], "bytes": split_b[s], "sha256": split_h[s].hexdigest()}
                   for s in split_h},
        "files": entries,
    }
    with open(os.path.join(args.out, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)
    print(f"corpus: {len(entries)} files ({len(files)} found), {len(blob)} bytes")
    for s in ("train", "val", "heldout"):
        print(f"  {s:8s} {split_n[s]:4d} files {split_b[s]:9d} bytes")
    print(f"sha256 {sha}")
    print(f"wrote {args.out}/corpus.bin.gz and {args.out}/manifest.json")


if __name__ == "__main__":
    main()
