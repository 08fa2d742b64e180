"""How many of the query's words the positives and the negatives of a negatives file share.

    python3 scripts/query_word_overlap.py SET_DIR NEGATIVES.jsonl [MAX_QUERIES]

A query word is as query_words.py defines it (a word in at most 15 % of the set's passages).
Prints one JSON line: the mean number of query words per positive and per negative. In the paraphrase teaching world the positives are
every full match (most of them not in BM25's top 30) and the negatives BM25's top 30, so the
negatives share more of the query's words than the positives: a teacher trained on such groups
learns that sharing the query's words is a sign of irrelevance (METHOD.md §7.1)."""
import json
import sys

from query_words import common_words, query_words, words

root, negatives = sys.argv[1], sys.argv[2]
limit = int(sys.argv[3]) if len(sys.argv) > 3 else 0
with open(f"{root}/corpus.jsonl") as f:
    texts = {j["_id"]: j["text"] for j in map(json.loads, f)}
common = common_words(texts.values())
corpus = {d: set(words(t)) for d, t in texts.items()}
with open(f"{root}/queries.jsonl") as f:
    queries = {j["_id"]: query_words(j["text"], common) for j in map(json.loads, f)}
shared = {"positives": [], "negatives": []}
with open(negatives) as f:
    for n, line in enumerate(f):
        if limit and n == limit:
            break
        j = json.loads(line)
        asked = queries[j["query_id"]]
        for side in shared:
            shared[side] += [len(asked & corpus[d["doc_id"]]) for d in j[side]]
print(json.dumps({side: {"passages": len(v), "query_words_shared": round(sum(v) / len(v), 3)} for side, v in shared.items()}))
