#!/usr/bin/env python3
"""Golden values for the all-mpnet-base-v2 port: tokenization, embeddings, position buckets.

Writes tests/golden/mpnet_embeddings.json. Run from anywhere, after `bash scripts/fetch_mpnet.sh`:

    HF_HUB_OFFLINE=1 /work/venv-ref/bin/python scripts/golden_mpnet.py

The model folder is $ADAM_MPNET, default ~/.cache/adam-models/all-mpnet-base-v2 (where
fetch_mpnet.sh assembles it; the weights never enter the repository).

What is recorded:
  * per text (the texts of golden_embeddings.py plus one of about 300 word-pieces, so relative
    distances beyond the 128 of the last bucket occur without truncation, and the long one over
    384, the model's max_seq_length, so truncation occurs too):
    token_ids (what sentence-transformers feeds the model), st_embedding
    (SentenceTransformer.encode of all texts in one batch, already L2-normalised by the model's
    Normalize module) and cls_unnormalized (last_hidden_state[0, 0] of the text alone);
  * pairs: tokenizer(query, passage, truncation='longest_first', max_length=384) ids and type ids
    (MPNet's RobertaProcessing: <s> q </s></s> p </s>, type ids all 0);
  * buckets: MPNetEncoder.relative_position_bucket for relative positions -600 … 600;
  * cross_encoder: MPNetForSequenceClassification (num_labels 1) from the same weights with a
    head given by a formula (head_weights below; the Rust test builds the same head), and its
    logits for the pairs.
Numbers are rounded to 7 significant digits.
"""
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import torch
import transformers
import sentence_transformers
import tokenizers
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer
from transformers.models.mpnet.modeling_mpnet import MPNetEncoder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from golden_embeddings import TEXTS, PAIRS, r, rv  # noqa: E402  (the same texts as MiniLM's)

REPO = Path(__file__).resolve().parent.parent
MODEL_DIR = Path(os.environ.get("ADAM_MPNET", Path.home() / ".cache/adam-models/all-mpnet-base-v2"))
OUT = REPO / "tests" / "golden" / "mpnet_embeddings.json"
MAX_SEQ = 384

# About 300 word-pieces: between the 256 of MiniLM and MPNet's 384.
MEDIUM_TEXT = " ".join(
    f"Step {i}: the student encodes the query and the passage separately, the teacher reads "
    f"them together, and the dark examples sit between the positive and the negatives."
    for i in range(1, 12)
)


def head_weights(hidden):
    """The classification head of the golden cross-encoder, from a formula both sides compute
    (f64, then f32): classifier.dense [hidden, hidden] and bias, classifier.out_proj [1, hidden]
    and bias."""
    i = np.arange(hidden, dtype=np.float64)
    dense_w = 0.05 * np.sin(0.37 * i[:, None] + 0.11 * i[None, :] + 0.5)
    dense_b = 0.01 * np.cos(0.7 * i)
    out_w = np.sin(0.13 * i + 0.2)[None, :]
    out_b = np.array([0.1])
    return [x.astype(np.float32) for x in (dense_w, dense_b, out_w, out_b)]


def main():
    torch.manual_seed(0)
    print(f"torch {torch.__version__} sentence-transformers {sentence_transformers.__version__} "
          f"transformers {transformers.__version__} tokenizers {tokenizers.__version__}")
    st = SentenceTransformer(str(MODEL_DIR), device="cpu").eval()
    modules = [type(m).__name__ for m in st]
    print("modules:", modules, "max_seq_length:", st.max_seq_length)
    assert st.max_seq_length == MAX_SEQ, st.max_seq_length
    tok = AutoTokenizer.from_pretrained(str(MODEL_DIR))
    hf = AutoModel.from_pretrained(str(MODEL_DIR), dtype=torch.float32).eval()

    named = TEXTS + [("medium", MEDIUM_TEXT)]
    texts = [t for _, t in named]
    with torch.inference_mode():
        emb = st.encode(texts, batch_size=len(texts), convert_to_numpy=True, normalize_embeddings=False)
    items = []
    for (name, text), e in zip(named, emb):
        enc = tok(text, truncation=True, max_length=MAX_SEQ)
        full = tok(text, truncation=False)
        ids = torch.tensor([enc["input_ids"]])
        with torch.inference_mode():
            h = hf(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[0]
        mean = h.mean(dim=0).numpy()
        d = float(np.abs(mean / np.linalg.norm(mean) - e).max())
        assert d < 1e-5, (name, d)
        items.append({
            "name": name,
            "text": text,
            "num_tokens_untruncated": len(full["input_ids"]),
            "token_ids": enc["input_ids"],
            "st_embedding": rv(e),
            "cls_unnormalized": rv(h[0].numpy()),
        })
        print(f"  {name:20s} tokens={len(enc['input_ids']):3d} (untruncated {len(full['input_ids'])}) "
              f"max|alone - batch|={d:.2e}")
    assert any(len(t["token_ids"]) == MAX_SEQ for t in items), "a text is truncated"
    assert any(256 < len(t["token_ids"]) < MAX_SEQ for t in items), "a text of 257-383 tokens"

    pairs = []
    for name, q, p in PAIRS:
        enc = tok(q, p, truncation="longest_first", max_length=MAX_SEQ)
        pairs.append({"name": name, "query": q, "passage": p,
                      "token_ids": enc["input_ids"], "token_type_ids": enc.get("token_type_ids")})

    from transformers import MPNetForSequenceClassification
    ce = MPNetForSequenceClassification.from_pretrained(str(MODEL_DIR), num_labels=1, dtype=torch.float32).eval()
    dense_w, dense_b, out_w, out_b = (torch.from_numpy(x) for x in head_weights(ce.config.hidden_size))
    with torch.no_grad():
        ce.classifier.dense.weight.copy_(dense_w)
        ce.classifier.dense.bias.copy_(dense_b)
        ce.classifier.out_proj.weight.copy_(out_w)
        ce.classifier.out_proj.bias.copy_(out_b)
    enc = tok([q for _, q, _ in PAIRS], [p for _, _, p in PAIRS], truncation="longest_first",
              max_length=MAX_SEQ, padding=True, return_tensors="pt")
    with torch.inference_mode():
        logits = ce(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits[:, 0]
    cross_encoder = {"max_length": MAX_SEQ, "logits": rv(logits.numpy())}
    print("  cross-encoder logits:", cross_encoder["logits"])

    rel = torch.arange(-600, 601)
    buckets = MPNetEncoder.relative_position_bucket(rel).tolist()

    doc = {
        "generator": "scripts/golden_mpnet.py",
        "versions": {
            "torch": torch.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
        },
        "model": "all-mpnet-base-v2 (model.safetensors sha256 78c0197b…5658, see scripts/fetch_mpnet.sh)",
        "max_seq_length": MAX_SEQ,
        "st_modules": modules,
        "notes": [
            "st_embedding = SentenceTransformer.encode(all texts, batch_size=len(texts), "
            "normalize_embeddings=False); the model's Normalize module L2-normalises.",
            "cls_unnormalized = last_hidden_state[0, 0] of the text alone (no padding).",
            "buckets[i] is the bucket of relative position (key - query) = i - 600.",
        ],
        "texts": items,
        "pairs": pairs,
        "buckets": buckets,
        "cross_encoder": cross_encoder,
    }
    OUT.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    sys.exit(main())
