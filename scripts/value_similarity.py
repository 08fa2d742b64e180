#!/usr/bin/env python3
"""Issue 18: how alike a model's word embeddings make the values of the teaching world.

    python3 scripts/value_similarity.py MODEL_DIR [MODEL_DIR...]

For each model folder (model.safetensors with BERT's `word_embeddings`, and a tokenizer.json),
prints the cosine of the word embeddings of synonyms (two forms of one value: red / crimson) and
of rivals (two values of one attribute: red / green). A teacher that matches values needs
synonyms close and rivals apart; METHOD.md §7.1 reads this for masked-language pre-training.
Pure Python (the safetensors header is JSON, the tensor little-endian f32 or f16).
"""
import json
import math
import struct
import sys
from array import array

SYNONYMS = [("red", "crimson"), ("red", "scarlet"), ("marsh", "swamp"), ("marsh", "bog")]
RIVALS = [("red", "green"), ("crimson", "green"), ("marsh", "desert"), ("swamp", "desert"), ("snails", "insects")]


def word_embeddings(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        name = next(k for k in header if k.endswith("word_embeddings.weight"))
        meta = header[name]
        start, end = meta["data_offsets"]
        f.seek(8 + n + start)
        raw = f.read(end - start)
    if meta["dtype"] == "F32":
        values = array("f", raw)
    elif meta["dtype"] == "F16":
        values = [struct.unpack("<e", raw[i:i + 2])[0] for i in range(0, len(raw), 2)]
    else:
        sys.exit(f"{path}: {name} is {meta['dtype']}, not F32 or F16")
    rows, cols = meta["shape"]
    return [values[r * cols:(r + 1) * cols] for r in range(rows)]


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


for model in sys.argv[1:]:
    vocab = json.load(open(f"{model}/tokenizer.json"))["model"]["vocab"]
    emb = word_embeddings(f"{model}/model.safetensors")
    for kind, pairs in (("synonyms", SYNONYMS), ("rivals", RIVALS)):
        cells = [f"{a}/{b} {cosine(emb[vocab[a]], emb[vocab[b]]):+.2f}" for a, b in pairs if a in vocab and b in vocab]
        print(f"{model}  {kind}: {', '.join(cells)}")
