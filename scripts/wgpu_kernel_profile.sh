#!/usr/bin/env bash
# Issue 19, point 2: where a wgpu device's time goes, kernel by kernel. Embeds the first N
# WikiQA questions one at a time (as the page encodes a query) with `adam embed --backend wgpu`,
# with cubecl's profiling logger on (a cubecl.toml in a scratch folder: every kernel launch and
# its device time), then sums the time per kernel family. On a machine without a GPU, wgpu runs
# on Mesa's lavapipe, a software Vulkan driver of the same kind as Chromium's SwiftShader.
#
#     bash scripts/wgpu_kernel_profile.sh [N]        # default 10 questions
#
# Needs: `adam` on PATH or $ADAM, fixtures at $ADAM_FIXTURES (default ../shared).
set -euo pipefail

n="${1:-10}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
fix="$(cd "${ADAM_FIXTURES:-$repo/../shared}" && pwd)"
adam="$(command -v "${ADAM:-adam}")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
head -n "$n" "$fix/data/wikiqa/queries.jsonl" | python3 -c '
import json, sys
for line in sys.stdin:
    print(json.loads(line)["text"])' > queries.txt
printf '[profiling.logger]\nlevel = "basic"\nfile = "%s/kernels.log"\n' "$work" > cubecl.toml
start=$(date +%s.%N)
"$adam" embed --model "$fix/models/all-MiniLM-L6-v2" --backend wgpu --batch-size 1 \
  --input queries.txt --output vectors.jsonl 2> embed.log || { cat embed.log >&2; exit 1; }
python3 - "$work/kernels.log" "$n" "$start" "$(date +%s.%N)" <<'EOF'
import collections, re, sys

log, n, wall = sys.argv[1], int(sys.argv[2]), float(sys.argv[4]) - float(sys.argv[3])
unit = {"ns": 1e-3, "µs": 1.0, "ms": 1e3, "s": 1e6}
total, count = collections.Counter(), collections.Counter()
for line in open(log, encoding="utf-8"):
    cells = [c.strip() for c in line.split("|")]
    if len(cells) < 3:
        continue
    m = re.match(r"([\d.]+)(ns|µs|ms|s)$", cells[1])
    if not m:
        continue
    # The family: the name's first cell (a matmul's cells list its whole blueprint), without
    # the hash of a one-cell name.
    family = cells[2].split("_")[0] if len(cells) == 3 else cells[2]
    total[family] += float(m.group(1)) * unit[m.group(2)]
    count[family] += 1
all_us = sum(total.values())
print(f"{n} questions, one per forward pass: {wall:.1f} s wall (model load included), "
      f"{all_us / 1e6:.2f} s of kernels, {sum(count.values())} launches "
      f"({sum(count.values()) / n:.0f} per question)")
print(f"{'family':<24} {'ms':>9} {'share':>6} {'launches':>8} {'mean µs':>9}")
for family, us in total.most_common():
    print(f"{family:<24} {us / 1e3:9.1f} {100 * us / all_us:5.1f}% {count[family]:8d} {us / count[family]:9.0f}")
EOF
