#!/usr/bin/env bash
# make bench: Stockroom against pgbench and redis-benchmark on this machine, in one run,
# printing each figure, each ratio, and the exact commands. Ratios measured in one run
# hold on a noisy machine; absolute numbers do not. The reference anchors (PgBouncer in
# front of PostgreSQL, redis-server) are started by this script on ports of their own,
# never the system's instances (6432, 6379) that Debian's packages may have started.
#
#   scripts/bench.sh deps   install pgbouncer and redis-server (and try linux-perf), as root
#   scripts/bench.sh        the benchmark
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE_URL="${DATABASE_URL:-postgres://stockroom:stockroom@127.0.0.1:54320/stockroom}"
# Dropped and re-created on each run; BENCH_DB for another name when a second bench
# (another checkout) runs on the same PostgreSQL at the same time.
DB="${BENCH_DB:-stockroom_bench}"
URL="${BASE_URL%/*}/$DB"
SECONDS_EACH="${BENCH_SECONDS:-5}"
ROUNDS="${BENCH_ROUNDS:-3}"
PORT="${BENCH_PORT:-7399}"
BIN="${STOCKROOM_BIN:-$ROOT/.build/release/stockroom}"
OUT="$ROOT/.build/bench"
PGBOUNCER_PORT="${BENCH_PGBOUNCER_PORT:-6499}"
REDIS_PORT="${BENCH_REDIS_PORT:-6498}"
THREADS="$(nproc)"

die() { echo "bench: $*" >&2; exit 1; }
# pgbouncer and redis-server live in /usr/sbin and /usr/bin on Debian; /usr/sbin is not
# on every user's PATH.
tool() { command -v "$1" 2>/dev/null || { [[ -x /usr/sbin/$1 ]] && echo "/usr/sbin/$1"; } || true; }
missing_tools() {
    local missing=()
    [[ -n "$(tool pgbouncer)" ]] || missing+=(pgbouncer)
    [[ -n "$(tool redis-server)" ]] || missing+=(redis-server)
    echo "${missing[*]}"
}

# Like scripts/db.sh deps: apt-get, as root only, its output in a log, one line on failure.
# perf is tried too, but a machine without it still benchmarks (no instruction counts).
cmd_deps() {
    local missing aptlog="$ROOT/.build/apt-bench.log"
    missing="$(missing_tools)"
    local want_perf=""
    # Tried once per checkout: linux-perf is often not installable (a kernel without
    # its perf package), and make bench should not run apt-get every time for it.
    command -v perf >/dev/null 2>&1 || [[ -e "$ROOT/.build/apt-bench-perf-tried" ]] || want_perf=linux-perf
    [[ -z "$missing" && -z "$want_perf" ]] && return 0
    if [[ "$(id -u)" -ne 0 ]]; then
        [[ -z "$missing" ]] && return 0
        die "missing $missing; install them with: sudo apt-get install pgbouncer redis-server (and linux-perf for instruction counts)"
    fi
    command -v apt-get >/dev/null 2>&1 || { [[ -z "$missing" ]] && return 0; die "missing $missing and there is no apt-get here; install PgBouncer and redis-server by hand"; }
    mkdir -p "$ROOT/.build"
    : >"$aptlog"
    [[ -n "$want_perf" ]] && touch "$ROOT/.build/apt-bench-perf-tried"
    # The packages' scripts try to start their services (PgBouncer on 6432, Redis on
    # 6379); that may fail without an init system and must not fail the install.
    DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$aptlog" 2>&1 ||
        { [[ -z "$missing" ]] && return 0; die "apt-get update failed: $(grep -E '^(E|W):' "$aptlog" | head -n 1 || tail -n 1 "$aptlog") (full log: $aptlog)"; }
    if [[ -n "$missing" ]]; then
        echo "bench: installing $missing (apt-get)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >>"$aptlog" 2>&1 ||
            die "apt-get could not install $missing: $(grep -E '^(E|W):' "$aptlog" | head -n 1 || tail -n 1 "$aptlog") (full log: $aptlog)"
        missing="$(missing_tools)"
        [[ -z "$missing" ]] || die "still missing after apt-get: $missing (log: $aptlog)"
    fi
    if [[ -n "$want_perf" ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends linux-perf >>"$aptlog" 2>&1 ||
            echo "bench: linux-perf could not be installed (see $aptlog); the bench runs without instruction counts"
    fi
    return 0
}
if [[ "${1:-}" == deps ]]; then cmd_deps; exit 0; fi
[[ $# -eq 0 ]] || die "usage: scripts/bench.sh [deps]"
[[ -z "$(missing_tools)" ]] || die "missing $(missing_tools); run scripts/bench.sh deps (as root) or install them with apt-get"
[[ -x "$BIN" ]] || die "no $BIN; build it with swift build -c release --product stockroom, or point STOCKROOM_BIN at one"
mkdir -p "$OUT"

exec 3>&2  # the commands are shown on the terminal even when their own stderr is not
say() { echo "bench: $*" >&3; }
run() { echo "\$ $*" >&3; "$@"; }

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# --- machine ---------------------------------------------------------------------------
PGVERSION="$(psql -X -Atc 'SHOW server_version' "$BASE_URL")"
say "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), PostgreSQL $PGVERSION, $(date -u +%Y-%m-%dT%H:%MZ)"

# --- data: a database of its own, seeded with COPY ---------------------------------------
say "seeding $DB: 100,000 products, 2,000 users (COPY), pgbench scale 1 (100,000 accounts)"
psql -X -q "$BASE_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
"$BIN" migrate up --database-url "$URL" --dir "$ROOT/migrations" >/dev/null
awk 'BEGIN { for (i = 0; i < 100000; i++) printf "BENCH-%012d\tBench product %d\tseeded for make bench\t%d\tEUR\t1000000000\n", i, i, 100 + i % 5000 }' |
    psql -X -q "$URL" -c "\\copy products (sku, name, description, price_cents, currency, stock) FROM STDIN"
# One real Argon2id hash, shared by every bench user (each hash carries its own salt and
# parameters, so reusing one string is valid): hashing 2,000 passwords would take minutes.
printf 'bench password\n' | "$BIN" admin create bench-1@example.com --name "Bench 1" --database-url "$URL" >/dev/null
psql -X -q "$URL" -c "UPDATE users SET role = 'customer' WHERE email = 'bench-1@example.com'" \
    -c "INSERT INTO users (email, name, role, password_hash) SELECT 'bench-' || n || '@example.com', 'Bench ' || n, 'customer', (SELECT password_hash FROM users WHERE email = 'bench-1@example.com') FROM generate_series(2, 2000) AS n" \
    -c "VACUUM ANALYZE products" -c "VACUUM ANALYZE users" >/dev/null
pgbench -i -s 1 -q "$URL" >/dev/null 2>&1

# --- the service ------------------------------------------------------------------------
SERVER_LOG="$OUT/server.log"
# --no-http: the operations listener's port (7380) is the same for every server on the
# machine, a `make run` or another bench; the bench does not use it.
"$BIN" serve --port "$PORT" --no-http --database-url "$URL" --pool-size 16 >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
trap 'kill $SERVER_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null' EXIT
for _ in $(seq 100); do redis-cli -p "$PORT" PING >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$PORT" PING >/dev/null 2>&1 || die "the service on port $PORT does not answer: $(tail -n 1 "$SERVER_LOG") (log: $SERVER_LOG)"

whole() { awk 'NF { printf "%.0f", $1 }'; }
# Runs a command under scripts/cpu-split.py, printing it and its output, and leaves in
# $OUT/cpu the CPU seconds that everything spent meanwhile: the command, PostgreSQL and,
# with --server, the service; with --from TEXT, from when the command prints TEXT on.
# On a shared machine CPU per operation moves less between runs than throughput does.
measured() {
    local options=()
    while [[ $1 == --* ]]; do
        case $1 in
            --server) options+=(--pid "$SERVER_PID"); shift ;;
            --from) options+=(--from-line "$2"); shift 2 ;;
            *) echo "bench: measured: unknown option $1" >&2; return 2 ;;
        esac
    done
    echo "\$ $*" >&3
    python3 "$ROOT/scripts/cpu-split.py" "${options[@]}" --record "$OUT/cpu" -- "$@" 2>/dev/null
}
# Microseconds of CPU per operation in the last `measured` run of N operations.
cpu_per() { awk -v n="$1" '{ if (n > 0) printf "%.1f", $1 * 1e6 / n; else print "n/a" }' "$OUT/cpu"; }
pgbench_count() { sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p'; }
pgbench_tps() { sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' | whole; }
redis_rps() { tr '\r' '\n' | sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -n 1 | whole; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

declare -a ROWS
declare -A SEEN  # measurement -> its values, one per round
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# p50, p99 and p99.9 in ms from pgbench's transaction log (latency in µs, third field).
percentiles() {
    awk '{ print $3 }' | sort -n | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "n/a n/a n/a"; exit }
        printf "%.2f %.2f %.2f\n", v[int(NR * 0.5) + 1] / 1000, v[int(NR * 0.99) + 1] / 1000, v[int(NR * 0.999) + 1] / 1000
    }'
}
note() { SEEN[$1]+="$2 "; }
mid() { tr ' ' '\n' | grep . | median; }
# A row from the rounds: the median reference and Stockroom figures, and the median of
# the ratios measured back to back in each round (with each round's ratio after it).
row() { ROWS+=("$1|$2|$(echo "${SEEN[$3]}" | mid)|$4|$(echo "${SEEN[$5]}" | mid)|$(round_ratios "$3" "$5")|$6"); }
# The median of the rounds' ratios of two measurements, each round's in brackets after
# it: ours over the reference's, or with "inverse" the reference's over ours.
round_ratios() {
    local refs=(${SEEN[$1]}) mine=(${SEEN[$2]}) ratios="" r=0
    for ((r = 0; r < ${#mine[@]}; r++)); do
        if [[ ${3:-} == inverse ]]; then
            ratios+="$(ratio "${refs[$r]}" "${mine[$r]}") "
        else
            ratios+="$(ratio "${mine[$r]}" "${refs[$r]}") "
        fi
    done
    local shown=$(echo "$ratios" | mid)
    [[ ${#mine[@]} -gt 1 ]] && shown+=" (${ratios% })"
    echo "$shown"
}

# Sections 1 and 2 run ROUNDS times, reference and Stockroom back to back each time:
# on a shared machine one pair of runs moves by ±15%, a median of three much less.
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
    say "round $ROUND of $ROUNDS"
    # --- 1. point reads -----------------------------------------------------------------
    for C in 8 64; do
        OUTPUT=$(measured pgbench -S -M prepared -c "$C" -j "$THREADS" -T "$SECONDS_EACH" -n "$URL" 2>/dev/null)
        PG=$(echo "$OUTPUT" | pgbench_tps)
        note "pg-S-$C" "$PG"
        note "cpu-pg-S-$C" "$(cpu_per "$(echo "$OUTPUT" | pgbench_count)")"
        N=$(awk -v t="$PG" -v s="$SECONDS_EACH" 'BEGIN { n = int(t * s); if (n < 20000) n = 20000; print n }')
        note "get-$C" "$(measured --server redis-benchmark -p "$PORT" -c "$C" -n "$N" -r 100000 -q PRODUCT.GET SKU BENCH-__rand_int__ 2>/dev/null | redis_rps)"
        note "cpu-get-$C" "$(cpu_per "$N")"
        note "get-P16-$C" "$(measured --server redis-benchmark -p "$PORT" -c "$C" -n "$((N * 4))" -r 100000 -P 16 -q PRODUCT.GET SKU BENCH-__rand_int__ 2>/dev/null | redis_rps)"
        note "cpu-get-P16-$C" "$(cpu_per "$((N * 4))")"
        # No database at all: what the protocol path alone reaches with the same client,
        # the ceiling for PRODUCT.GET without pipelining.
        note "ping-$C" "$(run redis-benchmark -p "$PORT" -c "$C" -n "$N" -q PING 2>/dev/null | redis_rps)"
    done
    # --- 2. order placement -------------------------------------------------------------
    for C in 8 64; do
        # -l logs each transaction's latency, for the same percentiles `bench orders`
        # prints: throughput alone hides where the time goes.
        rm -f "$OUT"/tpcb.*
        OUTPUT=$(measured pgbench -M prepared -c "$C" -j "$THREADS" -T "$SECONDS_EACH" -n -l --log-prefix="$OUT/tpcb" "$URL" 2>/dev/null)
        note "pg-tpcb-$C" "$(echo "$OUTPUT" | pgbench_tps)"
        note "cpu-pg-tpcb-$C" "$(cpu_per "$(echo "$OUTPUT" | pgbench_count)")"
        read -r P50 P99 P999 < <(cat "$OUT"/tpcb.* | percentiles)
        note "pg-tpcb-p50-$C" "$P50"; note "pg-tpcb-p99-$C" "$P99"; note "pg-tpcb-p999-$C" "$P999"
        LINE=$(measured --server --from "clients logged in" "$BIN" bench orders --port "$PORT" --clients "$C" --seconds "$SECONDS_EACH" --users 2000)
        echo "$LINE" >&2
        note "order-$C" "$(echo "$LINE" | sed -n 's/.*throughput=\([0-9]*\).*/\1/p')"
        note "cpu-order-$C" "$(cpu_per "$(echo "$LINE" | sed -n 's/.*count=\([0-9]*\).*/\1/p')")"
        note "order-p50-$C" "$(echo "$LINE" | sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p')"
        note "order-p99-$C" "$(echo "$LINE" | sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p')"
        note "order-p999-$C" "$(echo "$LINE" | sed -n 's/.*p999_ms=\([0-9.]*\).*/\1/p')"
    done
done
for C in 8 64; do
    row "point read C=$C" "pgbench -S -M prepared" "pg-S-$C" "PRODUCT.GET" "get-$C" "≥ 1.0"
    row "point read C=$C -P 16" "pgbench -S -M prepared" "pg-S-$C" "PRODUCT.GET -P 16" "get-P16-$C" "≥ 2.0"
    row "PING C=$C (no database)" "pgbench -S -M prepared" "pg-S-$C" "PING" "ping-$C" "—"
done
# "p50 / p99 / p99.9" of one tool at C clients, each the median of the rounds.
latencies() { for p in p50 p99 p999; do echo "${SEEN[$1-$p-$2]}" | mid; done | paste -sd/ | sed 's|/| / |g'; }
for C in 8 64; do
    row "order C=$C" "pgbench TPC-B-like" "pg-tpcb-$C" "ORDER.PLACE" "order-$C" "≥ 1.0"
    ROWS+=("order C=$C latency ms, p50 / p99 / p99.9 (medians)|pgbench TPC-B-like|$(latencies pg-tpcb "$C")|ORDER.PLACE|$(latencies order "$C")||—")
done

# --- 3. the wrapper itself --------------------------------------------------------------
cc -O2 -o "$OUT/point_query" "$ROOT/Benchmarks/c/point_query.c" -I/usr/include/postgresql -lpq -lpthread
# Five runs each, C and LibPQ taking turns, and the median of each: a single pair of
# two-second runs moved by ±15% on this shared machine.
us_per_query() { sed -n 's/.*us_per_query=\([0-9.]*\).*/\1/p'; }
for P in 1 8; do
    Q=$((P == 1 ? 20000 : 80000))
    CS=(); SS=()
    for _ in 1 2 3 4 5; do
        CL=$(run "$OUT/point_query" "$URL" "$Q" 100000 "$P")
        SL=$(run "$BIN" bench point-query --database-url "$URL" --queries "$Q" --pool "$P")
        echo "$CL" >&2; echo "$SL" >&2
        CS+=("$(echo "$CL" | us_per_query)"); SS+=("$(echo "$SL" | us_per_query)")
    done
    CU=$(printf '%s\n' "${CS[@]}" | median)
    SU=$(printf '%s\n' "${SS[@]}" | median)
    OVER=$(awk -v s="$SU" -v c="$CU" 'BEGIN { printf "%+.1f%%", (s - c) / c * 100 }')
    ROWS+=("point query, $P connection(s), µs/query (median of 5)|C on libpq|$CU|LibPQ|$SU|$OVER|≤ +10%")
    # PostgresNIO, when `make bench-nio` has built its package (Benchmarks/).
    NIO="$ROOT/Benchmarks/.build/release/PostgresNIOPointQuery"
    if [[ -x "$NIO" ]]; then
        NL=$(run "$NIO" 127.0.0.1 "$(psql -X -Atc 'SHOW port' "$URL")" stockroom stockroom "$DB" "$Q" 100000 "$P")
        echo "$NL" >&2
        NU=$(echo "$NL" | sed -n 's/.*us_per_query=\([0-9.]*\).*/\1/p')
        ROWS+=("point query, $P connection(s), µs/query|PostgresNIO|$NU|LibPQ|$SU|$(ratio "$NU" "$SU")× faster|≥ 1.0×")
    fi
done

# --- 4. connections ---------------------------------------------------------------------
RSS_BEFORE=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
python3 - "$PORT" 2000 <<'PY' &
import socket, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
sockets = []
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    sockets.append(s)
time.sleep(6)
PY
HOLDER=$!
sleep 4
RSS_IDLE=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
wait $HOLDER
ROWS+=("RSS with 2,000 idle connections (MB)|before|$((RSS_BEFORE / 1024))|with 2,000|$((RSS_IDLE / 1024))||< 150 MB")
T64=$(run redis-benchmark -p "$PORT" -c 64 -n 100000 -r 100000 -q PRODUCT.GET SKU BENCH-__rand_int__ 2>/dev/null | redis_rps)
T1000=$(run redis-benchmark -p "$PORT" -c 1000 -n 100000 -r 100000 -q PRODUCT.GET SKU BENCH-__rand_int__ 2>/dev/null | redis_rps)
ROWS+=("PRODUCT.GET at 1,000 vs 64 connections|64 connections|$T64|1,000 connections|$T1000|$(ratio "$T1000" "$T64")|≥ 0.8")

# CPU per operation of the same runs: reference over Stockroom, so that above 1.0
# Stockroom spends less; the median of the rounds' ratios, each round's in brackets.
declare -a CPU_ROWS
cpu_row() { CPU_ROWS+=("$1|$2|$(echo "${SEEN[$3]}" | mid)|$4|$(echo "${SEEN[$5]}" | mid)|$(round_ratios "$3" "$5" inverse)"); }
for C in 8 64; do
    cpu_row "point read C=$C" "pgbench -S -M prepared" "cpu-pg-S-$C" "PRODUCT.GET" "cpu-get-$C"
    cpu_row "point read C=$C -P 16" "pgbench -S -M prepared" "cpu-pg-S-$C" "PRODUCT.GET -P 16" "cpu-get-P16-$C"
done
for C in 8 64; do cpu_row "order C=$C" "pgbench TPC-B-like" "cpu-pg-tpcb-$C" "ORDER.PLACE" "cpu-order-$C"; done

# --- the tables -------------------------------------------------------------------------
echo
echo "| measurement | reference | reference/s | Stockroom | Stockroom/s | ratio | target |"
echo "|---|---|---|---|---|---|---|"
for row in "${ROWS[@]}"; do echo "| ${row//|/ | } |"; done
echo
echo "CPU per operation, µs: the load generator, PostgreSQL and (for Stockroom) the service, from scripts/cpu-split.py over the same runs."
echo
echo "| measurement | reference | reference µs/op | Stockroom | Stockroom µs/op | reference/Stockroom |"
echo "|---|---|---|---|---|---|"
for row in "${CPU_ROWS[@]}"; do echo "| ${row//|/ | } |"; done
