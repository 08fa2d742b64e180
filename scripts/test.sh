#!/usr/bin/env bash
# The project's test command (README): every Rust test of the workspace, then the wasm32 build
# of the shared crate (it must keep compiling for the browser).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/adam-target}"

cargo test --workspace --exclude adam-web --locked
cargo build -p adam-core --target wasm32-unknown-unknown --locked
