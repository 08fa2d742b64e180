#!/usr/bin/env bash
# The project's test command (README): builds the browser demo (dist/, wasm32 release: this is
# also what keeps adam-core compiling for the browser), then runs every Rust test of the
# workspace; tests/tests/web.rs drives dist/ in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/adam-target}"

if command -v wasm-bindgen >/dev/null 2>&1; then
  bash scripts/build_page.sh
  export ADAM_WEB_DIST="$PWD/dist"
elif [ "${CI:-}" = "true" ]; then
  echo "wasm-bindgen (wasm-bindgen-cli) is missing: .ci/run installs it" >&2
  exit 1
else
  echo "wasm-bindgen not found: building the wasm crates without the page (the browser test will skip)" >&2
  CARGO_TARGET_DIR="$CARGO_TARGET_DIR-web" cargo build -p adam-web --target wasm32-unknown-unknown --profile web-release --locked
fi

# Tests that skip (a fixture or tool missing outside CI) say so here at the end, not silently.
export ADAM_SKIPPED="$CARGO_TARGET_DIR/adam-skipped-tests.txt"
rm -f "$ADAM_SKIPPED"
cargo test --workspace --exclude adam-web --locked
if [ -s "$ADAM_SKIPPED" ]; then
  echo "skipped $(sort -u "$ADAM_SKIPPED" | wc -l) test(s) whose fixtures or tools are missing:" >&2
  sort -u "$ADAM_SKIPPED" | sed 's/^/  /' >&2
fi
