#!/usr/bin/env bash
# Builds the browser demo into dist/: the wasm32 binary (profile web-release), its JavaScript
# bindings (wasm-bindgen --target web), and the page — index.html with its three trunk links
# replaced by what trunk writes for them, the stylesheet and web/assets. This is what
# `trunk build --release` makes of index.html (trunk stays the tool for `trunk serve` while
# developing), without trunk itself (its 384 crates were 15 of a cold CI run's minutes), and
# with wasm-opt passes that trunk's optimisation levels do not offer.
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
# binaryen's wasm-opt from npm (tests/web/package.json; Debian's binaryen breaks this module),
# looked for before the build so that CI stops at once without it.
wasm_opt="${ADAM_WASM_OPT:-tests/web/node_modules/.bin/wasm-opt}"
if [ ! -x "$wasm_opt" ] && [ "${CI:-}" = "true" ]; then
  echo "wasm-opt is missing ($wasm_opt): .ci/run installs it with tests/web's npm packages" >&2
  exit 1
fi
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
# wasm-opt orders the functions by their names, so wasm-bindgen keeps the name section for it.
# Without wasm-opt the names go here (function names for stack traces: 6.4 of the wasm's 35 MB,
# 1.2 of its 6.1 MB gzipped); `trunk serve`, for development, keeps them.
names=()
[ -x "$wasm_opt" ] || names=(--remove-name-section)
wasm-bindgen --target web --no-typescript "${names[@]}" --out-dir "$out.tmp" --out-name adam-web \
  "$target/wasm32-unknown-unknown/web-release/adam-web.wasm"
if [ -x "$wasm_opt" ]; then
  # Identical functions merged, then every function placed beside its namesakes: burn and cubecl
  # instantiate one generic many times over, and near copies within gzip's 32 kB window
  # compress against each other (3.25 -> 2.92 MB gzipped, 17 s; BENCHMARKS.md, issue 19). Then
  # the names go. The features are rustc's for wasm32 and gemm's SIMD kernels: a new one fails
  # validation here rather than in a browser.
  "$wasm_opt" "$out.tmp/adam-web_bg.wasm" -o "$out.tmp/adam-web_bg.wasm" \
    --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
    --enable-multivalue --enable-reference-types --enable-simd \
    --duplicate-function-elimination --remove-unused-module-elements --vacuum --duplicate-function-elimination \
    --reorder-functions-by-name --strip-debug --strip-producers
else
  echo "wasm-opt not found ($wasm_opt; \`npm ci\` in tests/web installs it): the page's wasm is left unoptimised, about 10 % larger gzipped" >&2
fi
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
