"""An exact-match feature emulated in text: in each (query, passage) pair, "§" (an unknown piece
for the teaching set's tokenizer) before every passage word that is also a query word (a word in at
most 15 % of the passages: query_words.py).

    python3 scripts/mark_query_words.py SET_DIR neg NEGATIVES.jsonl OUT_DIR   # training groups
    python3 scripts/mark_query_words.py SET_DIR run RUN OUT_DIR               # a run to rerank

Writes a BEIR folder OUT_DIR whose documents are the pairs, `QUERY~PASSAGE`, with their qrels
(split train or test), and OUT_DIR/neg.jsonl or OUT_DIR/run with the new ids (`sed 's/ [^ ]*~/ /'`
turns a reranked run back). METHOD.md §7.1."""
import json
import os
import re
import sys

from query_words import common_words, query_words

world, mode, src, out = sys.argv[1:5]
with open(f"{world}/corpus.jsonl") as f:
    corpus = {j["_id"]: j for j in map(json.loads, f)}
with open(f"{world}/queries.jsonl") as f:
    queries = {j["_id"]: j for j in map(json.loads, f)}
common = common_words(j["text"] for j in corpus.values())


def mark(q, text):
    asked = query_words(queries[q]["text"], common)
    return re.sub(r"[A-Za-z0-9-]+", lambda m: f"§ {m[0]}" if m[0].lower() in asked else m[0], text)


os.makedirs(f"{out}/qrels", exist_ok=True)
pairs = set()
if mode == "neg":
    split = "train"
    with open(src) as f, open(f"{out}/neg.jsonl", "w") as w:
        for j in map(json.loads, f):
            q = j["query_id"]
            for x in j["positives"] + j["negatives"]:
                pairs.add((q, x["doc_id"]))
                x["doc_id"] = f"{q}~{x['doc_id']}"
            w.write(json.dumps(j) + "\n")
elif mode == "run":
    split = "test"
    with open(src) as f, open(f"{out}/run", "w") as w:
        for line in f:
            q, q0, d, rank, score, tag = line.split()
            pairs.add((q, d))
            w.write(f"{q} {q0} {q}~{d} {rank} {score} {tag}\n")
else:
    sys.exit(f"mode {mode!r}: neg or run")
with open(f"{out}/corpus.jsonl", "w") as w:
    for q, d in sorted(pairs):
        doc = {"_id": f"{q}~{d}", "title": corpus[d].get("title", ""), "text": mark(q, corpus[d]["text"])}
        w.write(json.dumps(doc) + "\n")
with open(f"{out}/queries.jsonl", "w") as w:
    for q in sorted({q for q, _ in pairs}):
        w.write(json.dumps(queries[q]) + "\n")
with open(f"{world}/qrels/{split}.tsv") as f, open(f"{out}/qrels/{split}.tsv", "w") as w:
    next(f)
    w.write("query-id\tcorpus-id\tscore\n")
    for line in f:
        q, d, s = line.rstrip("\n").split("\t")
        if (q, d) in pairs:
            w.write(f"{q}\t{q}~{d}\t{s}\n")
print(f"{len(pairs)} pairs written to {out}")
