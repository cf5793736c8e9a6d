#!/usr/bin/env bash
# Browser tests of drupal-push, non-interactive; installs what is missing first:
#   Debian chromium + chromium-driver (never a downloaded browser), npm playwright-core,
#   the wasm toolchain (through drupal-js/build.sh, which also builds drupal-js/dist/).
# Then: the TypeScript declarations, the server binary, the client's wasm-bindgen-test tests in
# headless Chromium, and the
# end-to-end tests (node --test) against the real server and the fake Drupal of the Rust tests
# (tests/src/bin/fake-drupal.rs, its own process).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

step() { printf '\n--> browser tests: %s\n' "$*"; }

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  step "installing Debian chromium and chromium-driver"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y --no-install-recommends chromium chromium-driver
fi

if [ ! -d "$here/node_modules/playwright-core" ] || [ ! -d "$here/node_modules/jquery" ]; then
  step "installing playwright-core and jquery"
  (cd "$here" && npm ci --no-audit --no-fund)
fi

step "building drupal-js/dist (wasm client, glue, shim)"
"$root/drupal-js/build.sh"

step "type-checking drupal-push.d.ts against an example (tsc --noEmit)"
"$root/drupal-js/node_modules/.bin/tsc" -p "$root/drupal-js/tsconfig.json"

step "building the server and the fake Drupal of the tests"
cd "$root"
cargo build -p drupal-push-server --bin drupal-push
cargo build -p drupal-push-tests --bin fake-drupal
target_dir="$(cargo metadata --format-version 1 --no-deps |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"

step "wasm-bindgen-test in headless Chromium"
CHROMEDRIVER=/usr/bin/chromedriver cargo test -p drupal-push-client --target wasm32-unknown-unknown

step "end-to-end tests"
cd "$here"
E2E_SERVER_BIN="$target_dir/debug/drupal-push" E2E_FAKE_DRUPAL_BIN="$target_dir/debug/fake-drupal" node --test --test-concurrency=1 e2e/
