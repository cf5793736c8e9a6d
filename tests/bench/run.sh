#!/usr/bin/env bash
# Full benchmark suite: drupal-push against laravel-echo-server 1.6.3 (the Node + socket.io 2
# peer) and against a raw broadcaster (the machine's ceiling), same scenarios, one run; writes
# tests/bench/RESULTS.md. Non-interactive and idempotent; takes about 10 minutes.
#
# Environment: SERVER_CPU / LOADGEN_CPU (CPUs for taskset, default 0 and 1),
# BENCH_OUT (raw JSON results, default $TARGET/bench), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${BENCH_OUT:-$TARGET/bench}
PEER=$ROOT/tests/bench/peer
PEER_VERSION=1.6.3

# One server holds up to 19,000 sockets: the hard limit here is 20,000 open files per process.
ulimit -n "$(ulimit -Hn)"

echo "== build (release)"
cargo build --release -p drupal-push-server -p drupal-push-tests --bin drupal-push --bin drupal-push-bench

echo "== peer: laravel-echo-server $PEER_VERSION"
installed=$(node -p "require('$PEER/node_modules/laravel-echo-server/package.json').version" 2>/dev/null || true)
if [ "$installed" != "$PEER_VERSION" ]; then
  mkdir -p "$PEER"
  [ -f "$PEER/package.json" ] || echo '{"name":"drupal-push-bench-peer","private":true}' > "$PEER/package.json"
  npm install --prefix "$PEER" --no-audit --no-fund --loglevel=error "laravel-echo-server@$PEER_VERSION"
fi

BENCH=$TARGET/release/drupal-push-bench
SERVER=$TARGET/release/drupal-push
PIN=()
SERVER_PIN=()
if [ "$(nproc)" -ge 2 ]; then
  PIN=(taskset -c "${LOADGEN_CPU:-1}")
  SERVER_PIN=(--server-cpu "${SERVER_CPU:-0}")
fi
SCENARIOS=(--connect 10000 --hold 19000 --fanout 19000,10000,1000 --messages 100 --size 200 --windows 1,10)

mkdir -p "$OUT"
rm -f "$OUT"/ours.json "$OUT"/peer.json "$OUT"/ceiling.json
: > "$OUT/commands.txt"
for target in ours peer ceiling; do
  cmd=("${PIN[@]}" "$BENCH" suite --target "$target" --server-bin "$SERVER" --peer-dir "$PEER"
       "${SERVER_PIN[@]}" "${SCENARIOS[@]}" --out "$OUT/$target.json")
  echo "${cmd[*]}" | sed "s|$ROOT/||g" >> "$OUT/commands.txt"
  echo "== $target"
  "${cmd[@]}"
done

"$BENCH" report --dir "$OUT" --out "$ROOT/tests/bench/RESULTS.md" --commands "$OUT/commands.txt" \
  --version-line "$(rustc -V)" --version-line "node $(node --version), npm $(npm --version)"
