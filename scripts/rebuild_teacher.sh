#!/usr/bin/env bash
# Rebuilds the paraphrase world's shipped teacher (trainer/teachers/paraphrase) with the command
# its SOURCE.md records and compares the new weights' hash with the recorded one (exit 1 when
# they differ).
#
#   bash scripts/rebuild_teacher.sh WORK [--install]
#
# WORK: a folder for the demo's run, outside the repository. --install then copies the new
# teacher over the shipped one (update SOURCE.md's hash and figures after it). About 11 minutes
# on 2 cores, release build excluded. The CPU backend picks its SIMD kernels for the processor
# at run time and they may round differently, so the bytes are those of the processor SOURCE.md
# names; on another one compare the figures instead.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:?usage: bash scripts/rebuild_teacher.sh WORK [--install]}
install=${2:-}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/adam-release}"
cargo build --release --locked --workspace --exclude adam-web
adam="$CARGO_TARGET_DIR/release/adam"

# The demo's own teacher stage; one student of one step stands in for the comparison.
"$adam" demo --world paraphrase --train-teacher --output "$work" --methods ce --seeds 1 \
  --student-steps 1 --web-assets "$work/web-assets"

want=$(sed -n 's/^ *sha256(model.safetensors) = //p' trainer/teachers/paraphrase/SOURCE.md)
got=$(sha256sum "$work/teacher/model.safetensors" | cut -d' ' -f1)
echo "recorded sha256 $want"
echo "rebuilt  sha256 $got"
if [ "$install" = --install ]; then
  for f in config.json tokenizer.json tokenizer_config.json model.safetensors; do
    cp "$work/teacher/$f" trainer/teachers/paraphrase/
  done
  echo "installed in trainer/teachers/paraphrase: update its SOURCE.md (hash, figures)"
fi
if [ "$want" = "$got" ]; then echo "same bytes"; else echo "the bytes differ"; exit 1; fi
