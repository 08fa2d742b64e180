#!/usr/bin/env python3
"""Checks that a student saved by `adam distill` (or any adam-saved sentence-transformers folder)
loads in sentence-transformers and encodes like `adam embed`.

    adam embed --model RUN/student --input texts.txt --output adam_vectors.jsonl
    /work/venv-ref/bin/python scripts/check_saved_student.py RUN/student texts.txt adam_vectors.jsonl

Encodes the texts (one per line) with sentence-transformers on CPU and compares with the
vectors of `adam embed` (one JSON array per line). Prints the max absolute difference and the
minimum cosine similarity as one JSON line; exits 1 if the max difference exceeds --tolerance.
"""
import argparse
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
from sentence_transformers import SentenceTransformer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("texts")
    ap.add_argument("adam_vectors")
    ap.add_argument("--tolerance", type=float, default=1e-4)
    args = ap.parse_args()

    with open(args.texts, encoding="utf-8") as f:
        texts = [line.rstrip("\n").rstrip("\r") for line in f]
    with open(args.adam_vectors, encoding="utf-8") as f:
        adam = np.array([json.loads(line) for line in f if line.strip()], dtype=np.float32)
    assert len(texts) == len(adam), f"{len(texts)} texts but {len(adam)} vectors"

    model = SentenceTransformer(args.model, device="cpu")
    st = model.encode(texts, batch_size=32, convert_to_numpy=True)
    diff = float(np.abs(st - adam).max())
    cos = (st * adam).sum(1) / (np.linalg.norm(st, axis=1) * np.linalg.norm(adam, axis=1))
    print(json.dumps({"texts": len(texts), "dim": int(st.shape[1]), "max_abs_diff": diff,
                      "min_cosine": float(cos.min()), "max_seq_length": model.max_seq_length,
                      "modules": [type(m).__name__ for m in model]}))
    sys.exit(0 if diff <= args.tolerance else 1)


if __name__ == "__main__":
    main()
