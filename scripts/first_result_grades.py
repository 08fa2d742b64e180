"""How many queries a run puts a full match (grade 2), a partial one (1) or a non-match (0) first.

    python3 scripts/first_result_grades.py QRELS RUN

QRELS: a BEIR qrels tsv (header line); RUN: a TREC run. Prints one JSON line."""
import collections
import json
import sys

qrels_path, run_path = sys.argv[1], sys.argv[2]
qrels = collections.defaultdict(dict)
with open(qrels_path) as f:
    next(f)
    for line in f:
        q, d, s = line.rstrip("\n").split("\t")
        qrels[q][d] = int(s)
first = {}
with open(run_path) as f:
    for line in f:
        q, _, d, rank, _, _ = line.split()
        if q not in first or int(rank) < first[q][0]:
            first[q] = (int(rank), d)
counts = collections.Counter(qrels[q].get(first[q][1], 0) if q in first else "none" for q in qrels)
print(json.dumps({"run": run_path, "queries": len(qrels), "first_result_grade": dict(sorted(counts.items(), key=str))}))
