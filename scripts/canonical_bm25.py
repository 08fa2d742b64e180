"""BM25 on a paraphrase teaching set once every form of a value is written as one token, beside
the same BM25 on the words as written.

    python3 scripts/canonical_bm25.py SET_DIR [SPLIT]

The forms come from the set's README (the table `adam teaching-set` writes). With the synonyms
solved, BM25 still counts other creatures' and ruled-out values: what it reaches is what a teacher
that knows only the synonyms, not which creature a value belongs to, could reach (METHOD.md §7.1).
k1 0.9, b 0.4 and linear-gain nDCG@10 (trec_eval's), as `adam negatives` and `adam eval`; the
words are query_words.py's (split on what is not a letter, digit or hyphen), without the stemming
and stop words of `adam negatives` (its `bm25` crate's English tokenizer), so compare the two
lines with each other."""
import collections
import json
import math
import re
import sys

from query_words import words

root = sys.argv[1]
split = sys.argv[2] if len(sys.argv) > 2 else "test"
forms = {}
with open(f"{root}/README.md") as f:
    for line in f:
        m = re.match(r"\| (size|pattern|colour|habitat|diet|call|region) \| (.*) \|$", line.rstrip("\n"))
        if m:
            for i, value in enumerate(m.group(2).split(", ")):
                for form in value.split(" / "):
                    forms[form.lower()] = f"v{m.group(1)}{i}"
if not forms:
    sys.exit(f"{root}/README.md has no table of forms: is it a paraphrase teaching set?")
# Longest first, so that "peat moss" is one value and not "moss".
pattern = re.compile(r"\b(" + "|".join(re.escape(k) for k in sorted(forms, key=len, reverse=True)) + r")\b")


def tokens(text, canonical):
    text = text.lower()
    if canonical:
        text = pattern.sub(lambda m: forms[m.group(1)], text)
    return words(text)


def read_jsonl(path):
    with open(path) as f:
        return [(j["_id"], j["text"]) for j in map(json.loads, f)]


qrels = collections.defaultdict(dict)
with open(f"{root}/qrels/{split}.tsv") as f:
    next(f)
    for line in f:
        q, d, s = line.rstrip("\n").split("\t")
        qrels[q][d] = int(s)

texts = read_jsonl(f"{root}/corpus.jsonl")
query_texts = dict(read_jsonl(f"{root}/queries.jsonl"))
k1, b = 0.9, 0.4


def evaluate(canonical):
    corpus = {d: tokens(t, canonical) for d, t in texts}
    queries = {q: tokens(t, canonical) for q, t in query_texts.items()}
    n = len(corpus)
    avg = sum(map(len, corpus.values())) / n
    df = collections.Counter(w for t in corpus.values() for w in set(t))
    tf = {d: collections.Counter(t) for d, t in corpus.items()}

    def bm25(q, d):
        score = 0.0
        for w in q:
            if w in tf[d]:
                idf = math.log(1 + (n - df[w] + 0.5) / (df[w] + 0.5))
                score += idf * tf[d][w] * (k1 + 1) / (tf[d][w] + k1 * (1 - b + b * len(corpus[d]) / avg))
        return score

    total, first = 0.0, collections.Counter()
    for q in sorted(qrels):
        top = sorted(corpus, key=lambda d: (-bm25(queries[q], d), d))[:10]
        gains = [qrels[q].get(d, 0) for d in top]
        ideal = sorted(qrels[q].values(), reverse=True)[:10]
        dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        total += dcg / idcg if idcg else 0.0
        first[gains[0]] += 1
    return {"bm25": "one token per value" if canonical else "words as written", "ndcg@10": round(total / len(qrels), 4),
            "queries": len(qrels), "first_result_grade": dict(sorted(first.items()))}


for canonical in (False, True):
    print(json.dumps(evaluate(canonical)))
