#!/usr/bin/env bash
# CI smoke benchmark (< 1 minute once built): a few hundred connections against drupal-push,
# cold and cached authentication, a few fan-out messages sequentially and pipelined, one more
# round while a REST call is timed, one interleaved drupal-push / ceiling comparison, and the
# cluster scenario in small (2 nodes x 150 clients on a redis-server of its own, one fleet
# process per node, against one memory-engine node). Fails (non-zero exit) on any client that
# did not get ready, a cached reconnect that asked the backend, any lost, duplicated or stray
# message, or a failed REST call or publish. Figures are printed, never asserted. Needs
# redis-server (tests/run-all.sh installs it), neither Sockudo nor laravel-echo-server.
set -euo pipefail
cd "$(dirname "$0")/../.."
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
cargo build -p drupal-push-server -p drupal-push-bench --bin drupal-push --bin drupal-push-bench
BENCH=$TARGET/debug/drupal-push-bench
WORK=$TARGET/bench-smoke-work
rm -rf "$WORK"
timeout 120 "$BENCH" smoke --server-bin "$TARGET/debug/drupal-push" --work-dir "$WORK" \
  --connect 300 --hold 300 --fanout 300,100 --messages 5 --windows 1,3 --concurrency 64 \
  --probe-sizes 300 --probe-ms 5 --out "$TARGET/bench-smoke.json"
timeout 120 "$BENCH" interleave --server-bin "$TARGET/debug/drupal-push" --work-dir "$WORK" --a ours --b ceiling \
  --sizes 200 --runs 1 --messages 5 --concurrency 64 --out "$TARGET/bench-smoke-interleave.json"
timeout 120 "$BENCH" cluster --server-bin "$TARGET/debug/drupal-push" --work-dir "$WORK" --nodes 2 --per-node 150 \
  --memory-baseline 150 --messages 5 --windows 1,3 --publishes 20 --in-flight 1,3 --concurrency 64 --check \
  --out "$TARGET/bench-smoke-cluster.json"
