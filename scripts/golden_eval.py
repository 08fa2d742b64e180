#!/usr/bin/env python3
"""Golden values for the trec_eval-compatible evaluator (TREC DL 2019 passages).

    /work/venv-ref/bin/python scripts/golden_eval.py

Reads $ADAM_FIXTURES/data/trec-dl19 (ADAM_FIXTURES defaults to <repo>/../shared) and writes
  tests/golden/trec_dl19_bm25.run      (a) real BM25 run, top 100 per query
  tests/golden/trec_dl19_ties.run      (b) same rankings, scores rounded to integers (ties),
                                           one qrels query dropped, one unjudged query added,
                                           lines NOT in trec_eval order
  tests/golden/trec_dl19_eval.json     pytrec_eval results for both runs
See tests/golden/README.md for the trec_eval semantics these values encode.
"""
import json
import math
import os
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytrec_eval

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("ADAM_FIXTURES", REPO.parent / "shared"))
DATA = FIXTURES / "data" / "trec-dl19"
GOLDEN = REPO / "tests" / "golden"
RUN_A = GOLDEN / "trec_dl19_bm25.run"
RUN_B = GOLDEN / "trec_dl19_ties.run"
OUT = GOLDEN / "trec_dl19_eval.json"

K1, B = 0.9, 0.4
TOP_K = 100
RELEVANCE_LEVEL = 2
MEASURES = {"ndcg_cut.10", "recall.10,100", "map", "recip_rank"}
REPORTED = ["ndcg_cut_10", "recall_10", "recall_100", "map", "mrr_10"]
EXTRA_QID = "999999999"  # in run (b) only, not in the qrels
EXTRA_QUERY = "what is the lifespan of a honey bee queen"
TOKEN_RE = re.compile(r"[^\W_]+")  # maximal runs of Unicode letters/digits


def tokenize(text):
    """lowercase, split on anything that is not a letter or digit (whitespace, punctuation, _)."""
    return TOKEN_RE.findall(text.lower())


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_qrels(path):
    qrels = defaultdict(dict)
    with open(path, encoding="utf-8") as f:
        header = f.readline().split()
        assert header == ["query-id", "corpus-id", "score"], header
        for line in f:
            if line.strip():
                q, d, s = line.split("\t")
                qrels[q][d] = int(s)
    return dict(qrels)


class BM25:
    """Plain BM25, Lucene idf: log(1 + (N - df + 0.5) / (df + 0.5)); unique query terms."""

    def __init__(self, docs):
        self.ids = [d["_id"] for d in docs]
        self.tfs = []
        df = Counter()
        for d in docs:
            text = (d.get("title") or "") + " " + (d.get("text") or "")
            tf = Counter(tokenize(text))
            self.tfs.append((tf, sum(tf.values())))
            df.update(tf.keys())
        self.n = len(docs)
        self.avgdl = sum(l for _, l in self.tfs) / self.n
        self.idf = {t: math.log(1.0 + (self.n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        self.postings = defaultdict(list)
        for i, (tf, _) in enumerate(self.tfs):
            for t, c in tf.items():
                self.postings[t].append((i, c))

    def search(self, query, k):
        scores = defaultdict(float)
        for t in sorted(set(tokenize(query))):
            idf = self.idf.get(t)
            if idf is None:
                continue
            for i, tf in self.postings[t]:
                dl = self.tfs[i][1]
                scores[i] += idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * dl / self.avgdl))
        ranked = sorted(((s, self.ids[i]) for i, s in scores.items()), reverse=True)
        return [(d, s) for s, d in ranked[:k]]


def trec_order(docs):
    """trec_eval 9.0.8 order: sim as float32 descending, ties by docno descending (strcmp)."""
    return sorted(docs.items(), key=lambda kv: (np.float32(kv[1]), kv[0].encode()), reverse=True)


def write_run(path, lines):
    with open(path, "w", encoding="ascii", newline="\n") as f:
        for q, d, rank, score_str, tag in lines:
            f.write(f"{q} Q0 {d} {rank} {score_str} {tag}\n")


def read_run(path):
    """Parse a run file exactly as trec_eval uses it: qid, docno, sim; rank ignored."""
    run = defaultdict(dict)
    with open(path, encoding="ascii") as f:
        for line in f:
            q, _, d, _rank, sim, _tag = line.split()
            assert d not in run[q], f"duplicate {q} {d}"
            run[q][d] = float(sim)
    return dict(run)


def evaluate(qrels, run):
    ev = pytrec_eval.RelevanceEvaluator(qrels, MEASURES, relevance_level=RELEVANCE_LEVEL)
    res = ev.evaluate(run)
    # MRR@10: cut each ranking to its first 10 docs in trec_eval's own order
    # (== trec_eval -M 10), then recip_rank.
    run10 = {q: dict(trec_order(docs)[:10]) for q, docs in run.items()}
    ev10 = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}, relevance_level=RELEVANCE_LEVEL)
    res10 = ev10.evaluate(run10)
    per_query = {}
    for q in sorted(res):
        v = res[q]
        per_query[q] = {
            "ndcg_cut_10": v["ndcg_cut_10"],
            "recall_10": v["recall_10"],
            "recall_100": v["recall_100"],
            "map": v["map"],
            "mrr_10": res10[q]["recip_rank"],
            "recip_rank": v["recip_rank"],
        }
    return per_query


def reference_eval(qrels, run):
    """Independent re-implementation of the trec_eval semantics in README.md (cross-check)."""
    out = {}
    for q, docs in run.items():
        if q not in qrels:
            continue
        rq = qrels[q]
        ranked = [d for d, _ in trec_order(docs)]
        rel = [rq.get(d, -1) for d in ranked]  # -1: not judged
        num_rel = sum(1 for g in rq.values() if g >= RELEVANCE_LEVEL)
        dcg = sum(g / math.log2(i + 2) for i, g in enumerate(rel[:10]) if g > 0)
        ideal = sorted((g for g in rq.values() if g > 0), reverse=True)[:10]
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        hits = [g >= RELEVANCE_LEVEL for g in rel]
        ap, found = 0.0, 0
        for i, h in enumerate(hits):
            if h:
                found += 1
                ap += found / (i + 1)
        first = next((i for i, h in enumerate(hits) if h), None)
        out[q] = {
            "ndcg_cut_10": dcg / idcg if idcg > 0 else 0.0,
            "recall_10": sum(hits[:10]) / num_rel if num_rel else 0.0,
            "recall_100": sum(hits[:100]) / num_rel if num_rel else 0.0,
            "map": ap / num_rel if num_rel else 0.0,
            "mrr_10": 1.0 / (first + 1) if first is not None and first < 10 else 0.0,
            "recip_rank": 1.0 / (first + 1) if first is not None else 0.0,
        }
    return out


def summarize(name, path, qrels, run, description):
    per_query = evaluate(qrels, run)
    ref = reference_eval(qrels, run)
    assert ref.keys() == per_query.keys()
    for q in per_query:
        for m, v in per_query[q].items():
            assert abs(v - ref[q][m]) < 1e-12, (name, q, m, v, ref[q][m])
    qs = sorted(per_query)
    mean = {m: sum(per_query[q][m] for q in qs) / len(qs) for m in REPORTED + ["recip_rank"]}
    print(f"{name}: {len(qs)} evaluated queries; " + " ".join(f"{m}={mean[m]:.4f}" for m in REPORTED))
    return {
        "run_file": str(path.relative_to(REPO)),
        "description": description,
        "num_queries_in_run": len(run),
        "num_queries_evaluated": len(qs),
        "queries_in_run_not_in_qrels": sorted(set(run) - set(qrels)),
        "queries_in_qrels_not_in_run": sorted(set(qrels) - set(run)),
        "mean": mean,
        "per_query": per_query,
    }


def main():
    corpus = read_jsonl(DATA / "corpus.jsonl")
    queries = {q["_id"]: q["text"] for q in read_jsonl(DATA / "queries.jsonl")}
    qrels = read_qrels(DATA / "qrels" / "test.tsv")
    qids = sorted(qrels)
    print(f"corpus {len(corpus)} docs, {len(qids)} qrels queries")
    bm25 = BM25(corpus)

    # (a) real BM25 run, written in trec_eval order, 4 decimals.
    lines_a, results = [], {}
    for q in qids:
        hits = bm25.search(queries[q], TOP_K)
        results[q] = hits
        scored = {d: float(f"{s:.4f}") for d, s in hits}
        for rank, (d, s) in enumerate(trec_order(scored), 1):
            lines_a.append((q, d, rank, f"{s:.4f}", "bm25"))
    write_run(RUN_A, lines_a)

    # (b) tied run: same top-100 sets, scores rounded to integers. Lines are written in
    # the *unrounded* BM25 order with rank = line number, so the file order within a tie
    # group is NOT trec_eval's order. Drop the first qrels query; add an unjudged query.
    dropped = qids[0]
    lines_b = []
    for q in qids[1:] + [EXTRA_QID]:
        hits = results[q] if q != EXTRA_QID else bm25.search(EXTRA_QUERY, TOP_K)
        for rank, (d, s) in enumerate(hits, 1):
            lines_b.append((q, d, rank, f"{round(s):d}", "bm25-int"))
    write_run(RUN_B, lines_b)

    run_a, run_b = read_run(RUN_A), read_run(RUN_B)
    # The files must rank identically whether sims are read as float32 (trec_eval 9.0.8,
    # pytrec_eval) or float64 (trec_eval 10): no two distinct values may collide in f32.
    for run in (run_a, run_b):
        for docs in run.values():
            vals = set(docs.values())
            assert len(vals) == len({np.float32(v) for v in vals})
    # How much tie-breaking (b) exercises.
    ties = sum(len(docs) - len(set(docs.values())) for docs in run_b.values())
    numeric_vs_string = 0
    for docs in run_b.values():
        groups = defaultdict(list)
        for d, s in docs.items():
            groups[s].append(d)
        for ds in groups.values():
            if sorted(ds, reverse=True) != sorted(ds, key=int, reverse=True):
                numeric_vs_string += 1
    print(f"run (b): {ties} docs share a score with a higher-ranked doc; "
          f"{numeric_vs_string} tie groups where string order != numeric order")
    for p in (RUN_A, RUN_B):
        size = p.stat().st_size
        assert size < 1_000_000, (p, size)
        print(f"wrote {p.relative_to(REPO)} ({size} bytes)")

    doc = {
        "generator": "scripts/golden_eval.py",
        "pytrec_eval": "pytrec_eval-terrier " + __import__("importlib.metadata").metadata.version("pytrec_eval-terrier"),
        "qrels": "trec-dl19/qrels/test.tsv",
        "relevance_level": RELEVANCE_LEVEL,
        "bm25": {"k1": K1, "b": B, "idf": "ln(1 + (N - df + 0.5) / (df + 0.5))",
                 "tokenize": "lowercase, maximal runs of Unicode letters/digits ([^\\W_]+)",
                 "query_terms": "unique", "top_k": TOP_K},
        "measures": {
            "ndcg_cut_10": "trec_eval ndcg_cut.10 (graded gains, see README)",
            "recall_10": "trec_eval recall.10", "recall_100": "trec_eval recall.100",
            "map": "trec_eval map",
            "mrr_10": "trec_eval recip_rank on the run cut to its top 10 in trec_eval order "
                      "(float32 sim desc, docno desc by strcmp); equals trec_eval -M 10 -m recip_rank",
            "recip_rank": "trec_eval recip_rank, uncut (for reference)",
        },
        "mean_semantics": "arithmetic mean over queries present in both run and qrels "
                          "(trec_eval 'all' line without -c)",
        "runs": {
            "bm25": summarize("bm25", RUN_A, qrels, run_a,
                              "BM25 top 100 per qrels query, scores with 4 decimals"),
            "ties": summarize("ties", RUN_B, qrels, run_b,
                              f"run bm25 with integer-rounded scores, lines in unrounded-BM25 "
                              f"order (not trec_eval order); qrels query {dropped} absent; "
                              f"query {EXTRA_QID} not in qrels"),
        },
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(REPO)} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    sys.exit(main())
