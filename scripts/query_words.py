"""What the teaching-world scripts count as a word (lowercased letters, digits, hyphens) and as a
query word (a word of the query in at most 15 % of the set's passages, so not "the", "is" or
"lives"), in one place. Imported by mark_query_words.py, query_word_overlap.py and
canonical_bm25.py, whose figures (METHOD.md §7.1) must agree on it."""
import collections
import re


def words(text):
    return re.findall(r"[a-z0-9-]+", text.lower())


def common_words(passages):
    """The words in more than 15 % of `passages` (texts)."""
    passages = list(passages)
    df = collections.Counter(w for text in passages for w in set(words(text)))
    return {w for w, c in df.items() if c > 0.15 * len(passages)}


def query_words(query, common):
    """The query's words that are not `common`."""
    return set(words(query)) - common
