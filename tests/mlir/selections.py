#!/usr/bin/env python3
"""Prints one line per op of a sattn-opt module or a sattn-select plan stream, for diff(1).

  selections.py select FILE   name, spec and "KIND: REASON" (sattn-opt's `selection`
                              attribute, or a plan's selection record)
  selections.py lowered FILE  name, spec, the spec's resolved parameters and the op's shape,
                              precision and scales (plans only)
  selections.py mlir FILE     the ops of a JSON/YAML op file's plans ("op" members), written
                              as MLIR generic form

Source positions (FILE:LINE:COL) are dropped from reasons: MLIR places every attribute at its
op, sattn-select at the attribute.
"""
import json
import re
import sys

LOC = re.compile(r"(<stdin>|[\w./+-]+\.(mlir|json|yaml|jsonl)):\d+(:\d+)?")
OP = re.compile(r'^\s*"?sattn\.(sparse_attention|rvv_call|rocc_call)"?')
STR_ATTR = r'\b{} = "((?:[^"\\]|\\.)*)"'


def unescape(s):  # MLIR prints '"' and '\' as \22 and \5C
    return re.sub(r"\\([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), s)


def plans(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def select_lines(path):
    text = open(path).read()
    out = []
    if text.lstrip().startswith("{"):
        for p in plans(path):
            sel = p["selection"]
            out.append((p["op"]["name"], p["spec"], sel["kind"] + ": " + sel["reason"]))
    else:
        index = 0
        for line in text.splitlines():
            if not OP.match(line):
                continue
            get = lambda key: (lambda m: unescape(m.group(1)) if m else None)(re.search(STR_ATTR.format(key), line))
            out.append((get("name") or "op%d" % index, get("spec"), get("selection")))
            index += 1
    for name, spec, reason in out:
        print(name, spec, LOC.sub("LOC", reason or "(no selection)"))


def lowered_lines(path):
    keys = ["batch", "heads", "kv_heads", "seq_len", "kv_len", "head_dim", "causal", "precision",
            "scale_q", "scale_k", "scale_v"]
    for p in plans(path):
        op = p["op"]
        shape = {k: op.get(k) for k in keys}
        print(op["name"], p["spec"], json.dumps(p["params"], sort_keys=True), json.dumps(shape, sort_keys=True))


def mlir_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return "%d : i64" % v
    if isinstance(v, float):
        return repr(v) + " : f64"
    return json.dumps(v)


def mlir_lines(path):
    print("module {")
    for p in plans(path):
        attrs = ", ".join("%s = %s" % (k, mlir_value(v)) for k, v in p["op"].items()
                          if k not in ("schema", "producer"))
        print('  "sattn.sparse_attention"() {%s} : () -> ()' % attrs)
    print("}")


{"select": select_lines, "lowered": lowered_lines, "mlir": mlir_lines}[sys.argv[1]](sys.argv[2])
