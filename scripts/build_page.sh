#!/usr/bin/env bash
# Builds the browser demo into dist/ (trunk, wasm32, the web-release profile). Its own target
# folder: the wasm build shares nothing with the native one, and apart they can run at once
# (.ci/run builds the page while the native tests compile).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$HOME/.cache/adam-target}"
CARGO_TARGET_DIR="$target-web" trunk build --release
