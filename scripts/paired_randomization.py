#!/usr/bin/env python3
"""Paired randomisation test between two runs on the same queries.

Input: the per-query lines of `adam eval --run FILE --per-query --json` for each run (lines
without a "query" key, such as the final mean, are skipped). Prints the mean difference of the
measure (A - B), the queries where A wins and loses, and a two-sided p-value from sign flips of
the per-query differences (seeded, so a rerun prints the same numbers).

    adam eval --data D --split test --run a.run --per-query --json > a.jsonl
    adam eval --data D --split test --run b.run --per-query --json > b.jsonl
    python3 scripts/paired_randomization.py a.jsonl b.jsonl [--measure ndcg@10] [--rounds 10000]

Standard library only. It measures the spread over queries, not over training seeds.
"""
import argparse
import json
import random
import sys


def per_query(path, measure):
    values = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{n}: not JSON ({e})")
            if "query" not in obj:
                continue
            if measure not in obj:
                sys.exit(f"{path}:{n}: no `{measure}` (have: {', '.join(sorted(obj))})")
            values[obj["query"]] = float(obj[measure])
    if not values:
        sys.exit(f"{path}: no per-query lines (run `adam eval ... --per-query --json`)")
    return values


def p_value(diffs, rounds=10000, seed=0):
    """Two-sided p of the mean paired difference under random sign flips (seeded)."""
    n = len(diffs)
    observed = abs(sum(diffs)) / n
    rng = random.Random(seed)
    extreme = sum(
        abs(sum(d if rng.random() < 0.5 else -d for d in diffs)) / n >= observed - 1e-12
        for _ in range(rounds)
    )
    return (extreme + 1) / (rounds + 1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--measure", default="ndcg@10")
    p.add_argument("--rounds", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    a, b = per_query(args.a, args.measure), per_query(args.b, args.measure)
    if set(a) != set(b):
        sys.exit(f"the runs cover different queries ({len(set(a) ^ set(b))} differ): compare runs on one split")
    diffs = [a[q] - b[q] for q in sorted(a)]
    n = len(diffs)
    print(json.dumps({
        "measure": args.measure,
        "queries": n,
        "mean_a": sum(a.values()) / n,
        "mean_b": sum(b.values()) / n,
        "mean_diff": sum(diffs) / n,
        "a_wins": sum(d > 0 for d in diffs),
        "a_loses": sum(d < 0 for d in diffs),
        "p_two_sided": p_value(diffs, args.rounds, args.seed),
    }))


if __name__ == "__main__":
    main()
