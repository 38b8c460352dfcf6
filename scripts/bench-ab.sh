#!/usr/bin/env bash
# Two or more builds (or settings) of the service side by side, in alternating rounds,
# with the CPU each process spent per operation: how every change in docs/BENCHMARKS.md
# was kept or dropped. Runs against the database `make bench` seeds (stockroom_bench).
#
#   scripts/bench-ab.sh WORKLOAD NAME=COMMAND NAME=COMMAND...
#
#   WORKLOAD  get (PRODUCT.GET, redis-benchmark), ping, or orders (stockroom bench orders)
#   COMMAND   how to start that variant's stockroom; "serve …" is appended. For example
#             main=.build/release/stockroom  exp="env SR_FLAG=1 /tmp/stockroom-exp"
#             gate3=".build/release/stockroom" gate4=".build/release/stockroom --order-concurrency 4"
#             (options after the binary go after `serve`)
#
#   CLIENTS=8 PIPELINE=1 ROUNDS=3 SECONDS_EACH=5 REQUESTS=100000   (the defaults)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE_URL="${DATABASE_URL:-postgres://stockroom:stockroom@127.0.0.1:54320/stockroom}"
URL="${BASE_URL%/*}/${BENCH_DB:-stockroom_bench}"
CLIENTS="${CLIENTS:-8}" PIPELINE="${PIPELINE:-1}" ROUNDS="${ROUNDS:-3}"
SECONDS_EACH="${SECONDS_EACH:-5}" REQUESTS="${REQUESTS:-100000}"
FIRST_PORT="${FIRST_PORT:-7310}"
CLIENT_BIN="${STOCKROOM_BIN:-$ROOT/.build/release/stockroom}"

die() { echo "bench-ab: $*" >&2; exit 1; }
[[ $# -ge 3 ]] || die "usage: scripts/bench-ab.sh get|ping|orders NAME=COMMAND NAME=COMMAND..."
WORKLOAD="$1"; shift
[[ $WORKLOAD =~ ^(get|ping|orders)$ ]] || die "the workload is get, ping or orders, not $WORKLOAD"
psql -X -Atc "SELECT 1 FROM products LIMIT 1" "$URL" >/dev/null 2>&1 || die "no seeded database at $URL: run make bench once (it seeds it)"
[[ $WORKLOAD != orders || -x $CLIENT_BIN ]] || die "$CLIENT_BIN runs the orders' clients: build it (swift build -c release)"

NAMES=() PIDS=()
stop_all() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop_all EXIT
# Every variant serves from the start, on a port of its own, without the HTTP listener
# (each would take 127.0.0.1:7380 otherwise); an idle one costs nothing measurable.
port=$FIRST_PORT
for variant in "$@"; do
    [[ $variant == *=* ]] || die "a variant is NAME=COMMAND, not $variant"
    NAMES+=("${variant%%=*}")
    read -r -a command <<<"${variant#*=}"
    # The binary (after any `env VAR=…` words), then serve, then the variant's options.
    binary_at=0
    while [[ ${command[$binary_at]} == env || ${command[$binary_at]} == *=* ]]; do binary_at=$((binary_at + 1)); done
    "${command[@]:0:binary_at+1}" serve --port "$port" --no-http --database-url "$URL" --pool-size 16 \
        "${command[@]:binary_at+1}" >"$ROOT/.build/bench-ab-${NAMES[-1]}.log" 2>&1 &
    PIDS+=($!)
    port=$((port + 1))
done
for ((i = 0; i < ${#PIDS[@]}; i++)); do
    for _ in $(seq 100); do redis-cli -p $((FIRST_PORT + i)) PING 2>/dev/null | grep -q PONG && break; sleep 0.1; done
    redis-cli -p $((FIRST_PORT + i)) PING 2>/dev/null | grep -q PONG || die "${NAMES[$i]} did not start: see .build/bench-ab-${NAMES[$i]}.log"
done

echo "$WORKLOAD, $CLIENTS clients, pipeline $PIPELINE, $ROUNDS rounds; CPU in µs per operation"
for ((round = 1; round <= ROUNDS; round++)); do
    for ((i = 0; i < ${#PIDS[@]}; i++)); do
        port=$((FIRST_PORT + i))
        case $WORKLOAD in
            get|ping)
                request=(PING); [[ $WORKLOAD == get ]] && request=(-r 100000 PRODUCT.GET SKU BENCH-__rand_int__)
                output=$(python3 "$ROOT/scripts/cpu-split.py" --pid "${PIDS[$i]}" --per "$REQUESTS" -- \
                    redis-benchmark -p "$port" -c "$CLIENTS" -P "$PIPELINE" -n "$REQUESTS" -q "${request[@]}" 2>&1 | tr '\r' '\n')
                rate=$(sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' <<<"$output" | tail -n 1)
                per=(); while read -r value; do per+=("$value"); done < <(sed -n 's/.*, \([0-9.]*\) us per operation.*/\1/p' <<<"$output")
                printf '%-12s round %d: %8.0f/s   client %5s  postgres %5s  service %5s\n' "${NAMES[$i]}" "$round" "$rate" "${per[0]:-?}" "${per[1]:-?}" "${per[2]:-?}"
                ;;
            orders)
                output=$(python3 "$ROOT/scripts/cpu-split.py" --pid "${PIDS[$i]}" --from-line "clients logged in" -- \
                    "$CLIENT_BIN" bench orders --port "$port" --clients "$CLIENTS" --seconds "$SECONDS_EACH" --users 2000 2>&1)
                line=$(grep '^ORDER.PLACE' <<<"$output")
                count=$(sed -n 's/.*count=\([0-9]*\).*/\1/p' <<<"$line")
                cpu() { awk -v s="$(sed -n "s/^$1[^:]*: \([0-9.]*\) s.*/\1/p" <<<"$output" | head -n 1)" -v n="$count" 'BEGIN { if (n > 0) printf "%.0f", s / n * 1e6; else print "?" }'; }
                printf '%-12s round %d: %s/s p50 %s p99 %s p99.9 %s ms   client %s  postgres %s  service %s\n' "${NAMES[$i]}" "$round" \
                    "$(sed -n 's/.*throughput=\([0-9]*\).*/\1/p' <<<"$line")" "$(sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p' <<<"$line")" \
                    "$(sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p' <<<"$line")" "$(sed -n 's/.*p999_ms=\([0-9.]*\).*/\1/p' <<<"$line")" \
                    "$(cpu command)" "$(cpu postgres)" "$(cpu server)"
                ;;
        esac
    done
done
