#!/usr/bin/env bash
# Issue 18: the demo's teacher recipe in the demo's own world, from scratch and after masked-language
# pre-training on that world's passages and training queries (METHOD.md §7.1, "Masked-language
# pre-training").
#
#     bash scripts/teaching_pretrain.sh WORK lexical|paraphrase
#
# Writes into WORK (outside the repository): the world (tw), BM25's runs, mlm (1,000 steps of 64
# texts, $PRETRAIN_STEPS to change), the teachers scratch and pre (6 epochs of the demo's groups),
# their reranked test runs, and prints each teacher's nDCG@10 and first results. A step whose
# output exists is skipped. Needs `adam` on PATH or $ADAM.
set -euo pipefail

work="${1:?usage: teaching_pretrain.sh WORK lexical|paraphrase}"
world="${2:?usage: teaching_pretrain.sh WORK lexical|paraphrase}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
adam="${ADAM:-adam}"
mkdir -p "$work"
cd "$work"

[ -e tw ] || "$adam" teaching-set --world "$world" --output tw
[ -e bm25.test.run ] || "$adam" negatives --data tw --split test --output neg.test.jsonl --top-k 1 --depth 300 \
  --rel-threshold 2 --run bm25.test.run
[ -e negatives.train.jsonl ] || "$adam" negatives --data tw --split train --output negatives.train.jsonl --top-k 30 --depth 100
# The demo's teacher (METHOD.md §7): 64 wide, 2 layers, 4 heads, no dropout, N(0, 0.1), 96 positions.
[ -e teacher-config.json ] || python3 - <<'PY'
import json
vocab = len(json.load(open("tw/tokenizer.json"))["model"]["vocab"])
json.dump({"architectures": ["BertModel"], "attention_probs_dropout_prob": 0.0, "hidden_act": "gelu",
           "hidden_dropout_prob": 0.0, "hidden_size": 64, "initializer_range": 0.1, "intermediate_size": 256,
           "layer_norm_eps": 1e-12, "max_position_embeddings": 96, "model_type": "bert",
           "num_attention_heads": 4, "num_hidden_layers": 2, "pad_token_id": 0, "type_vocab_size": 2,
           "vocab_size": vocab}, open("teacher-config.json", "w"), indent=2)
PY
[ -e mlm ] || "$adam" teacher pretrain --config teacher-config.json --tokenizer tw/tokenizer.json --data tw --split train \
  --output mlm --steps "${PRETRAIN_STEPS:-1000}" --batch-size 64 --max-length 64 --lr 1e-3 --warmup-ratio 0.05 \
  --log mlm.log.jsonl
for name in scratch pre; do
  if [ "$name" = scratch ]; then
    start=(--config teacher-config.json --tokenizer tw/tokenizer.json)
  else
    start=(--model mlm --new-head)
  fi
  [ -e "$name" ] || "$adam" teacher train "${start[@]}" --data tw --split train --negatives negatives.train.jsonl \
    --output "$name" --max-length 96 --group-size 8 --epochs 6 --batch-size 8 --lr 1e-3 --warmup-ratio 0.05 \
    --log "$name.log.jsonl"
  [ -e "$name.test.run" ] || "$adam" teacher rerank --model "$name" --data tw --split test --run bm25.test.run \
    --depth 100 --output "$name.test.run" --max-length 96
done
for run in bm25 scratch pre; do
  echo "$run: $("$adam" eval --data tw --split test --run "$run.test.run" --rel-threshold 2 --json)"
  python3 "$repo/scripts/first_result_grades.py" tw/qrels/test.tsv "$run.test.run"
done
python3 "$repo/scripts/value_similarity.py" mlm scratch pre
