#!/usr/bin/env bash
# Builds the browser demo into dist/: the wasm32 binary (profile web-release), its JavaScript
# bindings (wasm-bindgen --target web), and the page — index.html with its three trunk links
# replaced by what trunk writes for them, the stylesheet and web/assets. This is what
# `trunk build --release` makes of index.html (trunk stays the tool for `trunk serve` while
# developing), without trunk itself: its 384 crates were 15 of a cold CI run's minutes.
#
# Its own target folder: the wasm build shares nothing with the native one, and apart they can
# run at once (.ci/run builds the page while the native tests compile). The cargo command is
# trunk's, so either tool reuses the other's build.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$HOME/.cache/adam-target}-web"
for tool in wasm-bindgen; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "$tool is missing: cargo install wasm-bindgen-cli --version <wasm-bindgen's in Cargo.lock> (.ci/run does)" >&2
    exit 1
  }
done
# The rust link of index.html, checked so that the page cannot drift from what trunk builds.
grep -qF 'data-trunk rel="rust" href="web/Cargo.toml" data-bin="adam-web" data-wasm-opt="0" data-cargo-profile-release="web-release"' index.html || {
  echo "index.html's rust link changed: update scripts/build_page.sh to build what it asks" >&2
  exit 1
}
CARGO_TARGET_DIR="$target" cargo build --manifest-path web/Cargo.toml --bin adam-web \
  --target wasm32-unknown-unknown --profile web-release --locked

out=dist
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
# Without the name section (function names for stack traces: 6.4 of the wasm's 35 MB, 1.2 of its
# 6.1 MB gzipped); `trunk serve`, for development, keeps it.
wasm-bindgen --target web --no-typescript --remove-name-section --out-dir "$out.tmp" --out-name adam-web \
  "$target/wasm32-unknown-unknown/web-release/adam-web.wasm"
cp web/style.css "$out.tmp/style.css"
cp -r web/assets "$out.tmp/assets"
# trunk's loader: init the module, expose the bindings, announce the start.
loader='    <script type="module">import init, * as bindings from "./adam-web.js"; const wasm = await init({ module_or_path: "./adam-web_bg.wasm" }); window.wasmBindings = bindings; dispatchEvent(new CustomEvent("TrunkApplicationStarted", { detail: { wasm } }));</script>'
awk -v loader="$loader" '
  /<link data-trunk rel="rust"/ { print loader; next }
  /<link data-trunk rel="css" href="web\/style.css"/ { print "    <link rel=\"stylesheet\" href=\"./style.css\" />"; next }
  /<link data-trunk rel="copy-dir" href="web\/assets"/ { next }
  /data-trunk/ { print "build_page.sh does not know this trunk link: " $0 > "/dev/stderr"; exit 1 }
  { print }
' index.html >"$out.tmp/index.html"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "built the page in $out/ ($(du -sh "$out" | cut -f1))"
