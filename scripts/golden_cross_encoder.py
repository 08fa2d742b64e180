#!/usr/bin/env python3
"""Golden values for the cross-encoder (BertForSequenceClassification) port.

Writes tests/golden/minilm_cross_encoder.json. Run from anywhere:

    HF_HUB_OFFLINE=1 /work/venv-ref/bin/python scripts/golden_cross_encoder.py

No public cross-encoder is reachable offline, so the model is all-MiniLM-L6-v2 (its BERT and its
pooler) with a classification head drawn with torch.manual_seed(0): one label (a relevance score)
and two labels. The head's weights are recorded so the Rust test can install the same head. The
logits are what transformers' BertForSequenceClassification computes on
tokenizer(query, passage, truncation='longest_first', max_length=256), all pairs in one padded
batch (sentence-transformers' CrossEncoder.predict does the same with an identity activation).
"""
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
import transformers
from transformers import AutoModelForSequenceClassification, AutoTokenizer

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("ADAM_FIXTURES", REPO.parent / "shared"))
MODEL_DIR = FIXTURES / "models" / "all-MiniLM-L6-v2"
OUT = REPO / "tests" / "golden" / "minilm_cross_encoder.json"

LONG = " ".join(
    f"Part {i}: a cross-encoder reads the query and the passage together, so every passage "
    f"token can attend to every query token; this is slow but accurate."
    for i in range(1, 14)
)

PAIRS = [
    ("what causes ocean tides", "Tides are caused by the gravitational pull of the moon and the sun."),
    ("what causes ocean tides", "The stock market closed higher on Tuesday."),
    ("how many legs does a spider have", "Spiders have eight legs and two body segments."),
    ("Zürich café prices 2024?", "Ein Kaffee kostet in Zürich etwa 4,50 CHF (≈ $5)."),
    ("", "An empty query still makes a valid pair."),
    ("how does distillation work?", LONG),
]


def r(x):
    return float(f"{float(x):.7g}")


def main():
    tok = AutoTokenizer.from_pretrained(str(MODEL_DIR))
    queries = [p[0] for p in PAIRS]
    passages = [p[1] for p in PAIRS]
    enc = tok(queries, passages, truncation="longest_first", max_length=256, padding=True,
              return_tensors="pt")
    heads = []
    for labels in (1, 2):
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(
            str(MODEL_DIR), num_labels=labels, dtype=torch.float32).eval()
        with torch.no_grad():
            # transformers' default init draws N(0, 0.02); a larger head makes the test sharper.
            model.classifier.weight.normal_(0.0, 0.2)
            model.classifier.bias.uniform_(-0.5, 0.5)
            logits = model(**enc).logits
        heads.append({
            "num_labels": labels,
            "classifier_weight": [[r(x) for x in row] for row in model.classifier.weight.tolist()],
            "classifier_bias": [r(x) for x in model.classifier.bias.tolist()],
            "logits": [[r(x) for x in row] for row in logits.tolist()],
        })
        print(f"labels={labels}: logits {[[round(x, 4) for x in row] for row in logits.tolist()]}")
    doc = {
        "generator": "scripts/golden_cross_encoder.py",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "model": "all-MiniLM-L6-v2 + seeded classification head",
        "max_length": 256,
        "pairs": [{"query": q, "passage": p} for q, p in PAIRS],
        "heads": heads,
    }
    OUT.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
