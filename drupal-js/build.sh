#!/usr/bin/env bash
# Builds the drupal-push browser client into drupal-js/dist/:
#   socket.io.js               src/abi.js + page.js + core.js: the `io` facade the module's own
#                              nodejs.js uses (the server serves it at {resource}/socket.io.js)
#   drupal-push.js             src/abi.js + page.js + core.js + shim.js: our Drupal.Nodejs, for themes
#   drupal_push_client.js      wasm-bindgen glue (ES module, loaded by either script)
#   drupal_push_client_bg.wasm the client (no_std), optimised with wasm-opt -Oz
#   drupal-push.d.ts           TypeScript declarations of Drupal.Nodejs and io
# Idempotent and non-interactive: installs the wasm32 target, the rust-src component, the
# wasm-bindgen CLI matching Cargo.lock and npm binaryen when they are missing, then prints raw
# and gzipped sizes.
# Budget (issue 10): what a page loads, either script + glue + wasm, at most 20 KiB gzipped
# (exit 1 beyond; tests/browser/run.sh runs this, so the browser tests fail too).
# `build.sh --sizes` prints the sizes of the current dist/ with a breakdown of the wasm by
# function (twiggy, when installed) without building.
#
# core and alloc are rebuilt for this build (-Zbuild-std, with RUSTC_BOOTSTRAP=1 on the stable
# toolchain: the unstable flags are this build's only) with `optimize_for_size` and the
# `immediate-abort` panic strategy: no panic messages, locations or formatting are linked.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
dist="$here/dist"
budget=$((20 * 1024))
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

log() { printf 'build.sh: %s\n' "$*" >&2; }

cd "$root"

gz() { gzip -9 -c "$1" | wc -c; }

# Prints the sizes of both load paths and fails beyond the budget.
report() {
  local status=0
  printf '%-30s %10s %10s\n' file bytes gzipped
  for f in socket.io.js drupal-push.js drupal_push_client.js drupal_push_client_bg.wasm drupal-push.d.ts; do
    printf '%-30s %10d %10d\n' "$f" "$(wc -c <"$dist/$f")" "$(gz "$dist/$f")"
  done
  local shared=$(($(gz "$dist/drupal_push_client.js") + $(gz "$dist/drupal_push_client_bg.wasm")))
  for entry in socket.io.js drupal-push.js; do
    local total=$((shared + $(gz "$dist/$entry")))
    printf '%-30s %10s %10d (budget %d)\n' "page via $entry" "" "$total" "$budget"
    if [ "$total" -gt "$budget" ]; then
      log "over the size budget: $entry + glue + wasm = $total bytes gzipped"
      status=1
    fi
  done
  if command -v twiggy >/dev/null 2>&1 && [ -f "$unoptimised" ]; then
    printf '\nlargest items of the wasm before wasm-opt (twiggy top):\n'
    twiggy top -n 15 "$unoptimised" || true
  fi
  return $status
}

target_dir="$(cargo metadata --format-version 1 --no-deps |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"
unoptimised="$target_dir/drupal-push-client-bindgen.wasm"

if [ "${1:-}" = "--sizes" ]; then
  report
  exit $?
fi

if command -v rustup >/dev/null 2>&1; then
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  if ! rustup component list --installed | grep -q '^rust-src'; then
    log "adding the rust-src component (core and alloc are rebuilt for size)"
    rustup component add rust-src
  fi
fi

# The CLI must match the wasm-bindgen crate exactly. Not --locked: its lock file pins a
# webpki-roots version the registry here does not have.
want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
if [ -z "$want" ]; then
  log "resolving dependencies to learn the wasm-bindgen version"
  cargo generate-lockfile >/dev/null 2>&1 || cargo metadata --format-version 1 >/dev/null
  want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
fi
have="$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)"
if [ "$have" != "$want" ]; then
  log "installing wasm-bindgen-cli $want (found: ${have:-none})"
  cargo install wasm-bindgen-cli --version "$want"
fi

if [ ! -x "$here/node_modules/.bin/wasm-opt" ] || [ ! -x "$here/node_modules/.bin/terser" ] ||
  [ ! -x "$here/node_modules/.bin/tsc" ]; then
  log "installing npm binaryen, terser and typescript"
  (cd "$here" && { npm ci --no-audit --no-fund || npm install --no-audit --no-fund; })
fi

log "building the client (release, wasm32, no_std, core rebuilt for size)"
# Size settings for this build only (the workspace release profile serves the server too):
# whole-program LTO and opt-level z roughly halve the wasm; shorter panic-location paths.
# RUSTC_BOOTSTRAP=1 lets the stable toolchain take -Zbuild-std and the immediate-abort panic
# strategy; the build has its own target directory (std rebuilt differs from the sysroot's).
RUSTC_BOOTSTRAP=1 \
CARGO_PROFILE_RELEASE_OPT_LEVEL=z \
CARGO_PROFILE_RELEASE_LTO=fat \
CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
CARGO_PROFILE_RELEASE_DEBUG=false \
CARGO_PROFILE_RELEASE_PANIC=abort \
RUSTFLAGS="${RUSTFLAGS:-} -Zunstable-options -Cpanic=immediate-abort --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}/registry/src=/crates --remap-path-prefix=$root=/drupal-push" \
  cargo build -p drupal-push-client --target wasm32-unknown-unknown --release --no-default-features \
  --target-dir "$target_dir/drupal-js" -Zbuild-std=core,alloc -Zbuild-std-features=optimize_for_size
wasm="$target_dir/drupal-js/wasm32-unknown-unknown/release/drupal_push_client.wasm"

rm -rf "$dist.tmp"
mkdir -p "$dist.tmp"
wasm-bindgen --target web --no-typescript --out-dir "$dist.tmp" --out-name drupal_push_client "$wasm"
cp "$dist.tmp/drupal_push_client_bg.wasm" "$unoptimised"
# The exports the trimmed glue never calls (trim-glue.js: no free(), no realloc) go first, and
# with them the code only they reached.
for unused in '__wb*_free' __wbindgen_realloc; do
  "$here/node_modules/.bin/wasm-opt" --enable-reference-types --enable-bulk-memory --enable-multivalue \
    --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
    --remove-exports --pass-arg="remove-exports@$unused" \
    "$dist.tmp/drupal_push_client_bg.wasm" -o "$dist.tmp/drupal_push_client_bg.wasm"
done
# --low-memory-unused: Rust never touches the first 1 KiB of memory (its data and stack lie above
# 1 MiB), so constant addresses fold into load and store offsets (-0.2 KiB gzipped).
"$here/node_modules/.bin/wasm-opt" -Oz --strip-debug --strip-producers \
  --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-reference-types --enable-multivalue --enable-mutable-globals \
  --strip-target-features --low-memory-unused --converge "$dist.tmp/drupal_push_client_bg.wasm" -o "$dist.tmp/drupal_push_client_bg.wasm"
# Minified with terser (npm): the glue's JSDoc comments and the scripts' comments and long names
# are most of their bytes. `import` and `import.meta` need the module/ES2020 settings. Then
# minify-names.js shortens the wasm's import and export names and rewrites the glue to match.
terser="$here/node_modules/.bin/terser"
# trim-glue.js keeps what the page uses of the glue (core.js fetches and compiles the wasm
# itself and calls initSync; see the script).
node "$here/trim-glue.js" "$dist.tmp/drupal_push_client.js" "$dist.tmp/drupal_push_client_bg.wasm"
"$terser" "$dist.tmp/drupal_push_client.js" --module --ecma 2020 -c passes=2 -m -o "$dist.tmp/drupal_push_client.js"
node "$here/minify-names.js" "$dist.tmp"
# The socket's own members (_ and a name, but _do, which the glue calls) get short names, the
# same in both scripts (one name cache): a page may load both, sharing one socket.
names="$dist.tmp/names.json"
minify() { "$terser" --ecma 2020 -c passes=2 -m --mangle-props 'regex=/^_(?!do$)/' --name-cache "$names" -o "$1"; }
# One function scope around the files: abi.js's constants (generated from client-wasm/src/abi.rs)
# are local there, and terser puts their values in their place.
scope() { printf '(function () {\n'; for f in abi "$@"; do cat "$here/src/$f.js"; done; printf '})();\n'; }
scope page core shim | minify "$dist.tmp/drupal-push.js"
scope page core | minify "$dist.tmp/socket.io.js"
# terser inlines or renames the constants abi.js defines; a KIND_... name left in a script is one
# it does not define (an undefined global at run time).
if grep -qE '\b(KIND|ACT|MESSAGE|REQUEST)_[A-Z_]+\b' "$dist.tmp/drupal-push.js" "$dist.tmp/socket.io.js"; then
  log "abi.js constants were not inlined"
  exit 1
fi
rm "$names"
cp "$here/drupal-push.d.ts" "$dist.tmp/drupal-push.d.ts"
rm -rf "$dist"
mv "$dist.tmp" "$dist"

report
