#!/usr/bin/env bash
# Runs every test of drupal-push, installing what is missing first (non-interactive):
#   formatting and lints, native unit and integration tests (server over real sockets against a
#   fake Drupal, the real binary, the client's pure logic), the wasm client in headless Chromium
#   (wasm-bindgen-test and end-to-end pages driven by playwright-core), and the load generator's
#   smoke scenario.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Incremental caches double the debug target on a one-shot run; CI machines have little disk.
if [ "${CI:-}" = "true" ]; then export CARGO_INCREMENTAL=0; fi

step() { printf '\n==> %s\n' "$*"; }
step "disk"
df -h . | tail -1

step "toolchain"
command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup first" >&2; exit 1; }
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "redis-server (the Redis engine's tests start their own on free ports)"
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y --no-install-recommends redis-server
fi
redis-server --version

step "formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "native tests (protocol, server, client logic, integration over real sockets)"
cargo test --workspace --locked

step "integration tests again on the Redis engine (each test server gets its own redis-server)"
DRUPAL_PUSH_TEST_ENGINE=redis cargo test --locked -p drupal-push-tests --tests

step "browser tests (wasm-bindgen-test and end-to-end in headless Chromium)"
tests/browser/run.sh

step "load generator smoke scenario"
tests/bench/smoke.sh

step "all tests passed"
