#!/usr/bin/env bash
# Issue 19, point 3: `adam bench` and `adam bench-train` on wgpu next to PyTorch CUDA on the same
# GPU (same model shape, batches, lengths and passages), in a few minutes of device time.
#
#     bash scripts/gpu_bench.sh prepare      # here, after the release build: fills .gpu/ (ignored by git)
#     # then the device tool: run(command="bash scripts/gpu_bench.sh run", carry=[".gpu"], timeout_s=540)
#     bash scripts/gpu_bench.sh run          # or here, to test it: wgpu on lavapipe, PyTorch skipped if absent
#
# What travels (.gpu/, about 27 MB: the device tool carries 64 MiB): the stripped `adam` gzipped,
# all-MiniLM-L6-v2's config, tokenizer and the names and shapes of its tensors (not its 91 MB of
# weights: both engines load the same seeded random weights, written on arrival; speed does not
# depend on the values), TREC DL19's passages, and the Vulkan loader's Debian packages.
# The run writes $OUT/gpu_bench.log (everything) and $OUT/gpu_bench.json (one line per
# measurement, then the adam/PyTorch ratios), or ./gpu_bench.* without $OUT.
# Sizes: ENCODE_BATCHES (default "32 256"), TRAIN_BATCHES (default "16 64"), MAX_LENGTH (128),
# PASSAGES (4096), STEPS (20).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
gpu=.gpu

prepare() {
  local fix="${ADAM_FIXTURES:-../shared}"
  local adam="${CARGO_TARGET_DIR:-target}/release/adam"
  [ -x "$adam" ] || { echo "no $adam: cargo build --release --workspace --exclude adam-web first" >&2; exit 1; }
  grep -qx "/$gpu/" .git/info/exclude 2>/dev/null || echo "/$gpu/" >> .git/info/exclude
  rm -rf "$gpu" && mkdir -p "$gpu/model" "$gpu/gl"
  strip -o "$gpu/adam" "$adam"
  gzip -6 "$gpu/adam"
  local m="$fix/models/all-MiniLM-L6-v2"
  cp "$m"/{config.json,tokenizer.json,tokenizer_config.json,special_tokens_map.json,vocab.txt} "$gpu/model/"
  cp "$m"/{modules.json,sentence_bert_config.json} "$gpu/model/"
  cp -r "$m/1_Pooling" "$gpu/model/"
  chmod -R u+w "$gpu/model"
  # The tensors' names, shapes and dtypes: the safetensors header (8-byte length, then JSON).
  python3 - "$m/model.safetensors" "$gpu/model/shapes.json" <<'EOF'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    (n,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(n))
header.pop("__metadata__", None)
json.dump({k: v["shape"] for k, v in sorted(header.items())}, open(sys.argv[2], "w"))
EOF
  cp "$fix/data/trec-dl19/corpus.jsonl" "$gpu/corpus.jsonl"
  # Vulkan's loader (the device machine has the NVIDIA driver but may lack libvulkan).
  local o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
  mkdir -p /tmp/amd64/partial
  apt-get "${o[@]}" update -qq
  (cd "$gpu/gl" && apt-get "${o[@]}" download -qq libvulkan1)
  du -sh "$gpu"
}

# Seeded random weights in the real checkpoint's layout, F32, standard library only.
random_weights() { # DIR
  python3 - "$1" <<'EOF'
import array, json, random, struct, sys
d = sys.argv[1]
shapes = json.load(open(f"{d}/shapes.json"))
rng = random.Random(0)
block = array.array("f", (rng.uniform(-0.04, 0.04) for _ in range(1 << 20)))
header, offset, chunks = {}, 0, []
for name, shape in shapes.items():
    n = 1
    for s in shape:
        n *= s
    if name.endswith("LayerNorm.weight"):
        a = array.array("f", [1.0]) * n
    elif name.endswith("bias"):
        a = array.array("f", [0.0]) * n
    else:
        a = (block * (n // len(block) + 1))[:n]
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + 4 * n]}
    offset += 4 * n
    chunks.append(a)
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
with open(f"{d}/model.safetensors.tmp", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    for a in chunks:
        a.tofile(f)
import os
os.replace(f"{d}/model.safetensors.tmp", f"{d}/model.safetensors")
print(f"random weights: {len(shapes)} tensors, {offset // 4:,} parameters")
EOF
}

run() {
  [ -d "$gpu/model" ] || { echo "no $gpu/: run 'bash scripts/gpu_bench.sh prepare' first, and carry $gpu" >&2; exit 1; }
  local out="${OUT:-.}"
  local log="$out/gpu_bench.log" json="$out/gpu_bench.json"
  : > "$log"
  : > "$json"
  exec > >(tee -a "$log") 2>&1
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    if ! ldconfig -p | grep -q libvulkan.so.1; then
      for f in "$gpu"/gl/*.deb; do dpkg -x "$f" /; done
      ldconfig
    fi
    local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    [ -f "$icd" ] && export VK_DRIVER_FILES="$icd"
  fi
  local work
  work="$(mktemp -d)"
  gunzip -c "$gpu/adam.gz" > "$work/adam"
  chmod +x "$work/adam"
  cp -r "$gpu/model" "$work/model"
  random_weights "$work/model"
  local adam="$work/adam" model="$work/model" corpus="$gpu/corpus.jsonl"
  local len="${MAX_LENGTH:-128}" passages="${PASSAGES:-4096}" steps="${STEPS:-20}"
  local torch=1
  python3 -c "import torch, sentence_transformers" 2>/dev/null || { torch=0; echo "no PyTorch here: its rows are skipped"; }
  local dev=cpu
  [ "$torch" = 1 ] && python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null && dev=cuda
  for b in ${ENCODE_BATCHES:-32 256}; do
    echo "== encode, batch $b x $len tokens, $passages passages"
    "$adam" bench --model "$model" --corpus "$corpus" --passages "$passages" --batch-size "$b" \
      --max-length "$len" --backends wgpu | tee "$work/out"
    grep '^{' "$work/out" | sed "s/^{/{\"bench\":\"encode\",\"batch\":$b,/" >> "$json"
    if [ "$torch" = 1 ]; then
      python3 scripts/bench_pytorch.py --model "$model" --device "$dev" \
        --n "$passages" --batch-size "$b" --max-seq-length "$len" --corpus "$corpus" | tee "$work/out"
      tail -1 "$work/out" | sed "s/^{/{\"bench\":\"encode\",\"batch\":$b,/" >> "$json"
    fi
  done
  for b in ${TRAIN_BATCHES:-16 64}; do
    echo "== train, batch $b x $len tokens, $steps steps"
    "$adam" bench-train --model "$model" --corpus "$corpus" --batch-size "$b" --max-length "$len" \
      --steps "$steps" --backends wgpu | tee "$work/out"
    grep '^{' "$work/out" | sed "s/^{/{\"bench\":\"train\",\"batch\":$b,/" >> "$json"
    if [ "$torch" = 1 ]; then
      python3 scripts/bench_train_pytorch.py --model "$model" --device "$dev" --batch-size "$b" \
        --max-length "$len" --steps "$steps" --corpus "$corpus" | tee "$work/out"
      tail -1 "$work/out" | sed "s/^{/{\"bench\":\"train\",\"batch\":$b,/" >> "$json"
    fi
  done
  python3 - "$json" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def rate(r):
    return r.get("passages_per_s") or r.get("pairs_per_s")
out = []
for r in rows:
    if r["engine"].startswith("adam"):
        ref = [p for p in rows if p["engine"] == "pytorch" and p["bench"] == r["bench"] and p["batch"] == r["batch"]]
        if ref:
            out.append({"bench": r["bench"], "batch": r["batch"], "adam_over_pytorch": round(rate(r) / rate(ref[0]), 3)})
with open(sys.argv[1], "a") as f:
    for o in out:
        print(json.dumps(o))
        f.write(json.dumps(o) + "\n")
EOF
  rm -rf "$work"
}

case "${1:-}" in
prepare) prepare ;;
run) run ;;
*)
  echo "usage: gpu_bench.sh prepare | run" >&2
  exit 2
  ;;
esac
