#!/usr/bin/env python3
"""Fuse TREC runs into one: each run's scores z-scored per query, then a weighted sum.

An ensemble teacher (issue 17) ranks by w1 * z(run1) + w2 * z(run2) + ...; z-scoring per query puts
a cross-encoder's logits and a dual encoder's scaled cosines on one scale. A document missing from
a run gets that run's lowest z-score for the query. Weights are chosen on held-out questions (SelQA
dev), never on the test split: `--grid` writes one fused run per weight of the first run (the
others share the rest equally), to be scored by `adam eval`.

    python3 scripts/fuse_runs.py ce.run:0.6 mpnet.run:0.4 --output fused.run
    python3 scripts/fuse_runs.py ce.dev.run mpnet.dev.run --grid 11 --output dev-fused   # dev-fused.w0.00.run ...

Standard library only. Errors name the file and line.
"""
import argparse
import math
import os
import sys

from trec_run import read_run


def fail(msg):
    sys.exit(f"fuse_runs: {msg}")


def zscores(scores):
    values = list(scores.values())
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return {d: (s - mean) / sd if sd > 0 else 0.0 for d, s in scores.items()}


def fuse(runs, weights):
    out = {}
    for q in sorted(set().union(*runs)):
        docs = set().union(*(r.get(q, {}) for r in runs))
        total = dict.fromkeys(docs, 0.0)
        for run, w in zip(runs, weights):
            z = zscores(run[q]) if q in run else {}
            floor = min(z.values()) if z else 0.0
            for d in docs:
                total[d] += w * z.get(d, floor)
        out[q] = total
    return out


def write_run(path, fused, tag):
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for q, scores in fused.items():
            ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
            for rank, (d, s) in enumerate(ranked, 1):
                f.write(f"{q} Q0 {d} {rank} {s:.6f} {tag}\n")
    os.replace(tmp, path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="RUN or RUN:WEIGHT (default weight 1)")
    p.add_argument("--output", required=True, help="the fused run; with --grid, the prefix of its files")
    p.add_argument("--grid", type=int, help="write N runs, the first run's weight 0..1 in N steps")
    args = p.parse_args()
    paths, weights = [], []
    for spec in args.runs:
        path, sep, w = spec.rpartition(":")
        if sep and os.path.exists(path):
            try:
                weights.append(float(w))
            except ValueError:
                fail(f"`{spec}`: the weight `{w}` is not a number")
            paths.append(path)
        else:
            paths.append(spec)
            weights.append(1.0)
    runs = [read_run(path, fail) for path in paths]
    if args.grid:
        if args.grid < 2 or len(runs) < 2:
            fail("--grid needs N >= 2 and at least two runs")
        for i in range(args.grid):
            w = i / (args.grid - 1)
            rest = (1 - w) / (len(runs) - 1)
            name = f"{args.output}.w{w:.2f}.run"
            write_run(name, fuse(runs, [w] + [rest] * (len(runs) - 1)), "fused")
            print(name)
    else:
        write_run(args.output, fuse(runs, weights), "fused")


if __name__ == "__main__":
    main()
