#!/usr/bin/env bash
# Where the CPU goes during one redis-benchmark run against the service: CPU time per
# request of the server, of the PostgreSQL backends and of redis-benchmark, and the idle
# share of the machine, from /proc. Uses the database and release build `make bench`
# leaves behind.
#
#   scripts/bench-cpu.sh [CLIENTS] [PIPELINE] [COMMAND...]
#   scripts/bench-cpu.sh 8 1                   # PRODUCT.GET, 8 clients, no pipelining
#   scripts/bench-cpu.sh 8 1 PING              # the protocol path alone
#   REQUESTS=320000 scripts/bench-cpu.sh 8 16  # with -P 16
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE_URL="${DATABASE_URL:-postgres://stockroom:stockroom@127.0.0.1:54320/stockroom}"
URL="${BASE_URL%/*}/stockroom_bench"
BIN="${BIN:-$ROOT/.build/release/stockroom}"
PORT="${BENCH_PORT:-7398}"
CLIENTS="${1:-8}"
PIPELINE="${2:-1}"
shift $(($# > 2 ? 2 : $#))
COMMAND=("$@")
[[ ${#COMMAND[@]} -gt 0 ]] || COMMAND=(PRODUCT.GET SKU BENCH-__rand_int__)
REQUESTS="${REQUESTS:-$((CLIENTS * 5000))}"

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
"$BIN" serve --port "$PORT" --database-url "$URL" --pool-size 16 >/dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do redis-cli -p "$PORT" PING >/dev/null 2>&1 && break; sleep 0.1; done
kill -0 "$SERVER" 2>/dev/null || { echo "bench-cpu: the server did not start (port $PORT taken?)" >&2; exit 1; }

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
backend_ticks() {
    local total=0 pid
    for pid in $(pgrep -f "postgres: .* stockroom_bench" || true); do total=$((total + $(ticks "$pid"))); done
    echo "$total"
}
machine() { awk '/^cpu / { print $2 + $3 + $4 + $5 + $6 + $7 + $8, $5 }' /proc/stat; }

# Warm up: the pool's connections, prepared statements, the backends' caches.
redis-benchmark -p "$PORT" -c "$CLIENTS" -n 2000 -r 100000 -q "${COMMAND[@]}" >/dev/null 2>&1

server0=$(ticks "$SERVER"); backends0=$(backend_ticks); read -r total0 idle0 < <(machine)
redis-benchmark -p "$PORT" -c "$CLIENTS" -n "$REQUESTS" -r 100000 -P "$PIPELINE" -q "${COMMAND[@]}" >"$ROOT/.build/bench-cpu.out" 2>/dev/null &
LOAD=$!
client=0
while kill -0 "$LOAD" 2>/dev/null; do client=$(ticks "$LOAD"); sleep 0.05; done
wait "$LOAD" || true
server1=$(ticks "$SERVER"); backends1=$(backend_ticks); read -r total1 idle1 < <(machine)

HZ=$(getconf CLK_TCK)
tr '\r' '\n' <"$ROOT/.build/bench-cpu.out" | grep "requests per second" | tail -n 1
awk -v n="$REQUESTS" -v hz="$HZ" -v s=$((server1 - server0)) -v b=$((backends1 - backends0)) -v c="$client" \
    -v t=$((total1 - total0)) -v i=$((idle1 - idle0)) 'BEGIN {
        us = 1e6 / hz / n
        printf "CPU per request: server %.1f us, backends %.1f us, redis-benchmark %.1f us; machine idle %.0f%%\n", s * us, b * us, c * us, 100 * i / t
    }'
redis-cli -p "$PORT" INFO 2>/dev/null | tr -d '\r' | grep -E '^product_lookup' || true
