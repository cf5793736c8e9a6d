#!/usr/bin/env bash
# Full benchmark suite, one run, writes tests/bench/RESULTS.md:
#   1. the same scenarios (hold 19k, connect 10k cold + cached, fan-out 19k/10k/1k with 1 and 10
#      messages in flight, and one more sequential 19k round while a REST call is timed) against
#      drupal-push, laravel-echo-server 1.6.3 (the Node + socket.io 2 peer), Sockudo 5.2.0 (a
#      Rust server of the Pusher protocol) with its default settings and with the buffer
#      settings of its documentation, and a raw broadcaster (the machine's ceiling);
#   2. sequential fan-out at 10k and 19k subscribers, drupal-push and the ceiling alternating,
#      3 runs each (median ratio with its spread);
#   3. fan-out at 10k subscribers with channel history on and off (`historySize = 0`), 3 runs
#      each, alternating; skipped with a note while the server does not know `historySize`;
#   4. `cluster` (issue 9): 4 drupal-push nodes x 19,000 connections = 76,000 on one Redis that
#      the run starts (redis-server, installed with apt-get when missing) against one node on the
#      memory engine with 19,000: memory per connection (nodes and Redis), fan-out to every
#      connection with 1 and 10 messages in flight, publish latency with 1 and 10 in flight.
# Parts: `run.sh [servers] [interleave] [cluster]` runs only those (default: all; parts 1 and
# 2-3 are `servers` and `interleave`). `run.sh cluster` alone replaces just the cluster section
# of RESULTS.md (a few minutes); a run without the cluster part keeps the section it finds.
# Non-interactive and idempotent; about 30 minutes. The first run also installs what is
# missing: laravel-echo-server (npm, ~15 s) into tests/bench/peer/, and Sockudo (`cargo install`
# from crates.io with its default features, --locked, about 20 minutes of compiling on a quiet
# 2-core machine; it needs Debian's protobuf-compiler, installed with apt-get) into
# tests/bench/sockudo/. Both folders are ignored by git and reused by later runs.
#
# Environment: SERVER_CPU / LOADGEN_CPU (CPUs for taskset, default 0 and 1),
# BENCH_OUT (raw JSON results, default $TARGET/bench), CARGO_TARGET_DIR,
# BENCH_TARGETS (default "ours peer sockudo sockudo-tuned ceiling"), SOCKUDO_ROOT (where Sockudo
# is installed or goes, default tests/bench/sockudo; another checkout's copy saves the build),
# BENCH_INTERLEAVE=0 (skip parts 2 and 3), BENCH_SMALL=1 (1,000 clients, 20 messages, one
# interleaved run, 2 nodes x 1,000 on Redis: checks the set-up in a few minutes; its RESULTS.md
# is not for publishing), REDIS_SERVER (the redis-server binary, default redis-server),
# CLUSTER_NODES / CLUSTER_PER_NODE / CLUSTER_BASELINE (default 4, 19000, 19000).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${BENCH_OUT:-$TARGET/bench}
PEER=tests/bench/peer
PEER_VERSION=1.6.3
SOCKUDO_ROOT=${SOCKUDO_ROOT:-tests/bench/sockudo}
SOCKUDO=$SOCKUDO_ROOT/bin/sockudo
SOCKUDO_VERSION=5.2.0
TARGETS=(${BENCH_TARGETS:-ours peer sockudo sockudo-tuned ceiling})
PARTS=("$@")
[ ${#PARTS[@]} -gt 0 ] || PARTS=(servers interleave cluster)
for part in "${PARTS[@]}"; do
  case $part in servers|interleave|cluster) ;; *) echo "unknown part: $part (servers, interleave, cluster)" >&2; exit 2;; esac
done
part() { [[ " ${PARTS[*]} " == *" $1 "* ]]; }
ONLY_CLUSTER=0
[ "${PARTS[*]}" = cluster ] && ONLY_CLUSTER=1
part servers || TARGETS=()
REDIS_SERVER=${REDIS_SERVER:-redis-server}

# One server holds up to 19,000 sockets: the hard limit here is 20,000 open files per process.
ulimit -n "$(ulimit -Hn)"

echo "== build (release)"
cargo build --release -p drupal-push-server -p drupal-push-bench --bin drupal-push --bin drupal-push-bench

needs() { [[ " ${TARGETS[*]} " == *" $1 "* ]]; }

if part cluster && ! command -v "$REDIS_SERVER" >/dev/null; then
  echo "== installing redis-server (the cluster part starts its own)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends redis-server \
    || { apt-get -o DPkg::Lock::Timeout=600 update -q \
         && apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends redis-server; }
fi

if needs peer; then
  echo "== peer: laravel-echo-server $PEER_VERSION"
  installed=$(node -p "require('./$PEER/node_modules/laravel-echo-server/package.json').version" 2>/dev/null || true)
  if [ "$installed" != "$PEER_VERSION" ]; then
    mkdir -p "$PEER"
    [ -f "$PEER/package.json" ] || echo '{"name":"drupal-push-bench-peer","private":true}' > "$PEER/package.json"
    npm install --prefix "$PEER" --no-audit --no-fund --loglevel=error "laravel-echo-server@$PEER_VERSION"
  fi
fi

if needs sockudo || needs sockudo-tuned; then
  echo "== Sockudo $SOCKUDO_VERSION"
  if ! "$SOCKUDO" --version 2>/dev/null | grep -qF "$SOCKUDO_VERSION"; then
    if ! command -v protoc >/dev/null; then
      echo "   installing protobuf-compiler (Sockudo's build needs protoc)"
      export DEBIAN_FRONTEND=noninteractive
      apt-get -o DPkg::Lock::Timeout=600 install -y -q protobuf-compiler \
        || { apt-get -o DPkg::Lock::Timeout=600 update -q \
             && apt-get -o DPkg::Lock::Timeout=600 install -y -q protobuf-compiler; }
    fi
    echo "   cargo install sockudo $SOCKUDO_VERSION (default features, its own Cargo.lock): about 20 minutes, once"
    nice cargo install sockudo --version "$SOCKUDO_VERSION" --locked --root "$SOCKUDO_ROOT"
  fi
  "$SOCKUDO" --version
fi

BENCH=$TARGET/release/drupal-push-bench
SERVER=$TARGET/release/drupal-push
PIN=()
SERVER_PIN=()
if [ "$(nproc)" -ge 2 ]; then
  PIN=(taskset -c "${LOADGEN_CPU:-1}")
  SERVER_PIN=(--server-cpu "${SERVER_CPU:-0}")
fi
COMMON=(--server-bin "$SERVER" --peer-dir "$PEER" --sockudo-bin "$SOCKUDO" --work-dir "$OUT/work" "${SERVER_PIN[@]}")
SCENARIOS=(--connect 10000 --hold 19000 --fanout 19000,10000,1000 --messages 100 --size 200 --windows 1,10
           --probe-sizes 19000)
SIZES=10000,19000 HISTORY_SIZES=10000 RUNS=3 MESSAGES=100
CLUSTER=(--nodes "${CLUSTER_NODES:-4}" --per-node "${CLUSTER_PER_NODE:-19000}"
         --memory-baseline "${CLUSTER_BASELINE:-19000}" --messages 100 --size 200 --windows 1,10
         --publishes 1000 --in-flight 1,10)
if [ "${BENCH_SMALL:-0}" = 1 ]; then
  SCENARIOS=(--connect 1000 --hold 1000 --fanout 1000 --messages 20 --size 200 --windows 1,10 --probe-sizes 1000)
  SIZES=1000 HISTORY_SIZES=1000 RUNS=1 MESSAGES=20
  CLUSTER=(--nodes 2 --per-node 1000 --memory-baseline 1000 --messages 20 --size 200 --windows 1,10
           --publishes 200 --in-flight 1,10)
fi

mkdir -p "$OUT"
if [ $ONLY_CLUSTER = 1 ]; then
  rm -rf "$OUT/cluster.json" "$OUT/work"
else
  rm -rf "$OUT"/*.json "$OUT/work"
fi
: > "$OUT/commands.txt"
# Records a command as a reader would type it (repository-relative paths, quoted arguments).
record() {
  local out=() a
  for a in "$@"; do
    a=${a#"$ROOT/"}
    [[ "$a" =~ [[:space:]\'\"] ]] && a="'${a//\'/\'\\\'\'}'"
    out+=("$a")
  done
  echo "${out[*]}" >> "$OUT/commands.txt"
}

for target in "${TARGETS[@]}"; do
  cmd=("${PIN[@]}" "$BENCH" suite --target "$target" "${COMMON[@]}" "${SCENARIOS[@]}" --out "$OUT/$target.json")
  record "${cmd[@]}"
  echo "== $target"
  "${cmd[@]}"
done

# An interleaved comparison that fails (lost messages, a variant that cannot start) is reported,
# not fatal: its JSON, when written, carries the errors into RESULTS.md.
interleave() {
  local name=$1
  shift
  cmd=("${PIN[@]}" "$BENCH" interleave "${COMMON[@]}" "$@" --out "$OUT/interleave-$name.json")
  echo "== interleaved: $name"
  "${cmd[@]}" || echo "   interleave $name failed (see above)"
  if [ -f "$OUT/interleave-$name.json" ]; then record "${cmd[@]}"; fi
}
if part interleave && [ "${BENCH_INTERLEAVE:-1}" != 0 ]; then
  interleave ceiling --a ours --b ceiling --a-label drupal-push --b-label ceiling \
    --sizes "$SIZES" --runs "$RUNS" --messages "$MESSAGES" --window 1
  # Until the server knows historySize it refuses the config: no JSON, no table.
  interleave history --a ours --b ours --b-toml 'historySize = 0' \
    --a-label 'history on (default)' --b-label 'history off' --sizes "$HISTORY_SIZES" --runs "$RUNS" --messages "$MESSAGES" --window 1
fi

if part cluster; then
  cmd=("${PIN[@]}" "$BENCH" cluster "${COMMON[@]}" --redis-bin "$REDIS_SERVER" "${CLUSTER[@]}" --out "$OUT/cluster.json")
  echo "== cluster"
  "${cmd[@]}"
  record "${cmd[@]}"
fi

if [ $ONLY_CLUSTER = 1 ]; then
  "$BENCH" report --dir "$OUT" --out "$ROOT/tests/bench/RESULTS.md" --only-cluster
else
  "$BENCH" report --dir "$OUT" --out "$ROOT/tests/bench/RESULTS.md" --commands "$OUT/commands.txt" \
    --version-line "$(rustc -V)" --version-line "node $(node --version), npm $(npm --version)"
fi
