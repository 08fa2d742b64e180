#!/usr/bin/env python3
"""Mean ± sd over training seeds, and paired randomisation per seed, from per-query files.

Reads `DIR/<method>-seed<k>.<eval>.per-query.jsonl` (the output of `adam eval ... --per-query
--json`) for every method and seed given, and prints a Markdown table: each method's mean of the
measure over queries, then its mean ± sample sd over seeds; and, for each method against
--against, the per-seed difference with its paired-randomisation p-value over queries (same
seed against same seed). With --pooled, one more column: each query's value averaged over the
seeds, the mean difference of those averages, its p-value and how many queries went up and down.
--reference FILE (repeatable) adds a row for one run that has no seeds, e.g. the teacher: its
mean, and with --pooled its difference from --against's per-query means over seeds.
A missing file is an error, not a gap.

    python3 scripts/seed_table.py benchmarks/wikiqa-teachers/students --eval test-all \\
        --methods kd,adam,adam-no-dark,ce --seeds 1,2,3 --against adam [--measure ndcg@10] [--pooled] \\
        [--reference benchmarks/wikiqa-teachers/mpnet.candidates.per-query.jsonl]

Standard library only.
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from paired_randomization import p_value, per_query  # noqa: E402


def fmt_p(pv):
    return "<0.001" if pv < 0.001 else f"{pv:.3f}"


def pooled_cell(diffs, rounds):
    """The pooled column: mean difference, its p-value, and the queries up and down."""
    pv = p_value(diffs, rounds)
    up = sum(d > 1e-9 for d in diffs)
    down = sum(d < -1e-9 for d in diffs)
    return f" {statistics.mean(diffs):+.3f} ({fmt_p(pv)}; {up}/{down}) |"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dir")
    p.add_argument("--eval", required=True, help="the middle of the file names, e.g. test-all or full")
    p.add_argument("--methods", required=True)
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--against", help="method the others are compared with, seed by seed")
    p.add_argument("--measure", default="ndcg@10")
    p.add_argument("--rounds", type=int, default=10000)
    p.add_argument("--pooled", action="store_true", help="add the test of the per-query means over seeds")
    p.add_argument("--reference", action="append", default=[], help="per-query file of a run without seeds")
    args = p.parse_args()
    methods = args.methods.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = {}
    for m in methods:
        for s in seeds:
            path = os.path.join(args.dir, f"{m}-seed{s}.{args.eval}.per-query.jsonl")
            if not os.path.isfile(path):
                sys.exit(f"{path}: missing (run `adam eval ... --per-query --json > {path}`)")
            runs[m, s] = per_query(path, args.measure)
    mean = {k: sum(v.values()) / len(v) for k, v in runs.items()}
    seed_cols = " | ".join(f"seed {s}" for s in seeds)
    against = args.against if args.against in methods else None
    head = f"| {args.measure} ({args.eval}) | {seed_cols} | mean ± sd |"
    if against:
        head += f" − {against}, per seed (p) |"
        if args.pooled:
            head += " pooled over seeds (p; up/down) |"
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for m in methods:
        values = [mean[m, s] for s in seeds]
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        row = f"| {m} | " + " | ".join(f"{v:.3f}" for v in values) + f" | {statistics.mean(values):.3f} ± {sd:.3f} |"
        if against:
            if m == against:
                row += " — |" + (" — |" if args.pooled else "")
            else:
                cells = []
                for s in seeds:
                    a, b = runs[m, s], runs[against, s]
                    if set(a) != set(b):
                        sys.exit(f"{m}-seed{s} and {against}-seed{s} cover different queries")
                    diffs = [a[q] - b[q] for q in sorted(a)]
                    pv = p_value(diffs, args.rounds)
                    cells.append(f"{sum(diffs) / len(diffs):+.3f} ({fmt_p(pv)})")
                row += " " + ", ".join(cells) + " |"
                if args.pooled:
                    if any(set(runs[m, s]) != set(runs[m, seeds[0]]) for s in seeds):
                        sys.exit(f"{m}: the seeds cover different queries, so they cannot be pooled")
                    pooled = [statistics.mean(runs[m, s][q] - runs[against, s][q] for s in seeds) for q in sorted(runs[m, seeds[0]])]
                    row += pooled_cell(pooled, args.rounds)
        print(row)
    for path in args.reference:
        ref = per_query(path, args.measure)
        row = f"| {path} |" + " |" * len(seeds) + f" {sum(ref.values()) / len(ref):.3f} |"
        if against:
            row += " |"
            if args.pooled:
                if set(ref) != set(runs[against, seeds[0]]):
                    sys.exit(f"{path} and {against} cover different queries")
                pooled = [ref[q] - statistics.mean(runs[against, s][q] for s in seeds) for q in sorted(ref)]
                row += pooled_cell(pooled, args.rounds)
        print(row)


if __name__ == "__main__":
    main()
