#!/usr/bin/env python3
"""PyTorch baseline for `adam bench-train`: training throughput of a cross-encoder.

    /work/venv-ref/bin/python scripts/bench_train_pytorch.py [--batch-size 16] [--max-length 128] [--steps 5]

all-MiniLM-L6-v2 (or --model) as BertForSequenceClassification (1 label, new head) on CPU with
torch's default threads (or --device cuda: scripts/gpu_bench.sh, each phase timed after a
synchronisation); each step scores a batch of (passage, passage) pairs from the longest passages of
$ADAM_FIXTURES/data/trec-dl19/corpus.jsonl, padded to --max-length, takes the listwise
cross-entropy over groups of 8 (first pair the target), backpropagates and takes an AdamW step
(lr 2e-5, weight decay 0.01, biases and LayerNorm undecayed, global grad-norm clipping at 1), as
`adam bench-train` does. One untimed warm-up step. Last line: one JSON object with pairs_per_s.
"""
import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
import transformers
from transformers import AutoModelForSequenceClassification, AutoTokenizer

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("ADAM_FIXTURES", REPO.parent / "shared"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--model", default=str(FIXTURES / "models" / "all-MiniLM-L6-v2"))
    ap.add_argument("--device", default="cpu", help="cpu, or cuda")
    ap.add_argument("--corpus", default=str(FIXTURES / "data" / "trec-dl19" / "corpus.jsonl"))
    args = ap.parse_args()
    cuda = args.device.startswith("cuda")

    def now():
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    with open(args.corpus, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    texts.sort(key=len, reverse=True)

    model_dir = args.model
    tok = AutoTokenizer.from_pretrained(model_dir)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1).to(args.device)
    model.train()  # dropout on, as in training
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": no_decay, "weight_decay": 0.0}], lr=2e-5, eps=1e-8)
    bs, group = args.batch_size, min(8, args.batch_size)
    groups = bs // group
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, threads {threads}, "
          f"batch {bs} x {args.max_length} tokens, {args.steps} timed steps")
    fwd = bwd = stp = 0.0
    for step in range(args.steps + 1):
        a = [texts[2 * (step * bs + i)] for i in range(bs)]
        b = [texts[2 * (step * bs + i) + 1] for i in range(bs)]
        enc = tok(a, b, padding="max_length", truncation="longest_first", max_length=args.max_length,
                  return_tensors="pt").to(args.device)
        t0 = now()
        scores = model(**enc).logits.view(-1)[: groups * group].view(groups, group)
        loss = torch.nn.functional.cross_entropy(scores, torch.zeros(groups, dtype=torch.long, device=args.device))
        t1 = now()
        loss.backward()
        t2 = now()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        t3 = now()
        if step > 0:
            fwd, bwd, stp = fwd + t1 - t0, bwd + t2 - t1, stp + t3 - t2
    total = fwd + bwd + stp
    n = args.steps
    print(json.dumps({"engine": "pytorch", "pairs_per_s": round(bs * n / total, 2),
                      "seq_len": int(enc["input_ids"].shape[1]), "forward_s": round(fwd / n, 3),
                      "backward_s": round(bwd / n, 3), "optimizer_s": round(stp / n, 3),
                      "steps": n, "threads": threads,
                      "device": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__}))


if __name__ == "__main__":
    main()
