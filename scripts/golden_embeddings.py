#!/usr/bin/env python3
"""Golden values for the all-MiniLM-L6-v2 port: tokenization + embeddings.

Writes tests/golden/minilm_embeddings.json. Run from anywhere:

    HF_HUB_OFFLINE=1 /work/venv-ref/bin/python scripts/golden_embeddings.py

The model folder is $ADAM_FIXTURES/models/all-MiniLM-L6-v2, where ADAM_FIXTURES
defaults to <repo>/../shared.

What is recorded, per text:
  * token_ids / token_type_ids: what sentence-transformers feeds the model
    (HF fast tokenizer, [CLS] ... [SEP], truncation at max_seq_length = 256,
    no padding). Checked equal to tokenizer(text, truncation=True, max_length=256).
  * st_embedding: model.encode([...all texts...], normalize_embeddings=False),
    float32, all texts in one batch. modules.json lists a 2_Normalize module,
    so these vectors are already L2-normalised (norm recorded).
  * mean_pooled_unnormalized: masked mean of the last hidden state (what the
    Pooling module gives, before Normalize), computed per text with no padding.
  * cls_unnormalized: last_hidden_state[0, 0] (the [CLS] token), un-normalised.
  * st_embedding_first_3_layers: the same encode() after cutting the model to its
    first 3 transformer layers (what `adam eval --layers 3` and a student with
    `layers = 3` start from).
Pairs: tokenizer(query, passage, truncation='longest_first', max_length=256).
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

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("ADAM_FIXTURES", REPO.parent / "shared"))
MODEL_DIR = FIXTURES / "models" / "all-MiniLM-L6-v2"
OUT = REPO / "tests" / "golden" / "minilm_embeddings.json"

# A long synthetic text (our own words, not fixture data): well over 256 word-pieces.
LONG_TEXT = " ".join(
    f"Paragraph {i}: dense retrieval distillation trains a small bi-encoder student "
    f"to imitate a cross-encoder teacher's relevance scores, using hard negatives "
    f"mined from BM25 and a margin-MSE loss; evaluation uses nDCG@10 and MRR@10."
    for i in range(1, 13)
)
LONG_TEXT_2 = " ".join(
    f"Section {i}. Tokenizers split unfamiliar words such as electroencephalography, "
    f"pseudopseudohypoparathyroidism and floccinaucinihilipilification into word-pieces."
    for i in range(1, 16)
)

TEXTS = [
    ("plain", "The quick brown fox jumps over the lazy dog."),
    ("question", "How long is the life cycle of a flea?"),
    ("accents", "Café naïve résumé — Ångström façade in São Paulo, Zürich and Kraków."),
    ("accents_decomposed", "Cafe\u0301 nai\u0308ve re\u0301sume\u0301 (combining marks, NFD)."),
    ("cjk", "東京は日本の首都です。北京是中国的首都。서울은 한국의 수도입니다."),
    ("emoji", "I love pizza 🍕🍕 and sushi 🍣! 👍🏽 Done ✅"),
    ("greek", "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας. Σωκράτης, ΑΒΓΔ αβγδ."),
    ("numbers_punct", "Call 555-0123 at 10:30 a.m.; it costs $1,299.99 (≈20% off!) — 3.14159, 1e-5, #42 & @user... \"quoted\" 'single'"),
    ("empty", ""),
    ("whitespace_case", "  Leading and trailing   WHITESPACE\tand\ttabs\nnew LINES, MiXeD CaSe  "),
    ("long_word", "supercalifragilisticexpialidocious " + "a" * 101 + " end"),
    ("control_chars", "zero\u200bwidth soft\u00adhyphen nbsp\u00a0space bell\u0007 end"),
    ("long", LONG_TEXT),
]

PAIRS = [
    ("short_pair", "what is dense retrieval", "Dense retrieval encodes queries and passages into vectors."),
    ("long_passage", "how does distillation work?", LONG_TEXT),
    ("both_long", LONG_TEXT_2, LONG_TEXT),
]

SIG = 7


def r(x):
    """Round to 7 significant digits, as a JSON float."""
    return float(f"{float(x):.{SIG}g}")


def rv(v):
    return [r(x) for x in np.asarray(v, dtype=np.float64).ravel()]


def main():
    torch.manual_seed(0)
    print(f"torch {torch.__version__} threads={torch.get_num_threads()} "
          f"sentence-transformers {sentence_transformers.__version__} "
          f"transformers {transformers.__version__} tokenizers {tokenizers.__version__}")
    print(f"model dir: {MODEL_DIR}")
    st = SentenceTransformer(str(MODEL_DIR), device="cpu")
    st.eval()
    modules = [type(m).__name__ for m in st]
    print("modules:", modules, "max_seq_length:", st.max_seq_length)
    assert st.max_seq_length == 256, st.max_seq_length
    has_normalize = "Normalize" in modules

    tok = AutoTokenizer.from_pretrained(str(MODEL_DIR))
    hf = AutoModel.from_pretrained(str(MODEL_DIR), dtype=torch.float32).eval()

    texts = [t for _, t in TEXTS]

    # What encode() really feeds the model: sentence-transformers' own tokenize().
    tokenize = getattr(st, "preprocess", None) or st.tokenize
    st_feats = tokenize(texts)  # padded batch
    st_ids = []
    for i in range(len(texts)):
        mask = st_feats["attention_mask"][i].bool()
        st_ids.append(st_feats["input_ids"][i][mask].tolist())

    # Embeddings: one batch of all texts, and one text at a time.
    with torch.inference_mode():
        emb_batch = st.encode(texts, batch_size=len(texts), convert_to_numpy=True,
                              normalize_embeddings=False)
        emb_single = np.stack([
            st.encode([t], batch_size=1, convert_to_numpy=True, normalize_embeddings=False)[0]
            for t in texts
        ])
    assert emb_batch.dtype == np.float32
    max_diff = float(np.abs(emb_batch - emb_single).max())
    print(f"max |batch(all) - batch(1)| over all texts/dims: {max_diff:.3e}")

    # The first 3 layers, cut the way sentence-transformers users do it.
    st3 = SentenceTransformer(str(MODEL_DIR), device="cpu")
    st3.eval()
    bert3 = st3[0].auto_model
    bert3.encoder.layer = bert3.encoder.layer[:3]
    bert3.config.num_hidden_layers = 3
    with torch.inference_mode():
        emb3 = st3.encode(texts, batch_size=len(texts), convert_to_numpy=True,
                          normalize_embeddings=False)
    print(f"first 3 layers: max |full - first 3| = {float(np.abs(emb_batch - emb3).max()):.3f}")

    items = []
    for (name, text), ids_st, e, e3 in zip(TEXTS, st_ids, emb_batch, emb3):
        enc = tok(text, truncation=True, max_length=256)
        enc_full = tok(text, truncation=False)
        assert enc["input_ids"] == ids_st, (name, enc["input_ids"], ids_st)
        ids = torch.tensor([enc["input_ids"]])
        with torch.inference_mode():
            out = hf(input_ids=ids, attention_mask=torch.ones_like(ids),
                     token_type_ids=torch.tensor([enc["token_type_ids"]]))
        h = out.last_hidden_state[0].float()
        mean = h.mean(dim=0).numpy()  # no padding here, so plain mean == masked mean
        cls = h[0].numpy()
        mean_n = mean / np.linalg.norm(mean)
        d = float(np.abs(mean_n - e).max())
        assert d < 1e-5, (name, d)
        items.append({
            "name": name,
            "text": text,
            "num_tokens_untruncated": len(enc_full["input_ids"]),
            "token_ids": enc["input_ids"],
            "token_type_ids": enc["token_type_ids"],
            "tokens": tok.convert_ids_to_tokens(enc["input_ids"]),
            "st_embedding": rv(e),
            "st_embedding_norm": r(np.linalg.norm(e.astype(np.float64))),
            "mean_pooled_unnormalized": rv(mean),
            "cls_unnormalized": rv(cls),
            "st_embedding_first_3_layers": rv(e3),
        })
        print(f"  {name:20s} tokens={len(enc['input_ids']):3d} "
              f"(untruncated {len(enc_full['input_ids'])}) |e|={np.linalg.norm(e):.6f} "
              f"max|hf_mean_norm - st|={d:.2e}")

    pairs = []
    for name, q, p in PAIRS:
        enc = tok(q, p, truncation="longest_first", max_length=256)
        n_q = len(tok(q, add_special_tokens=False)["input_ids"])
        n_p = len(tok(p, add_special_tokens=False)["input_ids"])
        pairs.append({
            "name": name,
            "query": q,
            "passage": p,
            "query_pieces_untruncated": n_q,
            "passage_pieces_untruncated": n_p,
            "token_ids": enc["input_ids"],
            "token_type_ids": enc["token_type_ids"],
        })
        n_a = enc["token_type_ids"].count(0) - 2
        n_b = enc["token_type_ids"].count(1) - 1
        print(f"  pair {name:14s} q={n_q} p={n_p} -> len={len(enc['input_ids'])} kept q={n_a} p={n_b}")

    tj = json.loads((MODEL_DIR / "tokenizer.json").read_text())
    doc = {
        "generator": "scripts/golden_embeddings.py",
        "versions": {
            "torch": torch.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "numpy": np.__version__,
        },
        "model": "all-MiniLM-L6-v2",
        "max_seq_length": st.max_seq_length,
        "embedding_dim": int(emb_batch.shape[1]),
        "st_modules": modules,
        "st_embedding_is_normalized": has_normalize,
        "tokenizer_json_truncation": tj.get("truncation"),
        "tokenizer_json_padding": tj.get("padding"),
        "notes": [
            "tokenizer.json ships truncation max_length 128 and padding Fixed(128); "
            "sentence-transformers ignores both: it truncates at max_seq_length=256 and "
            "pads only to the longest text in a batch. token_ids here are unpadded.",
            "st_embedding = SentenceTransformer.encode(all texts, batch_size=len(texts), "
            "normalize_embeddings=False); the model's own Normalize module L2-normalises, "
            "so st_embedding == mean_pooled_unnormalized / ||mean_pooled_unnormalized||.",
            "mean pooling = mean of last_hidden_state over tokens with attention_mask 1 "
            "(all tokens incl. [CLS] and [SEP]); cls_unnormalized = last_hidden_state[:,0].",
            "pairs: tokenizer(query, passage, truncation='longest_first', max_length=256); "
            "token_type_ids 0 for [CLS] query [SEP], 1 for passage [SEP].",
            "Values are float32 results rounded to 7 significant digits; compare with "
            "an absolute tolerance of ~1e-5 (batch padding alone changes values by "
            "batch_vs_single_max_abs_diff).",
        ],
        "batch_vs_single_max_abs_diff": float(f"{max_diff:.3g}"),
        "texts": items,
        "pairs": pairs,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    sys.exit(main())
