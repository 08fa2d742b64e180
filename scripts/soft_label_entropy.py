#!/usr/bin/env python3
"""How soft a teacher's labels are: entropy of its softmax over each question's candidates.

Reads a score cache of `adam teacher score` (JSONL, gzipped or not) and prints, averaged over
questions, the entropy (nats) and the first positive's probability under the teacher's softmax
at T = 1: over the positive and its mined negatives ("plain"), and over those plus the dark
examples; and how many questions have a mined negative scored at or above the positive (no
band for the dark-example search there). METHOD.md §1's premise is that "plain" is near one-hot.

    python3 scripts/soft_label_entropy.py benchmarks/wikiqa-teachers/mpnet.scores.jsonl.gz

Standard library only.
"""
import gzip
import json
import math
import statistics
import sys


def softmax(xs):
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    s = sum(e)
    return [v / s for v in e]


def entropy(p):
    return -sum(x * math.log(x) for x in p if x > 0)


def main(path):
    try:
        f = gzip.open(path, "rt") if path.endswith(".gz") else open(path)
    except OSError as e:
        sys.exit(f"{path}: {e.strerror}")
    next(f)  # the header: teacher, dark-example settings
    plain_h, all_h, plain_p, all_p, inverted = [], [], [], [], 0
    for n, line in enumerate(f, 2):
        try:
            r = json.loads(line)
            pos = r["positives"][0]["score"]
            neg = [x["score"] for x in r["negatives"]]
            dark = [d["teacher_score"] for d in r["dark"] if d.get("teacher_score") is not None]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            sys.exit(f"{path}:{n}: not a teacher-score record ({e})")
        p = softmax([pos] + neg)
        a = softmax([pos] + neg + dark)
        plain_h.append(entropy(p))
        all_h.append(entropy(a))
        plain_p.append(p[0])
        all_p.append(a[0])
        inverted += bool(neg) and max(neg) >= pos
    m = statistics.mean
    print(
        f"{path}: {len(plain_h)} questions; plain: entropy {m(plain_h):.3f} nats, P(positive) {m(plain_p):.3f}; "
        f"with the dark examples: entropy {m(all_h):.3f}, P(positive) {m(all_p):.3f}; "
        f"a mined negative >= the positive: {inverted}"
    )


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        sys.exit(__doc__ + "\nusage: soft_label_entropy.py SCORES.jsonl[.gz]")
    main(sys.argv[1])
