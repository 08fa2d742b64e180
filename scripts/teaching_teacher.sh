#!/usr/bin/env bash
# Issue 18, point 2: can a cross-encoder from scratch learn the paraphrase world if it is given
# far more training queries than the demo's 1,000? The world's generator makes as many as we like:
# a second world (seed 1042, 20,000 passages, 16,000 training queries; the same values and forms,
# other creatures) trains the teacher, and the demo's world (seed 42) tests it, reranking BM25's
# top 100 with the demo world's tokenizer. METHOD.md §7.1 gives the figures.
#
#     bash scripts/teaching_teacher.sh WORK [STEP...]
#
# STEP: world (both worlds; BM25 on the test world; the demo's teacher config), negatives (BM25's
# top 30 for the training world's queries, and a second file: the whole top 100, positives only
# those in it), train ($NAME: config $CONFIG, $STEPS steps at $LR, warm-up $WARMUP, groups from
# $NEGATIVES: top30, top100, or twins (with TWINS: each group a positive, the near twins of up to
# three positives, and BM25's 4 hardest: scripts/twin_negatives.py); $FROM: go on from that teacher; $SEED), measure ($NAME reranks
# the test world's BM25 top 100: nDCG@10 and the first results' grades), marked (train and measure with "§" before the query's words in every
# pair: scripts/mark_query_words.py), overlap (query words shared by the positives and by the
# negatives of both group files), canonical (BM25 once every form of a value is one token: what a
# teacher that knows only the synonyms could reach), pretrain (the teacher's config as a masked
# language model on the training world's passages and queries, $PRETRAIN_STEPS steps of 64 texts,
# default 5000, into WORK/mlm: train with FROM=mlm to start from it), heldin ($NAME reranks BM25's
# top 100 for 200 new queries over the training world's own passages), reading ($NAME learns to
# read from the generator's profiles, `teacher train --profiles`: the demo's own world and training
# queries, 3 layers, $STEPS steps, graded targets with GRADED=G, the reading losses weighted
# READING_WEIGHT (default 1); then measured as above).
# Default: world negatives train measure.
# TWINS=P: the training world gets near twins after P % of its creature passages (minimal pairs:
# `adam teaching-set --near-twins`); use a fresh WORK for it.
# Outputs land in WORK (outside the repository); a step whose output exists is skipped, so
# rerunning resumes. Seconds per step go to WORK/times.txt. The runs of METHOD.md §7.1 (2 cores,
# two at a time; the 4-layer config is the demo's with num_hidden_layers 4):
#   NAME=a STEPS=3000          NAME=b STEPS=4000 CONFIG=four-layers.json
#   NAME=d STEPS=9000 WARMUP=0.02          NAME=u NEGATIVES=top100          NAME=m (step marked)
#   NAME=e FROM=d STEPS=6000 LR=5e-4 WARMUP=0.02 SEED=7 (6,000 more steps of d)
#   TWINS=50 NAME=a STEPS=3000 (a fresh WORK)          TWINS=50 NAME=t NEGATIVES=twins (the same WORK)
#   TWINS=50 NAME=p FROM=mlm (steps pretrain train measure; the same WORK)
#   NAME=r STEPS=3000 (steps world reading)          NAME=rg2 GRADED=3 LR=2e-3 STEPS=3000 [SEED=7] (the same)
#   NAME=rw2 GRADED=3 LR=2e-3 READING_WEIGHT=2 STEPS=3000 [SEED=7] (the same)
# Needs `adam` on PATH or $ADAM.
set -euo pipefail

work="${1:?usage: teaching_teacher.sh WORK [STEP...]}"
shift
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(world negatives train measure)
repo="$(cd "$(dirname "$0")/.." && pwd)"
adam="${ADAM:-adam}"
name="${NAME:-teacher}"
train_steps="${STEPS:-3000}"
lr="${LR:-1e-3}"
warmup="${WARMUP:-0.05}"
negatives_from="${NEGATIVES:-top30}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
config="${CONFIG:-$work/teacher-config.json}"

# shellcheck source=step.sh
source "$repo/scripts/step.sh"

# The demo's teacher (METHOD.md §7): 64 wide, 2 layers, 4 heads, no dropout, N(0, 0.1), 96 positions.
demo_config() {
  python3 - "$work/teacher-config.json" "$work/test/tokenizer.json" <<'PY'
import json, sys
out, tokenizer = sys.argv[1], sys.argv[2]
vocab = len(json.load(open(tokenizer))["model"]["vocab"])
json.dump({"architectures": ["BertModel"], "attention_probs_dropout_prob": 0.0, "hidden_act": "gelu",
           "hidden_dropout_prob": 0.0, "hidden_size": 64, "initializer_range": 0.1, "intermediate_size": 256,
           "layer_norm_eps": 1e-12, "max_position_embeddings": 96, "model_type": "bert",
           "num_attention_heads": 4, "num_hidden_layers": 2, "pad_token_id": 0, "type_vocab_size": 2,
           "vocab_size": vocab}, open(out, "w"), indent=2)
PY
}

# Keeps the positives BM25 found (bm25.train.run) and the queries left with one.
positives_found() {
  python3 - "$work" <<'PY'
import collections, json, sys
work = sys.argv[1]
found = collections.defaultdict(set)
with open(f"{work}/bm25.train.run") as f:
    for line in f:
        q, _, d = line.split()[:3]
        found[q].add(d)
with open(f"{work}/negatives100.train.jsonl") as f, open(f"{work}/top100.train.jsonl.tmp", "w") as w:
    for j in map(json.loads, f):
        j["positives"] = [p for p in j["positives"] if p["doc_id"] in found[j["query_id"]]]
        if j["positives"] and j["negatives"]:
            w.write(json.dumps(j) + "\n")
PY
  mv "$work/top100.train.jsonl.tmp" "$work/top100.train.jsonl"
}

train() { # DATA NEGATIVES...
  local data="$1" start
  shift
  # From scratch with the test world's tokenizer, or on from the teacher $FROM.
  if [ -n "${FROM:-}" ]; then
    start=(--model "$work/$FROM")
    # A pre-trained encoder (step pretrain) has no classification head yet.
    grep -q ForSequenceClassification "$work/$FROM/config.json" || start+=(--new-head)
  else
    start=(--config "$config" --tokenizer "$work/test/tokenizer.json")
  fi
  "$adam" teacher train "${start[@]}" --data "$data" --split train --negatives "$@" --output "$work/$name" \
    --max-length 96 --group-size 8 --steps "$train_steps" --batch-size 8 --lr "$lr" --warmup-ratio "$warmup" \
    --seed "${SEED:-42}" --log "$work/$name.log.jsonl"
}

report() {
  for run in bm25 "$name"; do
    echo "$run: $("$adam" eval --data "$work/test" --split test --run "$work/$run.test.run" --rel-threshold 2 --json)"
    python3 "$repo/scripts/first_result_grades.py" "$work/test/qrels/test.tsv" "$work/$run.test.run"
  done
}

# The marked pairs' run, back to the test world's passage ids.
rerank_marked() {
  "$adam" teacher rerank --model "$work/$name" --data "$work/marked-test" --split test \
    --run "$work/marked-test/run" --depth 100 --output "$work/$name.marked.run" --max-length 96
  sed 's/ [^ ]*~/ /' "$work/$name.marked.run" >"$work/$name.test.run"
}

for s in "${steps[@]}"; do
  case "$s" in
    world)
      step "$work/test" "$adam" teaching-set --world paraphrase --output "$work/test"
      step "$work/train" "$adam" teaching-set --world paraphrase --seed 1042 --passages 20000 \
        --train-queries 16000 --dev-queries 10 --test-queries 10 --near-twins "${TWINS:-0}" --output "$work/train"
      step "$work/bm25.test.run" "$adam" negatives --data "$work/test" --split test --output "$work/neg.test.jsonl" \
        --top-k 1 --depth 300 --rel-threshold 2 --run "$work/bm25.test.run"
      [ -e "$work/teacher-config.json" ] || demo_config
      ;;
    pretrain)
      step "$work/mlm" "$adam" teacher pretrain --config "$config" --tokenizer "$work/test/tokenizer.json" \
        --data "$work/train" --split train --output "$work/mlm" --steps "${PRETRAIN_STEPS:-5000}" --batch-size 64 \
        --max-length 64 --lr 1e-3 --warmup-ratio 0.05 --log "$work/mlm.log.jsonl" --checkpoint-every 500 --resume
      ;;
    heldin)
      # 200 new queries over the training world's own passages: the same seed and sizes, so the
      # same corpus and training queries, then 200 test queries none of them trained on.
      step "$work/heldin" "$adam" teaching-set --world paraphrase --seed 1042 --passages 20000 \
        --train-queries 16000 --dev-queries 10 --test-queries 200 --near-twins "${TWINS:-0}" --output "$work/heldin"
      cmp -s "$work/heldin/corpus.jsonl" "$work/train/corpus.jsonl" || { echo "heldin: another corpus" >&2; exit 1; }
      step "$work/heldin.bm25.test.run" "$adam" negatives --data "$work/heldin" --split test \
        --output "$work/heldin.neg.test.jsonl" --top-k 1 --depth 100 --rel-threshold 2 --run "$work/heldin.bm25.test.run"
      step "$work/heldin.$name.test.run" "$adam" teacher rerank --model "$work/$name" --data "$work/heldin" --split test \
        --run "$work/heldin.bm25.test.run" --depth 100 --output "$work/heldin.$name.test.run" --max-length 96
      for run in bm25 "$name"; do
        echo "heldin $run: $("$adam" eval --data "$work/heldin" --split test --run "$work/heldin.$run.test.run" --rel-threshold 2 --json)"
      done
      ;;
    negatives)
      step "$work/negatives.train.jsonl" "$adam" negatives --data "$work/train" --split train \
        --output "$work/negatives.train.jsonl" --top-k 30 --depth 100
      step "$work/negatives100.train.jsonl" "$adam" negatives --data "$work/train" --split train \
        --output "$work/negatives100.train.jsonl" --top-k 100 --depth 100 --run "$work/bm25.train.run"
      step "$work/top100.train.jsonl" positives_found
      ;;
    train)
      case "$negatives_from" in
        top30) step "$work/$name" train "$work/train" "$work/negatives.train.jsonl" ;;
        top100) step "$work/$name" train "$work/train" "$work/top100.train.jsonl" --negatives-depth 100 ;;
        twins)
          step "$work/twins.train.jsonl" python3 "$repo/scripts/twin_negatives.py" "$work/train" \
            "$work/negatives.train.jsonl" "$work/twins.train.jsonl"
          step "$work/$name" train "$work/train" "$work/twins.train.jsonl" --negatives-depth 7
          ;;
        *) echo "NEGATIVES=$negatives_from: top30, top100 or twins" >&2; exit 1 ;;
      esac
      ;;
    measure)
      step "$work/$name.test.run" "$adam" teacher rerank --model "$work/$name" --data "$work/test" --split test \
        --run "$work/bm25.test.run" --depth 100 --output "$work/$name.test.run" --max-length 96
      report
      ;;
    marked)
      step "$work/marked-train" python3 "$repo/scripts/mark_query_words.py" "$work/train" neg \
        "$work/negatives.train.jsonl" "$work/marked-train"
      step "$work/marked-test" python3 "$repo/scripts/mark_query_words.py" "$work/test" run \
        "$work/bm25.test.run" "$work/marked-test"
      step "$work/$name" train "$work/marked-train" "$work/marked-train/neg.jsonl"
      step "$work/$name.test.run" rerank_marked
      report
      ;;
    overlap)
      python3 "$repo/scripts/query_word_overlap.py" "$work/train" "$work/negatives.train.jsonl"
      python3 "$repo/scripts/query_word_overlap.py" "$work/train" "$work/top100.train.jsonl"
      ;;
    canonical)
      python3 "$repo/scripts/canonical_bm25.py" "$work/test"
      ;;
    reading)
      # A teacher that learns to read (METHOD.md §7.1): the demo's own world and its 1,000
      # training queries, the generator's profiles as privileged labels, 3 layers.
      [ -e "$work/test/profiles.jsonl" ] || "$adam" teaching-set --world paraphrase --profiles --output "$work/test"
      step "$work/demo-negatives.train.jsonl" "$adam" negatives --data "$work/test" --split train \
        --output "$work/demo-negatives.train.jsonl" --top-k 30 --depth 100
      [ -e "$work/reading-config.json" ] || python3 - "$work/teacher-config.json" "$work/reading-config.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["num_hidden_layers"] = 3
json.dump(config, open(sys.argv[2], "w"), indent=2)
PY
      step "$work/$name" "$adam" teacher train --config "$work/reading-config.json" --tokenizer "$work/test/tokenizer.json" \
        --data "$work/test" --split train --negatives "$work/demo-negatives.train.jsonl" \
        --profiles "$work/test/profiles.jsonl" --graded "${GRADED:-0}" --reading-weight "${READING_WEIGHT:-1}" \
        --output "$work/$name" \
        --max-length 96 --group-size 8 --steps "$train_steps" --batch-size 8 --lr "$lr" --warmup-ratio "$warmup" \
        --seed "${SEED:-42}" --log "$work/$name.log.jsonl"
      step "$work/$name.test.run" "$adam" teacher rerank --model "$work/$name" --data "$work/test" --split test \
        --run "$work/bm25.test.run" --depth 100 --output "$work/$name.test.run" --max-length 96
      report
      ;;
    *)
      echo "unknown step $s (world, negatives, train, measure, marked, overlap, canonical, pretrain, heldin, reading)" >&2
      exit 1
      ;;
  esac
done
