#!/usr/bin/env python3
"""Issue 18: groups built from near twins (METHOD.md §7.1, "Minimal pairs as the negatives").

    python3 scripts/twin_negatives.py TRAIN_WORLD NEGATIVES_IN NEGATIVES_OUT [--twins T] [--bm25 K]

TRAIN_WORLD is a paraphrase world made with `adam teaching-set --near-twins P`, NEGATIVES_IN its
`adam negatives` file (BM25's top 30). A near twin is a passage about another creature written
from the same generator draws: once each passage's own creature name is replaced, the two share
all their sentences but at most two and 80 % of their words in order (difflib). For each query the
output keeps only the positives that have exactly one twin and that twin is not relevant, and puts
those twins first among the negatives (the first T such positives, default 3), then BM25's first K
(default 4); queries without such a positive are dropped. Train with group size 8 and
`--negatives-depth 7` (T + K) so that every group holds the twins of all its positives: each
group is then a minimal pair (plus the other twins and BM25's hardest).
"""
import argparse
import collections
import difflib
import json
import os
import re
import sys


def sentences(doc):
    text = doc["text"].replace(doc["title"], "X")
    return [s.strip() for s in re.split(r"(?<=\.)\s+", text) if s.strip()]


def find_twins(docs):
    """Passage id -> ids of its near twins."""
    sents = [sentences(d) for d in docs]
    words = [" ".join(s).split() for s in sents]
    index = collections.defaultdict(list)
    for i, ss in enumerate(sents):
        for s in set(ss):
            index[s].append(i)
    twins = collections.defaultdict(set)
    for i, ss in enumerate(sents):
        shared = collections.Counter()
        for s in set(ss):
            if len(index[s]) <= 50:  # a stock sentence shared by many passages says nothing
                shared.update(j for j in index[s] if j != i)
        for j, c in shared.items():
            n = max(len(ss), len(sents[j]))
            if (c >= n - 2 and docs[i]["title"] != docs[j]["title"]
                    and difflib.SequenceMatcher(None, words[i], words[j]).ratio() >= 0.8):
                twins[docs[i]["_id"]].add(docs[j]["_id"])
    return twins


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("world")
    ap.add_argument("negatives_in")
    ap.add_argument("negatives_out")
    ap.add_argument("--bm25", type=int, default=4)
    ap.add_argument("--twins", type=int, default=3)
    a = ap.parse_args()
    with open(f"{a.world}/corpus.jsonl") as f:
        docs = [json.loads(line) for line in f]
    twins = find_twins(docs)
    kept = dropped = pairs = 0
    with open(a.negatives_in) as f, open(a.negatives_out + ".tmp", "w") as w:
        for line in f:
            j = json.loads(line)
            relevant = {p["doc_id"] for p in j["positives"]}
            positives, twin_negs = [], []
            for p in j["positives"]:
                t = twins.get(p["doc_id"], set())
                if len(t) == 1 and not t & relevant and len(positives) < a.twins:
                    positives.append(p)
                    twin_negs.extend(t)
            if not positives:
                dropped += 1
                continue
            twin_negs = list(dict.fromkeys(twin_negs))
            bm25 = [n["doc_id"] for n in j["negatives"] if n["doc_id"] not in twin_negs][: a.bm25]
            j["positives"] = positives
            j["negatives"] = [{"doc_id": d, "score": 0.0, "rank": r + 1} for r, d in enumerate(twin_negs + bm25)]
            w.write(json.dumps(j) + "\n")
            kept += 1
            pairs += len(twin_negs)
    os.replace(a.negatives_out + ".tmp", a.negatives_out)
    print(f"{sum(len(v) == 1 for v in twins.values())} passages with one twin; {kept} queries kept "
          f"({pairs / max(kept, 1):.2f} twin negatives each), {dropped} without a twinned positive", file=sys.stderr)


if __name__ == "__main__":
    main()
