"""How many queries a run puts a full match (grade 2), a partial one (1) or a non-match (0) first,
and the best nDCG@10 a reranker of the run's top 100 and top 300 could reach (every judged passage
in them put in order; linear gains, trec_eval's).

    python3 scripts/first_result_grades.py QRELS RUN

QRELS: a BEIR qrels tsv (header line); RUN: a TREC run. Prints one JSON line."""
import collections
import json
import math
import sys

qrels_path, run_path = sys.argv[1], sys.argv[2]
qrels = collections.defaultdict(dict)
with open(qrels_path) as f:
    next(f)
    for line in f:
        q, d, s = line.rstrip("\n").split("\t")
        qrels[q][d] = int(s)
ranked = collections.defaultdict(list)
with open(run_path) as f:
    for line in f:
        q, _, d, rank, _, _ = line.split()
        ranked[q].append((int(rank), d))
first = {q: min(docs)[1] for q, docs in ranked.items()}
counts = collections.Counter(qrels[q].get(first[q], 0) if q in first else "none" for q in qrels)


def dcg(gains):
    return sum(g / math.log2(i + 2) for i, g in enumerate(sorted(gains, reverse=True)[:10]))


def best_rerank(depth):
    total = 0.0
    for q, judged in qrels.items():
        top = [d for _, d in sorted(ranked.get(q, []))[:depth]]
        ideal = dcg(judged.values())
        total += dcg([judged.get(d, 0) for d in top]) / ideal if ideal else 0.0
    return round(total / len(qrels), 4)


print(json.dumps({"run": run_path, "queries": len(qrels), "first_result_grade": dict(sorted(counts.items(), key=str)),
                  "best_rerank_ndcg@10": {"top100": best_rerank(100), "top300": best_rerank(300)}}))
