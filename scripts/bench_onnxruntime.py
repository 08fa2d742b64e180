#!/usr/bin/env python3
"""ONNX Runtime bar for the encoding-speed benchmark (benchmark only; not part of adam).

    /work/venv-ref/bin/pip install onnxruntime onnx      # once
    /work/venv-ref/bin/python scripts/bench_onnxruntime.py [--n 1000] [--batch-size 32] [--max-seq-length 128]

The same job as scripts/bench_pytorch.py: all-MiniLM-L6-v2 encodes the first N passages of
$ADAM_FIXTURES/data/trec-dl19/corpus.jsonl, sorted longest first as sentence-transformers'
encode() sorts them, in batches padded to their longest passage; mean pooling and L2
normalisation as the model's modules say. The BERT graph is exported once with torch.onnx into
~/.cache/adam-models/onnx/ (outside the repo) and run by ONNX Runtime's CPU provider with its
full graph optimisations (the fused attention and GELU that fastembed and transformers.js get),
as many intra-op threads as torch uses. The first batch is a warm-up and is not timed. Before
timing, the vectors of that batch are checked against sentence-transformers' (cosine > 0.9999),
so both engines compute the same thing.
Last line of output is one JSON object: {"engine": "onnxruntime", "passages_per_s": ...}.
"""
import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import onnxruntime as ort
import torch
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer

# The same passages and fixtures as the PyTorch benchmark beside this script.
from bench_pytorch import FIXTURES, first_passages

MODEL = FIXTURES / "models" / "all-MiniLM-L6-v2"
CACHE = Path(os.environ.get("ADAM_MODEL_CACHE", Path.home() / ".cache" / "adam-models")) / "onnx"


def export(path: Path, max_len: int) -> None:
    """The Hugging Face BertModel (token vectors) as an ONNX graph with dynamic batch and length."""
    bert = AutoModel.from_pretrained(str(MODEL)).eval()

    class TokenVectors(torch.nn.Module):
        """BertModel's last hidden state from the three inputs by name (the exporter passes them
        positionally, and BertModel.forward has more parameters than these)."""

        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state

    model = TokenVectors().eval()
    dummy = {k: torch.ones(2, max_len, dtype=torch.long) for k in ("input_ids", "attention_mask", "token_type_ids")}
    axes = {k: {0: "batch", 1: "tokens"} for k in dummy}
    axes["last_hidden_state"] = {0: "batch", 1: "tokens"}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.onnx.export(model, tuple(dummy.values()), str(tmp), input_names=list(dummy), output_names=["last_hidden_state"],
                      dynamic_axes=axes, opset_version=17, dynamo=False)
    tmp.rename(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-seq-length", type=int, default=128)
    args = ap.parse_args()

    passages = first_passages(args.n)
    tokenizer = AutoTokenizer.from_pretrained(str(MODEL))
    # sentence-transformers sorts by length (characters), longest first.
    passages.sort(key=lambda p: -len(p))

    path = CACHE / "all-MiniLM-L6-v2.onnx"
    if not path.is_file():
        export(path, args.max_seq_length)
    threads = torch.get_num_threads()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def encode(batch):
        enc = tokenizer(batch, padding=True, truncation=True, max_length=args.max_seq_length, return_tensors="np")
        feed = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
        tokens = session.run(None, feed)[0]
        mask = feed["attention_mask"][..., None].astype(np.float32)
        pooled = (tokens * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    bs = args.batch_size
    first = encode(passages[:bs])  # warm-up, not timed
    reference = SentenceTransformer(str(MODEL), device="cpu")
    reference.max_seq_length = args.max_seq_length
    expect = reference.encode(passages[:bs], batch_size=bs, convert_to_numpy=True, normalize_embeddings=True)
    cosine = float((first * expect).sum(1).min())
    assert cosine > 0.9999, f"ONNX Runtime's vectors differ from sentence-transformers' (min cosine {cosine})"

    rest = passages[bs:]
    t0 = time.perf_counter()
    for i in range(0, len(rest), bs):
        encode(rest[i:i + bs])
    dt = time.perf_counter() - t0
    pps = len(rest) / dt
    print(f"onnxruntime {ort.__version__}, threads {threads}, min cosine to sentence-transformers {cosine:.6f}; "
          f"encoded {len(rest)} passages in {dt:.2f} s -> {pps:.1f} passages/s")
    print(json.dumps({"engine": "onnxruntime", "passages_per_s": round(pps, 1), "onnxruntime": ort.__version__,
                      "threads": threads, "batch_size": bs, "max_seq_length": args.max_seq_length, "n": len(rest)}))


if __name__ == "__main__":
    main()
