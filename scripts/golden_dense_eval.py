#!/usr/bin/env python3
"""Golden values for `adam eval --model`: exact dense retrieval with all-MiniLM-L6-v2 on the
WikiQA test split, scored by pytrec_eval.

    HF_HUB_OFFLINE=1 /work/venv-ref/bin/python scripts/golden_dense_eval.py

Reads $ADAM_FIXTURES/models/all-MiniLM-L6-v2 and $ADAM_FIXTURES/data/wikiqa (ADAM_FIXTURES
defaults to <repo>/../shared) and writes tests/golden/wikiqa_minilm_dense.json with:
  * full:   the whole corpus (reference for a release run; too slow for the test suite);
  * subset: the documents judged for the test queries plus every SUBSET_STRIDE-th document of
            corpus.jsonl (ids listed), which the Rust test re-creates and checks: mean measures,
            and each query's top 11 (doc id, score).
Pipeline, as `adam eval --model` does it: sentence-transformers `encode` (batch 32, the model's
max_seq_length, its own Normalize module), text = title + " " + text (BEIR), query text as is;
score = dot product in float32; each query's documents sorted by score descending, ties by doc id
descending (trec_eval's order), top DEPTH kept; pytrec_eval with relevance_level 1; mrr@10 is
recip_rank on the run cut to its first 10 in that order (trec_eval -M 10).
No fixture text is written, only ids and numbers.
"""
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytrec_eval
import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("ADAM_FIXTURES", REPO.parent / "shared"))
MODEL_DIR = FIXTURES / "models" / "all-MiniLM-L6-v2"
DATA = FIXTURES / "data" / "wikiqa"
SPLIT = "test"
OUT = REPO / "tests" / "golden" / "wikiqa_minilm_dense.json"

DEPTH = 100
BATCH = 32
RELEVANCE_LEVEL = 1
SUBSET_STRIDE = 12
TOP = 11  # top 10 plus the next, so a test can see the gap below rank 10
MEASURES = {"ndcg_cut.10", "recall.10,100", "map", "recip_rank"}


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


def full_text(doc):
    title = doc.get("title") or ""
    return f"{title} {doc['text']}" if title else doc["text"]


def rank(scores, ids):
    """All documents, trec_eval order: float32 score descending, then doc id bytes descending."""
    return sorted(zip(scores.tolist(), ids), key=lambda sd: (np.float32(sd[0]), sd[1].encode()), reverse=True)


def retrieve(doc_emb, doc_ids, q_emb, qids):
    scores = q_emb @ doc_emb.T  # float32
    assert scores.dtype == np.float32
    return {q: rank(scores[i], doc_ids)[: max(DEPTH, TOP)] for i, q in enumerate(qids)}


def evaluate(qrels, ranked):
    run = {q: {d: float(s) for s, d in r[:DEPTH]} for q, r in ranked.items()}
    res = pytrec_eval.RelevanceEvaluator(qrels, MEASURES, relevance_level=RELEVANCE_LEVEL).evaluate(run)
    run10 = {q: {d: float(s) for s, d in r[:10]} for q, r in ranked.items()}
    res10 = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}, relevance_level=RELEVANCE_LEVEL).evaluate(run10)
    qs = sorted(res)
    per_query = {
        q: {
            "ndcg@10": res[q]["ndcg_cut_10"],
            "mrr@10": res10[q]["recip_rank"],
            "recall@10": res[q]["recall_10"],
            "recall@100": res[q]["recall_100"],
            "map": res[q]["map"],
        }
        for q in qs
    }
    mean = {m: sum(per_query[q][m] for q in qs) / len(qs) for m in per_query[qs[0]]}
    return mean, per_query


def near_ties(ranked, qrels, eps):
    """Queries where two adjacent documents within the top DEPTH + 1, of different relevance,
    score within eps: only there can float noise of that size change a measure."""
    n = 0
    for q, r in ranked.items():
        rel = qrels.get(q, {})
        for (s1, d1), (s2, d2) in zip(r[:DEPTH], r[1 : DEPTH + 1]):
            if abs(s1 - s2) < eps and (rel.get(d1, 0) >= RELEVANCE_LEVEL) != (rel.get(d2, 0) >= RELEVANCE_LEVEL):
                n += 1
                break
    return n


def main():
    torch.manual_seed(0)
    print(f"torch {torch.__version__} threads={torch.get_num_threads()} "
          f"sentence-transformers {sentence_transformers.__version__} pytrec_eval-terrier "
          f"{__import__('importlib.metadata').metadata.version('pytrec_eval-terrier')}")
    corpus = read_jsonl(DATA / "corpus.jsonl")
    queries = {q["_id"]: q["text"] for q in read_jsonl(DATA / "queries.jsonl")}
    qrels = read_qrels(DATA / "qrels" / f"{SPLIT}.tsv")
    qids = sorted(qrels)
    assert all(q in queries for q in qids), "every judged query has a text"
    doc_ids = [d["_id"] for d in corpus]
    assert len(set(doc_ids)) == len(doc_ids)

    st = SentenceTransformer(str(MODEL_DIR), device="cpu")
    st.eval()
    modules = [type(m).__name__ for m in st]
    print("modules:", modules, "max_seq_length:", st.max_seq_length)

    start = time.time()
    with torch.inference_mode():
        doc_emb = st.encode([full_text(d) for d in corpus], batch_size=BATCH, convert_to_numpy=True)
        q_emb = st.encode([queries[q] for q in qids], batch_size=BATCH, convert_to_numpy=True)
    encode_s = time.time() - start
    print(f"encoded {len(corpus)} documents and {len(qids)} queries in {encode_s:.0f} s")
    assert doc_emb.dtype == np.float32

    ranked_full = retrieve(doc_emb, doc_ids, q_emb, qids)
    mean_full, _ = evaluate(qrels, ranked_full)
    print("full:  ", " ".join(f"{m}={v:.4f}" for m, v in mean_full.items()))

    judged = {d for q in qids for d in qrels[q]}
    subset_idx = [i for i, d in enumerate(doc_ids) if d in judged or i % SUBSET_STRIDE == 0]
    subset_ids = [doc_ids[i] for i in subset_idx]
    ranked_sub = retrieve(doc_emb[subset_idx], subset_ids, q_emb, qids)
    mean_sub, per_query_sub = evaluate(qrels, ranked_sub)
    print(f"subset ({len(subset_ids)} documents):", " ".join(f"{m}={v:.4f}" for m, v in mean_sub.items()))

    doc = {
        "generator": "scripts/golden_dense_eval.py",
        "versions": {
            "torch": torch.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "pytrec_eval_terrier": __import__("importlib.metadata").metadata.version("pytrec_eval-terrier"),
        },
        "model": "models/all-MiniLM-L6-v2",
        "modules": modules,
        "max_seq_length": st.max_seq_length,
        "data": "data/wikiqa",
        "split": SPLIT,
        "rel_threshold": RELEVANCE_LEVEL,
        "depth": DEPTH,
        "batch_size": BATCH,
        "queries": len(qids),
        "notes": [
            "Measures use adam eval's names: ndcg@10 = trec_eval ndcg_cut_10, mrr@10 = recip_rank "
            "on the top 10 (trec_eval -M 10), recall@10/100 = recall_10/100, map = map.",
            "Embeddings of the same text differ between sentence-transformers and adam by ~1e-6 "
            "(float rounding, batch padding), so scores differ by ~1e-6 and two documents whose "
            "scores are that close can swap ranks. near_ties counts queries where that could "
            "change a measure at eps 1e-5; one swap moves a mean by at most 1/queries.",
        ],
        "full": {
            "documents": len(doc_ids),
            "mean": mean_full,
            "near_ties_1e-5": near_ties(ranked_full, qrels, 1e-5),
        },
        "subset": {
            "rule": f"documents judged in qrels/{SPLIT}.tsv, plus every {SUBSET_STRIDE}th line of "
                    f"corpus.jsonl (0-based index % {SUBSET_STRIDE} == 0), in corpus order",
            "documents": len(subset_ids),
            "doc_ids": subset_ids,
            "mean": mean_sub,
            "near_ties_1e-5": near_ties(ranked_sub, qrels, 1e-5),
            "per_query": per_query_sub,
            "top": {q: [[d, float(f"{s:.7g}")] for s, d in r[:TOP]] for q, r in ranked_sub.items()},
        },
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(REPO)} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    sys.exit(main())
