#!/usr/bin/env python3
"""PyTorch baseline for the encoding-speed benchmark.

    /work/venv-ref/bin/python scripts/bench_pytorch.py [--n 2000] [--batch-size 32] [--max-seq-length 128]

sentence-transformers encode() of the first N passages ('text' field) of
$ADAM_FIXTURES/data/trec-dl19/corpus.jsonl with all-MiniLM-L6-v2 (or --model) on CPU with
torch's default thread count (or --device cuda: scripts/gpu_bench.sh). The first batch is a
warm-up and is excluded from the timing.
Last line of output is one JSON object: {"engine": "pytorch", "passages_per_s": ...}.
"""
import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
import sentence_transformers
from sentence_transformers import SentenceTransformer

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("ADAM_FIXTURES", REPO.parent / "shared"))


DL19 = FIXTURES / "data" / "trec-dl19" / "corpus.jsonl"


def first_passages(n, corpus=DL19):
    """The first n passages ('text') of the DL19 corpus: the benchmark's input (also
    scripts/bench_onnxruntime.py's)."""
    passages = []
    with open(corpus, encoding="utf-8") as f:
        for line in f:
            passages.append(json.loads(line)["text"])
            if len(passages) == n:
                break
    assert len(passages) == n, len(passages)
    return passages


def device_name(device):
    return torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-seq-length", type=int, default=128)
    ap.add_argument("--model", default=str(FIXTURES / "models" / "all-MiniLM-L6-v2"))
    ap.add_argument("--device", default="cpu", help="cpu, or cuda")
    ap.add_argument("--corpus", default=str(DL19))
    args = ap.parse_args()

    passages = first_passages(args.n, args.corpus)

    model = SentenceTransformer(args.model, device=args.device)
    model.max_seq_length = args.max_seq_length
    model.eval()
    bs = args.batch_size
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, sentence-transformers {sentence_transformers.__version__}, "
          f"threads {threads}, cpu {platform.processor() or platform.machine()}, device {device_name(args.device)}, "
          f"n={args.n} batch_size={bs} max_seq_length={model.max_seq_length}")

    with torch.inference_mode():
        # Warm-up: the first batch, excluded from timing.
        model.encode(passages[:bs], batch_size=bs, convert_to_numpy=True)
        rest = passages[bs:]
        sync(args.device)
        t0 = time.perf_counter()
        emb = model.encode(rest, batch_size=bs, convert_to_numpy=True)  # to the host: synchronised
        dt = time.perf_counter() - t0
    assert emb.shape == (len(rest), 384), emb.shape
    pps = len(rest) / dt
    print(f"encoded {len(rest)} passages in {dt:.2f} s -> {pps:.1f} passages/s")
    print(json.dumps({"engine": "pytorch", "passages_per_s": round(pps, 1), "torch": torch.__version__,
                      "threads": threads, "device": device_name(args.device), "batch_size": bs, "max_seq_length": args.max_seq_length,
                      "n": len(rest)}))


if __name__ == "__main__":
    main()
