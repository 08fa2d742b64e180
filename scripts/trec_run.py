"""Read a TREC run (qid Q0 doc rank score tag) for the scripts beside this file.

`read_run(path, fail)` returns {query: {doc: score}}; `fail(message)` is the calling script's
error exit, and every message names the file, the line and the field. A document listed twice
for one query is an error, not a silent overwrite. Standard library only.
"""
import math


def read_run(path, fail):
    run = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 6:
                fail(f"{path}:{n}: expected 6 fields (qid Q0 doc rank score tag), found {len(fields)}")
            try:
                score = float(fields[4])
            except ValueError:
                fail(f"{path}:{n}: field `score`: `{fields[4]}` is not a number")
            if not math.isfinite(score):
                fail(f"{path}:{n}: field `score`: {fields[4]} is not finite")
            docs = run.setdefault(fields[0], {})
            if fields[2] in docs:
                fail(f"{path}:{n}: field `doc`: {fields[2]} appears twice for query {fields[0]}")
            docs[fields[2]] = score
    if not run:
        fail(f"{path}: no line")
    return run
