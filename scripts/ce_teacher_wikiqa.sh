#!/usr/bin/env bash
# Issue 17, point 2: a cross-encoder teacher fine-tuned from all-MiniLM-L6-v2 on every labelled
# pair of WikiQA train-all and SelQA test, measured as a teacher, and the students it teaches.
# BENCHMARKS.md, "A cross-encoder teacher on WikiQA train-all + SelQA", gives the figures.
#
#     bash scripts/ce_teacher_wikiqa.sh WORK [STEP...]
#
# STEP: teacher (merge, negatives, train: one process, two workers, from $BASE
# (default all-MiniLM-L6-v2) at learning rate $TEACHER_LR (default 5e-5), a checkpoint every 10
# steps, so that rerunning the step after a kill resumes the training),
# measure (WikiQA test: the labelled candidates and BM25's top 100), score (its soft labels on
# WikiQA train, BM25's 7 negatives, dark examples; then `teacher inspect`), students ($METHODS,
# default "adam kd adam-no-dark", seed $SEED (default 1), 55 steps, as the MPNet-taught students,
# $JOBS (default 2) at a time; with $LAYERS = K, the checkpoint's first K layers, named
# <method>-lK-seed<k>; with $LR, that learning rate instead of 2e-5, named <method>-lr<LR>-...;
# with $STEPS, that many steps instead of 55, named <method>-...-s<STEPS>-seed<k>; with
# $NOISY = delete, noisy positives with pieces deleted instead of masked (`[adam.dark] noisy_mode`,
# which must match WORK/scores.jsonl's), named <method>-delete-...; with $DROP = 1, only the
# dark examples the search brought into the band (`[train] drop_outside_band`), named
# <method>-drop-...; with $SELF_PACED = "SCHEDULE LAMBDA0" (e.g. "constant 0.5": only the most
# confident half of each batch gets the dark-example term, all run long), that `[adam.self_paced]`
# schedule and start share, named <method>-sp-SCHEDULE-LAMBDA0-...; with $UNLABELLED = 1, the
# soft labels of the `unlabelled` step instead of WikiQA train's, named <method>-selqa-...),
# full (those students retrieving from all of WikiQA test's sentences), dl (those students
# zero-shot on TREC DL19 and DL21: their own top 100 of each pooled corpus, grade >= 2),
# ensemble (CE + MPNet,
# the weight chosen on 300 SelQA dev questions, then applied to WikiQA test's candidates),
# teacher-dl (CE and MPNet reranking the zero-shot student's top 100 of DL19 and DL21),
# rerank-student (CE over the zero-shot student's top 100 of WikiQA test), unlabelled (the
# teacher's soft labels on SelQA dev's 785 questions, which it never saw, without their labels:
# BM25's top 30 over SelQA's corpus reranked by the teacher, whose first choice stands in for
# the answer, then BM25's negatives and dark examples as in score).
# students and full need only WORK/scores.jsonl: for MPNet's students, gunzip
# benchmarks/wikiqa-teachers/mpnet.scores.jsonl.gz there instead of running teacher and score,
# or run score with $TEACHER set to MPNet's folder (the scoring model; default WORK/teacher).
# Default: all, in that order. Every output lands in WORK (outside the repository); a step whose
# output exists is skipped, so rerunning resumes. Seconds per step go to WORK/times.txt.
# Needs: `adam` on PATH or $ADAM, fixtures at $ADAM_FIXTURES (default ../shared), and for the
# ensemble all-mpnet-base-v2 in $ADAM_MPNET (default ~/.cache/adam-models/all-mpnet-base-v2).
set -euo pipefail

work="${1:?usage: ce_teacher_wikiqa.sh WORK [STEP...]}"
shift
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(teacher measure score students full dl ensemble teacher-dl rerank-student unlabelled)
repo="$(cd "$(dirname "$0")/.." && pwd)"
fix="$(cd "${ADAM_FIXTURES:-$repo/../shared}" && pwd)"
adam="${ADAM:-adam}"
mpnet="${ADAM_MPNET:-$HOME/.cache/adam-models/all-mpnet-base-v2}"
minilm="$fix/models/all-MiniLM-L6-v2"
wikiqa="$fix/data/wikiqa"
seed="${SEED:-1}"
methods="${METHODS:-adam kd adam-no-dark}"
jobs="${JOBS:-2}"
layers="${LAYERS:-}"
lr="${LR:-}"
train_steps="${STEPS:-}"
base="${BASE:-$minilm}"
teacher_lr="${TEACHER_LR:-5e-5}"
noisy="${NOISY:-}"
drop="${DROP:-}"
self_paced="${SELF_PACED:-}"
unlabelled="${UNLABELLED:-}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
teacher="${TEACHER:-$work/teacher}"

# shellcheck source=step.sh
source "$repo/scripts/step.sh"

# Every labelled candidate of a qrels split as a run with score 0 (rerankers reorder it).
candidates_run() { # QRELS OUT [MAX_QUERIES]
  python3 - "$1" "$2.tmp" "${3:-0}" <<'EOF'
import sys
qrels, out, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
seen = []
with open(qrels) as f, open(out, "w") as w:
    for n, line in enumerate(f):
        if n == 0 and line.startswith("query-id"):
            continue
        q, d, _ = line.rstrip("\n").split("\t")
        if q not in seen:
            if limit and len(seen) == limit:
                continue
            seen.append(q)
        w.write(f"{q} Q0 {d} 0 0 candidates\n")
EOF
  mv "$2.tmp" "$2"
}

eval_json() { # DATA SPLIT RUN OUT_PREFIX [EVAL_ARG...]
  local data="$1" split="$2" run="$3" out="$4"
  shift 4
  "$adam" eval --data "$data" --split "$split" --run "$run" "$@" --json > "$out.json.tmp"
  "$adam" eval --data "$data" --split "$split" --run "$run" "$@" --per-query --json > "$out.per-query.jsonl.tmp"
  mv "$out.per-query.jsonl.tmp" "$out.per-query.jsonl"
  mv "$out.json.tmp" "$out.json"
}

train_teacher() {
  # One process; its two workers compute the two micro-batches of each step side by side, the
  # same bytes as the two data-parallel peers of one thread each that trained the teachers of
  # BENCHMARKS.md (`--peers 2`, before 2026-12-06), without a second copy of the model in memory.
  "$adam" teacher train --model "$base" --new-head --data "$work/data" \
    --negatives "$work/neg.train.jsonl" --output "$work/teacher.tmp" --negatives-depth 16 \
    --epochs 1 --batch-size 4 --grad-accumulation 2 --group-size 8 --max-length 96 \
    --lr "$teacher_lr" --head-lr 1e-3 --warmup-ratio 0.1 --log "$work/teacher.log.jsonl" \
    --checkpoint-every 10 --resume
  mv "$work/teacher.tmp" "$work/teacher"
}

# WORK/distill-base.toml: the students' config, whose `[adam.dark]` the teacher's scoring reads
# (noisy positives masked, or deleted with $NOISY = delete).
scoring_config() {
  sed -e "${noisy:+s|^noisy_mode = .*|noisy_mode = \"$noisy\"|}" \
    "$repo/benchmarks/wikiqa-teachers/students/adam-seed1.distill.toml" > "$work/distill-base.toml"
}

score_shards() { # [DATA SPLIT NEGATIVES OUT]
  local data="${1:-$wikiqa}" split="${2:-train}" negatives="${3:-$work/negatives.train.jsonl}"
  local out="${4:-$work/scores.jsonl}" jobs=()
  for i in 1 2; do
    RAYON_NUM_THREADS=1 "$adam" teacher score --model "$teacher" \
      --student-tokenizer "$minilm/tokenizer.json" --data "$data" --split "$split" \
      --negatives "$negatives" --output "$out" \
      --config "$work/distill-base.toml" --negatives-per-query 7 --max-length 128 --shard "$i/2" &
    jobs+=($!)
  done
  for j in "${jobs[@]}"; do wait "$j"; done
  "$adam" teacher score --model "$teacher" --student-tokenizer "$minilm/tokenizer.json" \
    --data "$data" --split "$split" --negatives "$negatives" \
    --output "$out" --config "$work/distill-base.toml" --negatives-per-query 7 \
    --max-length 128 --merge 2
}

# A student's run name: METHOD, -selqa for the unlabelled questions' soft labels, -delete for
# deleted noisy positives, -drop for dark examples
# kept only in the band, -sp-SCHEDULE-LAMBDA0 for another self-paced share, -lK for a K-layer student,
# -lrX for another learning rate, -sN for another number of steps, -seedN.
run_name() { # METHOD
  echo "$1${unlabelled:+-selqa}${noisy:+-$noisy}${drop:+-drop}${self_paced:+-sp-${self_paced// /-}}${layers:+-l$layers}${lr:+-lr$lr}${train_steps:+-s$train_steps}-seed$seed"
}

student_config() { # METHOD
  local dir="$work/runs/$(run_name "$1")" data="$wikiqa" scores="$work/scores.jsonl"
  if [ -n "$unlabelled" ]; then
    data="$work/selqa-dev"
    scores="$work/selqa-dev/scores.jsonl"
  fi
  mkdir -p "$dir"
  sed -e "s|^method = .*|method = \"$1\"|" \
    -e "s|^seed = .*|seed = $seed|" \
    -e "s|^dir = .*|dir = \"$data\"|" \
    -e "s|^teacher_scores = .*|teacher_scores = \"$scores\"|" \
    -e "${lr:+s|^lr = .*|lr = $lr|}" \
    -e "${train_steps:+s|^steps = .*|steps = $train_steps|}" \
    -e "${noisy:+s|^noisy_mode = .*|noisy_mode = \"$noisy\"|}" \
    -e "${drop:+s|^negatives = .*|&\\ndrop_outside_band = true|}" \
    -e "s|^model = .*|model = \"$minilm\"${layers:+\\nlayers = $layers}|" \
    "$repo/benchmarks/wikiqa-teachers/students/adam-seed1.distill.toml" > "$dir/distill.toml"
  if [ -n "$self_paced" ]; then
    read -r schedule lambda0 <<< "$self_paced"
    printf '\n[adam.self_paced]\nschedule = "%s"\nlambda0 = %s\n' "$schedule" "$lambda0" >> "$dir/distill.toml"
  fi
}

distill_and_eval() { # METHOD
  local name
  name="$(run_name "$1")"
  local dir="$work/runs/$name"
  student_config "$1"
  step "$dir/student" "$adam" distill --config "$dir/distill.toml"
  step "$work/$name.test-all.run" rerank_to "$dir/student" dual-encoder \
    "$work/test-all.candidates.run" "$work/$name.test-all.run"
  step "$work/$name.test-all.per-query.jsonl" \
    eval_json "$wikiqa" test-all "$work/$name.test-all.run" "$work/$name.test-all"
}

# (b) exact dense retrieval over WikiQA test's 24,563 sentences with the student.
full_eval() { # METHOD
  local name
  name="$(run_name "$1")"
  step "$work/$name.full.run" dense_run_to "$work/runs/$name/student" "$work/$name.full.run"
  step "$work/$name.full.per-query.jsonl" \
    eval_json "$wikiqa" test "$work/$name.full.run" "$work/$name.full"
}

# The student zero-shot on TREC DL19 and DL21 (MS MARCO passages, up to 256 tokens).
dl_eval() { # METHOD
  local name set
  name="$(run_name "$1")"
  for set in dl19 dl21; do
    step "$work/$name.$set.run" dense_run_to "$work/runs/$name/student" "$work/$name.$set.run" \
      "$fix/data/trec-$set" --rel-threshold 2 --max-length 256
    step "$work/$name.$set.per-query.jsonl" eval_json "$fix/data/trec-$set" test \
      "$work/$name.$set.run" "$work/$name.$set" --rel-threshold 2
  done
}

# in_parallel FUNC METHOD...: FUNC for each method, $JOBS at a time, one thread each (adam,
# the slowest, first in the default list, beside the others).
in_parallel() {
  local func="$1" running=0
  shift
  for m in "$@"; do
    if [ "$running" -ge "$jobs" ]; then
      wait -n
      running=$((running - 1))
    fi
    RAYON_NUM_THREADS=1 "$func" "$m" &
    running=$((running + 1))
  done
  while [ "$running" -gt 0 ]; do
    wait -n
    running=$((running - 1))
  done
}

# MODEL's own top 100 over all of DATA's corpus (default WikiQA test's sentences), for its test split.
dense_run_to() { # MODEL OUT [DATA [EVAL_ARG...]]
  local model="$1" out="$2" data="${3:-$wikiqa}"
  shift $(($# < 3 ? $# : 3))
  "$adam" eval --model "$model" --data "$data" --split test --no-cache "$@" --run-out "$out.tmp"
  mv "$out.tmp" "$out"
}

rerank_to() { # MODEL KIND RUN OUT [DATA SPLIT]
  "$adam" teacher rerank --model "$1" --teacher-kind "$2" --data "${5:-$wikiqa}" \
    --split "${6:-test}" --run "$3" --depth 100 --output "$4.tmp" --max-length 256
  mv "$4.tmp" "$4"
}

for s in "${steps[@]}"; do
  case "$s" in
  teacher)
    step "$work/data" bash -c "python3 '$repo/scripts/merge_beir.py' --split train \
      --part wikiqa='$wikiqa':train-all --part selqa='$fix/data/selqa':test '$work/data.tmp' \
      && mv '$work/data.tmp' '$work/data'"
    step "$work/neg.train.jsonl" bash -c "'$adam' negatives --data '$work/data' --split train \
      --judged-first --top-k 30 --depth 100 --output '$work/neg.train.jsonl.tmp' \
      && mv '$work/neg.train.jsonl.tmp' '$work/neg.train.jsonl'"
    step "$work/teacher" train_teacher
    ;;
  measure)
    step "$work/test-all.candidates.run" candidates_run "$wikiqa/qrels/test-all.tsv" "$work/test-all.candidates.run"
    step "$work/ce.test-all.run" rerank_to "$work/teacher" cross-encoder \
      "$work/test-all.candidates.run" "$work/ce.test-all.run"
    step "$work/ce.test-all.per-query.jsonl" eval_json "$wikiqa" test-all "$work/ce.test-all.run" "$work/ce.test-all"
    step "$work/bm25.test.run" bash -c "'$adam' negatives --data '$wikiqa' --split test \
      --output '$work/neg.test.jsonl' --top-k 1 --depth 100 --run '$work/bm25.test.run.tmp' \
      && mv '$work/bm25.test.run.tmp' '$work/bm25.test.run'"
    step "$work/ce.bm25.run" rerank_to "$work/teacher" cross-encoder "$work/bm25.test.run" "$work/ce.bm25.run"
    step "$work/ce.bm25.per-query.jsonl" eval_json "$wikiqa" test "$work/ce.bm25.run" "$work/ce.bm25"
    step "$work/bm25.per-query.jsonl" eval_json "$wikiqa" test "$work/bm25.test.run" "$work/bm25"
    ;;
  score)
    step "$work/negatives.train.jsonl" "$adam" negatives --data "$wikiqa" --split train \
      --output "$work/negatives.train.jsonl" --top-k 30 --depth 100
    scoring_config
    step "$work/scores.jsonl" score_shards
    step "$work/inspect" "$adam" teacher inspect --scores "$work/scores.jsonl" --output "$work/inspect"
    python3 "$repo/scripts/soft_label_entropy.py" "$work/scores.jsonl" | tee "$work/entropy.txt"
    ;;
  students)
    step "$work/test-all.candidates.run" candidates_run "$wikiqa/qrels/test-all.tsv" "$work/test-all.candidates.run"
    in_parallel distill_and_eval $methods
    ;;
  full)
    in_parallel full_eval $methods
    ;;
  dl)
    in_parallel dl_eval $methods
    ;;
  ensemble)
    # Weights are chosen on 300 SelQA dev questions (the teacher trained on SelQA test), never on
    # WikiQA test: the first 300 dev questions in qrels order, every labelled candidate.
    mkdir -p "$work/selqa"
    step "$work/selqa/qrels" bash -c "mkdir -p '$work/selqa/qrels.tmp' \
      && ln -sf '$fix/data/selqa/corpus.jsonl' '$fix/data/selqa/queries.jsonl' '$work/selqa/' \
      && python3 -c \"
import sys
seen = []
with open('$fix/data/selqa/qrels/dev.tsv') as f, open('$work/selqa/qrels.tmp/dev300.tsv', 'w') as w:
    for n, line in enumerate(f):
        if n == 0:
            w.write(line); continue
        q = line.split('\t')[0]
        if q not in seen:
            if len(seen) == 300: continue
            seen.append(q)
        w.write(line)
\" && mv '$work/selqa/qrels.tmp' '$work/selqa/qrels'"
    step "$work/selqa/dev300.candidates.run" candidates_run "$work/selqa/qrels/dev300.tsv" "$work/selqa/dev300.candidates.run"
    step "$work/selqa/mpnet.dev300.run" rerank_to "$mpnet" dual-encoder \
      "$work/selqa/dev300.candidates.run" "$work/selqa/mpnet.dev300.run" "$work/selqa" dev300
    step "$work/mpnet.test-all.run" rerank_to "$mpnet" dual-encoder \
      "$work/test-all.candidates.run" "$work/mpnet.test-all.run"
    step "$work/selqa/ce.dev300.run" rerank_to "$teacher" cross-encoder \
      "$work/selqa/dev300.candidates.run" "$work/selqa/ce.dev300.run" "$work/selqa" dev300
    step "$work/grid" bash -c "mkdir -p '$work/grid.tmp' && python3 '$repo/scripts/fuse_runs.py' \
      '$work/selqa/ce.dev300.run' '$work/selqa/mpnet.dev300.run' --grid 11 --output '$work/grid.tmp/dev300' \
      && for r in '$work'/grid.tmp/dev300*.run; do printf '%s ' \"\$(basename \$r)\"; \
         '$adam' eval --data '$work/selqa' --split dev300 --run \"\$r\" --json; echo; done > '$work/grid.tmp/dev300.txt' \
      && mv '$work/grid.tmp' '$work/grid'"
    cat "$work/grid/dev300.txt"
    # The best weight on SelQA dev (nDCG@10; the first of equals), applied once to WikiQA test.
    read -r w rest < <(python3 -c "
import json
best = None
for line in open('$work/grid/dev300.txt'):
    if not line.strip():
        continue
    name, js = line.split(' ', 1)
    score = json.loads(js)['ndcg@10']
    if best is None or score > best[0]:
        best = (score, float(name.split('.w', 1)[1].rsplit('.run', 1)[0]))
print(f'{best[1]:.2f} {1 - best[1]:.2f}')
")
    echo "weight on the cross-encoder, chosen on SelQA dev: $w (MPNet: $rest)"
    step "$work/ensemble.test-all.run" python3 "$repo/scripts/fuse_runs.py" \
      "$work/ce.test-all.run:$w" "$work/mpnet.test-all.run:$rest" \
      --output "$work/ensemble.test-all.run"
    step "$work/ensemble.test-all.per-query.jsonl" eval_json "$wikiqa" test-all \
      "$work/ensemble.test-all.run" "$work/ensemble.test-all"
    ;;
  teacher-dl)
    # The teachers zero-shot on TREC DL19 and DL21 (grade >= 2): the zero-shot student's own top 100
    # of each pooled corpus (the untrained 6-layer student's run of the `dl` step), reranked by MPNet
    # as a dual encoder and by this cross-encoder (last, so that the rest can run before it exists).
    for set in dl19 dl21; do
      step "$work/minilm.$set.run" dense_run_to "$minilm" "$work/minilm.$set.run" \
        "$fix/data/trec-$set" --rel-threshold 2 --max-length 256
      step "$work/mpnet.$set.run" rerank_to "$mpnet" dual-encoder "$work/minilm.$set.run" \
        "$work/mpnet.$set.run" "$fix/data/trec-$set" test
    done
    for set in dl19 dl21; do
      step "$work/ce.$set.run" rerank_to "$teacher" cross-encoder "$work/minilm.$set.run" \
        "$work/ce.$set.run" "$fix/data/trec-$set" test
      for r in minilm mpnet ce; do
        step "$work/$r.$set.per-query.jsonl" eval_json "$fix/data/trec-$set" test \
          "$work/$r.$set.run" "$work/$r.$set" --rel-threshold 2
      done
    done
    ;;
  unlabelled)
    u="$work/selqa-dev"
    mkdir -p "$u"
    step "$u/bm25.run" bash -c "'$adam' negatives --data '$fix/data/selqa' --split dev \
      --output '$u/bm25.negatives.jsonl' --top-k 1 --depth 30 --run '$u/bm25.run.tmp' \
      && mv '$u/bm25.run.tmp' '$u/bm25.run'"
    step "$u/ce.run" rerank_to "$teacher" cross-encoder "$u/bm25.run" "$u/ce.run" "$fix/data/selqa" dev
    # The pseudo-labelled folder: SelQA's texts, the teacher's first choice as each question's
    # answer. How often it is a real answer is measured against the labels, which nothing else reads.
    step "$u/qrels" bash -c "ln -sf '$fix/data/selqa/corpus.jsonl' '$fix/data/selqa/queries.jsonl' '$u/' \
      && python3 '$repo/scripts/pseudo_qrels.py' '$u/ce.run' --output '$u/qrels.tmp/dev.tsv' \
      && mv '$u/qrels.tmp' '$u/qrels'"
    step "$u/ce.per-query.jsonl" eval_json "$fix/data/selqa" dev "$u/ce.run" "$u/ce"
    step "$u/bm25.per-query.jsonl" eval_json "$fix/data/selqa" dev "$u/bm25.run" "$u/bm25"
    step "$u/negatives.dev.jsonl" "$adam" negatives --data "$u" --split dev \
      --output "$u/negatives.dev.jsonl" --top-k 30 --depth 100
    scoring_config
    step "$u/scores.jsonl" score_shards "$u" dev "$u/negatives.dev.jsonl" "$u/scores.jsonl"
    step "$u/inspect" "$adam" teacher inspect --scores "$u/scores.jsonl" --output "$u/inspect"
    python3 "$repo/scripts/soft_label_entropy.py" "$u/scores.jsonl" | tee "$u/entropy.txt"
    ;;
  rerank-student)
    step "$work/minilm.dense.test.run" dense_run_to "$minilm" "$work/minilm.dense.test.run"
    step "$work/ce.rerank-student.run" rerank_to "$work/teacher" cross-encoder \
      "$work/minilm.dense.test.run" "$work/ce.rerank-student.run"
    step "$work/ce.rerank-student.per-query.jsonl" eval_json "$wikiqa" test \
      "$work/ce.rerank-student.run" "$work/ce.rerank-student"
    ;;
  *)
    echo "unknown step $s (teacher, measure, score, students, full, dl, ensemble, teacher-dl, rerank-student, unlabelled)" >&2
    exit 2
    ;;
  esac
done
