#!/usr/bin/env bash
# Builds the drupal-push browser client into drupal-js/dist/:
#   drupal-push.js             the shim a Drupal page loads (Drupal.Nodejs API)
#   drupal_push_client.js      wasm-bindgen glue (ES module, loaded by the shim)
#   drupal_push_client_bg.wasm the client, optimised with wasm-opt -Oz
# Idempotent and non-interactive: installs the wasm32 target, the wasm-bindgen CLI matching
# Cargo.lock and npm binaryen when they are missing, then prints raw and gzipped sizes.
# Budget: the three files together at most 60 KiB gzipped (exit 1 beyond).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
dist="$here/dist"
budget=$((60 * 1024))
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

log() { printf 'build.sh: %s\n' "$*" >&2; }

cd "$root"

if command -v rustup >/dev/null 2>&1; then
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
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

if [ ! -x "$here/node_modules/.bin/wasm-opt" ]; then
  log "installing npm binaryen"
  (cd "$here" && { npm ci --no-audit --no-fund || npm install --no-audit --no-fund; })
fi

log "building the client (release, wasm32, optimised for size)"
# Size settings for this build only (the workspace release profile serves the server too):
# whole-program LTO and opt-level z roughly halve the wasm; shorter panic-location paths.
CARGO_PROFILE_RELEASE_OPT_LEVEL=z \
CARGO_PROFILE_RELEASE_LTO=fat \
CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
CARGO_PROFILE_RELEASE_DEBUG=false \
CARGO_PROFILE_RELEASE_PANIC=abort \
RUSTFLAGS="${RUSTFLAGS:-} --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}/registry/src=/crates --remap-path-prefix=$root=/drupal-push" \
  cargo build -p drupal-push-client --target wasm32-unknown-unknown --release
target_dir="$(cargo metadata --format-version 1 --no-deps |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"
wasm="$target_dir/wasm32-unknown-unknown/release/drupal_push_client.wasm"

rm -rf "$dist.tmp"
mkdir -p "$dist.tmp"
wasm-bindgen --target web --no-typescript --out-dir "$dist.tmp" --out-name drupal_push_client "$wasm"
"$here/node_modules/.bin/wasm-opt" -Oz --strip-debug --strip-producers \
  --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-reference-types --enable-multivalue --enable-mutable-globals \
  "$dist.tmp/drupal_push_client_bg.wasm" -o "$dist.tmp/drupal_push_client_bg.wasm"
cp "$here/drupal-push.js" "$dist.tmp/drupal-push.js"
rm -rf "$dist"
mv "$dist.tmp" "$dist"

total_raw=0
total_gz=0
printf '%-30s %10s %10s\n' file bytes gzipped
for f in drupal-push.js drupal_push_client.js drupal_push_client_bg.wasm; do
  raw=$(wc -c <"$dist/$f")
  gz=$(gzip -9 -c "$dist/$f" | wc -c)
  total_raw=$((total_raw + raw))
  total_gz=$((total_gz + gz))
  printf '%-30s %10d %10d\n' "$f" "$raw" "$gz"
done
printf '%-30s %10d %10d (budget %d)\n' total "$total_raw" "$total_gz" "$budget"
if [ "$total_gz" -gt "$budget" ]; then
  log "over the size budget"
  exit 1
fi
