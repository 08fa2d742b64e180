#!/usr/bin/env python3
"""Write a qrels split whose relevant documents are a teacher's first choices (pseudo-labels).

Distilling on questions that carry no labels (issue 17: SelQA dev, which the cross-encoder
teacher never saw) needs a positive per question for the pipeline's groups and dark examples:
here, the document a teacher's run ranks first (`--top K`: the first K), in trec_eval's order
(scores as 32-bit floats, descending; ties to the larger document id), as `adam eval` ranks. The
labels themselves are never read.

    python3 scripts/pseudo_qrels.py ce.selqa-dev.run --output pseudo/qrels/dev-pseudo.tsv [--top 1]

Standard library only. Errors name the file and line; the output is written whole or not at all.
"""
import argparse
import os
import struct
import sys

from trec_run import read_run


def fail(msg):
    sys.exit(f"pseudo_qrels: {msg}")


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="a TREC run (qid Q0 doc rank score tag), e.g. a teacher's rerank")
    p.add_argument("--output", required=True, help="the qrels TSV to write (query-id, corpus-id, score)")
    p.add_argument("--top", type=int, default=1, help="documents per query taken as relevant (default 1)")
    args = p.parse_args()
    if args.top < 1:
        fail("--top must be at least 1")
    run = read_run(args.run, fail)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    tmp = f"{args.output}.tmp"
    with open(tmp, "w", encoding="utf-8") as w:
        w.write("query-id\tcorpus-id\tscore\n")
        for q in sorted(run):
            ranked = sorted(run[q].items(), key=lambda kv: (f32(kv[1]), kv[0].encode()), reverse=True)
            for d, _ in ranked[: args.top]:
                w.write(f"{q}\t{d}\t1\n")
    os.replace(tmp, args.output)
    print(f"{len(run)} queries, {args.top} pseudo-relevant document(s) each: {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
