#!/usr/bin/env bash
# CI smoke benchmark (< 1 minute once built): a few hundred connections against drupal-push,
# cold and cached authentication, a few fan-out messages sequentially and pipelined. Fails
# (non-zero exit) on any client that did not get ready, a cached reconnect that asked the
# backend, or any lost, duplicated or stray message. Figures are printed, never asserted.
set -euo pipefail
cd "$(dirname "$0")/../.."
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
cargo build -p drupal-push-server -p drupal-push-tests --bin drupal-push --bin drupal-push-bench
timeout 120 "$TARGET/debug/drupal-push-bench" smoke --server-bin "$TARGET/debug/drupal-push" \
  --connect 300 --hold 300 --fanout 300,100 --messages 5 --windows 1,3 --concurrency 64 \
  --out "$TARGET/bench-smoke.json"
