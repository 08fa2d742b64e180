#!/usr/bin/env python3
"""Copies a teacher score cache (`adam teacher score`'s scores.jsonl) without one kind of dark
example, so a student can be trained on the others without rescoring.

    python3 scripts/drop_dark_kind.py scores.jsonl scores.no-query-mixed.jsonl --drop query-mixed

The header's dark configuration is changed to match (its count of that kind set to 0), so the
student's `[adam.dark]` must say the same (e.g. `query_mixed_negatives = 0`): `adam distill`
refuses a cache whose dark configuration differs from its own. Standard library only.
"""
import argparse
import json
import os

KINDS = {
    # name: (the header's count key, a test on a dark example's "kind")
    "query-mixed": ("query_mixed_negatives", lambda k: k["type"] == "mixed_negative" and k.get("with_query")),
    "mixed": ("mixed_negatives", lambda k: k["type"] == "mixed_negative" and not k.get("with_query")),
    "noisy": ("noisy_positives", lambda k: k["type"] in ("masked_positive", "deleted_positive")),
}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--drop", required=True, choices=sorted(KINDS))
    args = p.parse_args()
    key, is_kind = KINDS[args.drop]
    kept = dropped = 0
    tmp = args.output + ".tmp"
    try:
        with open(args.input) as f, open(tmp, "w") as w:
            for n, line in enumerate(f, 1):
                try:
                    d = json.loads(line)
                except json.JSONDecodeError as e:
                    raise SystemExit(f"{args.input}:{n}: not JSON ({e})")
                if n == 1:
                    if "adam_teacher_scores" not in d or "dark" not in d:
                        raise SystemExit(f"{args.input}:1: not a score cache header (no adam_teacher_scores/dark)")
                    d["dark"][key] = 0
                else:
                    if "dark" not in d:
                        raise SystemExit(f"{args.input}:{n}: field `dark` is missing")
                    before = len(d["dark"])
                    d["dark"] = [x for x in d["dark"] if not is_kind(x["kind"])]
                    dropped += before - len(d["dark"])
                    kept += len(d["dark"])
                w.write(json.dumps(d, separators=(",", ":")) + "\n")
    except BaseException:
        # A bad line stops the copy: leave no half-written output behind (the input is untouched).
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    os.replace(tmp, args.output)
    print(f"{args.output}: {kept} dark examples kept, {dropped} {args.drop} dropped")


if __name__ == "__main__":
    main()
