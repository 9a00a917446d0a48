#!/usr/bin/python3
"""Validates sattn JSON documents against the committed schemas, offline.

Usage: validate.py SCHEMA_DIR FILE...   (each FILE: one JSON document, or JSON Lines)

Each document is validated against the schema its "schema" member names (sattn.result/v1 ->
result.schema.json). The schema is loaded the way a plain validator would load a file: its base
URI is the file's own file:// URI, so relative $ids and $refs resolve to the files beside it. Any
attempt to fetch over the network (http, https) fails the run: the schemas must resolve locally.
Prints one line per document; exits 1 on the first invalid one.
"""
import json
import pathlib
import sys

import jsonschema


def no_network(uri):
    raise SystemExit(f"FAIL: resolving {uri} would need the network")


def validator_for(schema_dir, kind):
    path = pathlib.Path(schema_dir, f"{kind}.schema.json").resolve()
    schema = json.loads(path.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    resolver = jsonschema.RefResolver(base_uri=path.as_uri(), referrer=schema,
                                      handlers={"http": no_network, "https": no_network})
    return jsonschema.Draft202012Validator(schema, resolver=resolver)


def documents(text):
    text = text.strip()
    try:
        doc = json.loads(text)
        return doc if isinstance(doc, list) and doc and all(isinstance(d, dict) for d in doc) else [doc]
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def main():
    schema_dir, files = sys.argv[1], sys.argv[2:]
    validators = {}
    count = 0
    for f in files:
        docs = documents(pathlib.Path(f).read_text())
        if not docs:
            raise SystemExit(f"FAIL: {f}: no JSON document")
        for n, doc in enumerate(docs):
            name = doc.get("schema", "")
            if not (name.startswith("sattn.") and "/v" in name):
                raise SystemExit(f"FAIL: {f} document {n}: no sattn schema member ({name!r})")
            kind = name[len("sattn."):name.index("/v")]
            if kind not in validators:
                validators[kind] = validator_for(schema_dir, kind)
            errors = sorted(validators[kind].iter_errors(doc), key=lambda e: list(e.path))
            if errors:
                e = errors[0]
                raise SystemExit(f"FAIL: {f} document {n} ({name}): {e.message} at /{'/'.join(map(str, e.path))}")
            count += 1
            print(f"ok {name} {f}")
    print(f"{count} documents valid")


if __name__ == "__main__":
    main()
