"""How many of the query's words the positives and the negatives of a negatives file share.

    python3 scripts/query_word_overlap.py SET_DIR NEGATIVES.jsonl [MAX_QUERIES]

A query word is a lowercased word (letters, digits, hyphens) of the query that is in at most 15 %
of the set's passages (so not "the", "is", "lives"). Prints one JSON line: the mean number of
query words per positive and per negative. In the paraphrase teaching world the positives are
every full match (most of them not in BM25's top 30) and the negatives BM25's top 30, so the
negatives share more of the query's words than the positives: a teacher trained on such groups
learns that sharing the query's words is a sign of irrelevance (METHOD.md §7.1)."""
import collections
import json
import re
import sys

root, negatives = sys.argv[1], sys.argv[2]
limit = int(sys.argv[3]) if len(sys.argv) > 3 else 0


def words(text):
    return re.findall(r"[a-z0-9-]+", text.lower())


with open(f"{root}/corpus.jsonl") as f:
    corpus = {j["_id"]: set(words(j["text"])) for j in map(json.loads, f)}
with open(f"{root}/queries.jsonl") as f:
    queries = {j["_id"]: set(words(j["text"])) for j in map(json.loads, f)}
df = collections.Counter(w for ws in corpus.values() for w in ws)
common = {w for w, c in df.items() if c > 0.15 * len(corpus)}
shared = {"positives": [], "negatives": []}
with open(negatives) as f:
    for n, line in enumerate(f):
        if limit and n == limit:
            break
        j = json.loads(line)
        asked = queries[j["query_id"]] - common
        for side in shared:
            shared[side] += [len(asked & corpus[d["doc_id"]]) for d in j[side]]
print(json.dumps({side: {"passages": len(v), "query_words_shared": round(sum(v) / len(v), 3)} for side, v in shared.items()}))
