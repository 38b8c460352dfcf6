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
# Nothing else may work on the bench database meanwhile: a service left running from an
# earlier comparison reconnects to the new database within seconds, and its event
# sequencer halved ORDER.PLACE in one run (2026-12-05T06:44Z) without a word.
OTHERS=$(psql -X -Atc "SELECT string_agg(DISTINCT coalesce(nullif(application_name, ''), 'unnamed') || ' (pid ' || pid || ')', ', ')
    FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()" "$URL")
[[ -z "$OTHERS" ]] || die "other clients are connected to $DB: $OTHERS; their work would be measured too (stop them, or set BENCH_DB to another name)"

# --- the service and the reference servers --------------------------------------------
# Everything started here is stopped on exit, however the script ends, and waited for:
# the next run finds its ports free.
SERVER_PID="" REDIS_PID="" PGBOUNCER_PID="" COUNT_PID=""
PGBOUNCER_DIR="$OUT/pgbouncer"
stop_all() {
    # PgBouncer daemonizes itself: its pid is in its pid file, if it got that far.
    [[ -z "$PGBOUNCER_PID" && -f "$PGBOUNCER_DIR/pgbouncer.pid" ]] && PGBOUNCER_PID="$(cat "$PGBOUNCER_DIR/pgbouncer.pid" 2>/dev/null || true)"
    local pid
    for pid in $SERVER_PID $REDIS_PID $COUNT_PID $PGBOUNCER_PID; do kill "$pid" 2>/dev/null || true; done
    for pid in $SERVER_PID $REDIS_PID $COUNT_PID; do wait "$pid" 2>/dev/null || true; done
    # Not our child, so `wait` cannot: poll until it is gone (it stops at once on SIGTERM).
    if [[ -n "$PGBOUNCER_PID" ]]; then
        for _ in $(seq 50); do kill -0 "$PGBOUNCER_PID" 2>/dev/null || break; sleep 0.1; done
    fi
}
trap stop_all EXIT
port_taken() { (exec 9<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for P in "$PORT" "$PGBOUNCER_PORT" "$REDIS_PORT"; do
    port_taken "$P" && die "port $P on 127.0.0.1 is taken; free it or choose others with BENCH_PORT, BENCH_PGBOUNCER_PORT, BENCH_REDIS_PORT"
done

SERVER_LOG="$OUT/server.log"
# --no-http: the operations listener's port (7380) is the same for every server on the
# machine, a `make run` or another bench; the bench does not use it.
"$BIN" serve --port "$PORT" --no-http --database-url "$URL" --pool-size 16 >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do redis-cli -p "$PORT" PING >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$PORT" PING >/dev/null 2>&1 || die "the service on port $PORT does not answer: $(tail -n 1 "$SERVER_LOG") (log: $SERVER_LOG)"

# PgBouncer in session mode in front of the same database: the usual way to put many
# clients on few PostgreSQL connections, which is what the service does too. Clients are
# let in without a password (auth_type = any); PgBouncer logs in to PostgreSQL with the
# bench URL's user and password. The pool holds every client of the C=64 runs at once.
[[ "$URL" =~ ^postgres(ql)?://([^:@/]+)(:([^@/]*))?@([^:/]+)(:([0-9]+))?/([^?]+) ]] ||
    die "cannot read user, password, host, port and database from $URL"
PG_USER="${BASH_REMATCH[2]}" PG_PASSWORD="${BASH_REMATCH[4]}" PG_HOST="${BASH_REMATCH[5]}" PG_PORT="${BASH_REMATCH[7]:-5432}"
PGBOUNCER_URL="postgres://$PG_USER@127.0.0.1:$PGBOUNCER_PORT/$DB"
# PgBouncer refuses to run as root: as root it runs as `postgres`, in a folder that user
# owns. When `postgres` cannot reach the checkout (say, under /root), the folder lives in
# /var/lib/postgresql and .build/bench/pgbouncer links to it, as scripts/db.sh does for .pg.
AS_PGBOUNCER=()
[[ "$(id -u)" -eq 0 ]] && AS_PGBOUNCER=(runuser -u postgres --)
[[ -L "$PGBOUNCER_DIR" && ! -e "$PGBOUNCER_DIR" ]] && rm -f "$PGBOUNCER_DIR"
if [[ "$(id -u)" -eq 0 && ! -e "$PGBOUNCER_DIR" ]]; then
    id postgres >/dev/null 2>&1 || die "no 'postgres' OS user to run PgBouncer as root; install the postgresql package"
    if runuser -u postgres -- test -x "$OUT" 2>/dev/null; then
        mkdir -p "$PGBOUNCER_DIR"
    else
        TARGET="/var/lib/postgresql/stockroom-bench-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
        mkdir -p "$TARGET"
        ln -s "$TARGET" "$PGBOUNCER_DIR"
    fi
fi
mkdir -p "$PGBOUNCER_DIR"
PGBOUNCER_REAL="$(readlink -f "$PGBOUNCER_DIR")"
rm -f "$PGBOUNCER_REAL/pgbouncer.pid"  # a stale one from a killed run: its port was free above
cat >"$PGBOUNCER_REAL/pgbouncer.ini" <<INI
; written by scripts/bench.sh on each run
[databases]
$DB = host=$PG_HOST port=$PG_PORT dbname=$DB user=$PG_USER password=$PG_PASSWORD

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGBOUNCER_PORT
unix_socket_dir =
auth_type = any
pool_mode = session
default_pool_size = 80
max_client_conn = 200
logfile = $PGBOUNCER_REAL/pgbouncer.log
pidfile = $PGBOUNCER_REAL/pgbouncer.pid
INI
# The ini holds the database password: for PgBouncer's user only.
chmod 600 "$PGBOUNCER_REAL/pgbouncer.ini"
[[ "$(id -u)" -eq 0 ]] && chown -R postgres: "$PGBOUNCER_REAL"
# From /, since `postgres` may not be allowed into the current folder.
(cd / && run "${AS_PGBOUNCER[@]}" "$(tool pgbouncer)" -d "$PGBOUNCER_REAL/pgbouncer.ini" >&2) ||
    die "PgBouncer did not start: $(tail -n 1 "$PGBOUNCER_REAL/pgbouncer.log" 2>/dev/null) (log: $PGBOUNCER_REAL/pgbouncer.log)"
for _ in $(seq 100); do [[ -s "$PGBOUNCER_REAL/pgbouncer.pid" ]] && port_taken "$PGBOUNCER_PORT" && break; sleep 0.1; done
PGBOUNCER_PID="$(cat "$PGBOUNCER_REAL/pgbouncer.pid" 2>/dev/null || true)"
[[ -n "$PGBOUNCER_PID" ]] && psql -X -Atc 'SELECT 1' "$PGBOUNCER_URL" >/dev/null 2>&1 ||
    die "PgBouncer on port $PGBOUNCER_PORT does not answer (log: $PGBOUNCER_REAL/pgbouncer.log)"

# redis-server with nothing written to disk, in the foreground of a background job: its
# pid is ours to count and to stop. Printed here rather than through `run`: a function in
# the background is a subshell, and $! would be that subshell's pid, not redis-server's.
mkdir -p "$OUT/redis"
echo "\$ $(tool redis-server) --bind 127.0.0.1 --port $REDIS_PORT --save '' --appendonly no --daemonize no --dir $OUT/redis --logfile $OUT/redis/redis.log &" >&3
"$(tool redis-server)" --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --daemonize no \
    --dir "$OUT/redis" --logfile "$OUT/redis/redis.log" &
REDIS_PID=$!
for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" PING >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$REDIS_PORT" PING >/dev/null 2>&1 || die "redis-server on port $REDIS_PORT does not answer (log: $OUT/redis/redis.log)"
# The same 100,000 keys as the products, each holding the service's own reply for the
# first product with its SKU swapped in: a GET then moves as many bytes as a PRODUCT.GET.
SAMPLE="$(redis-cli -p "$PORT" --raw PRODUCT.GET SKU BENCH-000000000000 2>&1 || true)"
[[ ${#SAMPLE} -gt 100 && "$SAMPLE" != *$'\n'* ]] || die "PRODUCT.GET SKU BENCH-000000000000 gave no one-line product to size the redis values on: ${SAMPLE:-nothing}"
say "seeding redis-server: 100,000 keys BENCH-%012d of ${#SAMPLE} bytes (redis-cli --pipe)"
# Through the environment, not awk -v (which would undo the JSON's backslashes), and in
# the C locale, so that length() counts the bytes RESP wants.
SAMPLE="$SAMPLE" LC_ALL=C awk 'BEGIN {
    for (i = 0; i < 100000; i++) {
        key = sprintf("BENCH-%012d", i); value = ENVIRON["SAMPLE"]; gsub(/BENCH-000000000000/, key, value)
        printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(key), key, length(value), value
    }
}' | run redis-cli -p "$REDIS_PORT" --pipe >/dev/null
[[ "$(redis-cli -p "$REDIS_PORT" DBSIZE)" == 100000 ]] || die "redis-server holds $(redis-cli -p "$REDIS_PORT" DBSIZE) keys, not 100,000"

# Instructions per operation, when this machine's perf can count them system-wide (many
# VMs expose no hardware counters: perf then says <not supported>).
PERF="" PERF_WHY=""
if ! command -v perf >/dev/null 2>&1; then
    PERF_WHY="perf is not installed (scripts/bench.sh deps tries linux-perf)"
elif perf stat -e instructions true 2>&1 | grep -q '<not supported>'; then
    PERF_WHY="perf stat -e instructions says <not supported> here (no hardware counters, as in many VMs)"
elif ! perf stat -a -e instructions true >/dev/null 2>&1; then
    PERF_WHY="perf stat -a fails here (kernel.perf_event_paranoid = $(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo '?'); run as root)"
else
    PERF=perf
fi
if [[ -n "$PERF" ]]; then say "instructions per operation: perf stat -a -e instructions over each measured run"; else say "no instructions per operation: $PERF_WHY"; fi

whole() { awk 'NF { printf "%.0f", $1 }'; }
# Runs a command under scripts/cpu-split.py, printing it and its output, and leaves in
# $OUT/cpu the CPU seconds that everything spent meanwhile: the command, PostgreSQL and,
# with --server, the service, with --pid PID that process (PgBouncer, redis-server); with
# --from TEXT, from when the command prints TEXT on. With perf, $OUT/perf also holds
# perf stat's count of all instructions on the machine over the same time.
# On a shared machine CPU per operation moves less between runs than throughput does.
measured() {
    local options=()
    while [[ $1 == --* ]]; do
        case $1 in
            --server) options+=(--pid "$SERVER_PID"); shift ;;
            --pid) options+=(--pid "$2"); shift 2 ;;
            --from) options+=(--from-line "$2"); shift 2 ;;
            *) echo "bench: measured: unknown option $1" >&2; return 2 ;;
        esac
    done
    if [[ -n "$PERF" ]]; then
        rm -f "$OUT/perf"
        options+=(--perf "$OUT/perf")
        echo "\$ $*    # beside it: perf stat -a -x, -e instructions -o $OUT/perf" >&3
    else
        echo "\$ $*" >&3
    fi
    python3 "$ROOT/scripts/cpu-split.py" "${options[@]}" --record "$OUT/cpu" -- "$@" 2>/dev/null
}
# Microseconds of CPU per operation in the last `measured` run of N operations.
cpu_per() { awk -v n="$1" '{ if (n > 0) printf "%.1f", $1 * 1e6 / n; else print "n/a" }' "$OUT/cpu"; }
# The same for the measured command alone (its own process and threads).
command_cpu_per() { awk -v n="$1" '{ if (n > 0) printf "%.2f", $2 * 1e6 / n; else print "n/a" }' "$OUT/cpu"; }
# The instruction count in perf stat -x, output: CSV lines "count,unit,event,..." after
# "#" comments, "<not counted>" for a count it could not make, and on hybrid CPUs one
# line per kind of core (cpu_core/instructions/, cpu_atom/instructions/), added up.
perf_instructions() { awk -F, '!/^#/ && $3 ~ /instructions/ && $1 ~ /^[0-9]+$/ { s += $1; n++ } END { if (n) printf "%.0f\n", s }'; }
# Instructions per operation in the last `measured` run of N operations.
ins_per() { perf_instructions <"$OUT/perf" | awk -v n="$1" '{ c = $1 } END { if (c != "" && n > 0) printf "%.0f", c / n; else print "n/a" }'; }
# Both costs of the last `measured` run of N operations, noted under cpu-KEY and ins-KEY.
cost() { note "cpu-$1" "$(cpu_per "$2")"; [[ -z "$PERF" ]] || note "ins-$1" "$(ins_per "$2")"; }
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
# it: ours over the reference's, with "inverse" the reference's over ours, with "percent"
# how much more ours is than the reference's, in per cent (+4.0%).
round_ratios() {
    local refs=(${SEEN[$1]}) mine=(${SEEN[$2]}) ratios="" r=0
    for ((r = 0; r < ${#mine[@]}; r++)); do
        case ${3:-} in
            inverse) ratios+="$(ratio "${refs[$r]}" "${mine[$r]}") " ;;
            # Unsigned for the median's sort -n, which does not read a leading "+".
            percent) ratios+="$(awk -v a="${mine[$r]}" -v b="${refs[$r]}" 'BEGIN { if (b > 0) printf "%.1f", (a - b) / b * 100; else print "n/a" }') " ;;
            *) ratios+="$(ratio "${mine[$r]}" "${refs[$r]}") " ;;
        esac
    done
    local shown=$(echo "$ratios" | mid)
    [[ ${#mine[@]} -gt 1 ]] && shown+=" (${ratios% })"
    [[ ${3:-} == percent ]] && shown=$(echo "$shown" | sed -E 's/(^|[ (])([0-9])/\1+\2/g; s/([0-9])([ )]|$)/\1%\2/g')
    echo "$shown"
}

"$ROOT/scripts/order-statement.sh" >"$OUT/order-statement.sql"

# Sections 1 and 2 run ROUNDS times, reference and Stockroom back to back each time:
# on a shared machine one pair of runs moves by ±15%, a median of three much less.
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
    say "round $ROUND of $ROUNDS"
    # --- 1. point reads -----------------------------------------------------------------
    for C in 8 64; do
        OUTPUT=$(measured pgbench -S -M prepared -c "$C" -j "$THREADS" -T "$SECONDS_EACH" -n "$URL" 2>/dev/null)
        PG=$(echo "$OUTPUT" | pgbench_tps)
        note "pg-S-$C" "$PG"
        cost "pg-S-$C" "$(echo "$OUTPUT" | pgbench_count)"
        # The same through PgBouncer: what a pooler in front of PostgreSQL costs, the
        # nearest thing to the service's own path. Its CPU is counted with the rest.
        OUTPUT=$(measured --pid "$PGBOUNCER_PID" pgbench -S -M prepared -c "$C" -j "$THREADS" -T "$SECONDS_EACH" -n "$PGBOUNCER_URL" 2>/dev/null)
        note "pgb-S-$C" "$(echo "$OUTPUT" | pgbench_tps)"
        cost "pgb-S-$C" "$(echo "$OUTPUT" | pgbench_count)"
        N=$(awk -v t="$PG" -v s="$SECONDS_EACH" 'BEGIN { n = int(t * s); if (n < 20000) n = 20000; print n }')
        note "get-$C" "$(measured --server redis-benchmark -p "$PORT" -c "$C" -n "$N" -r 100000 -q PRODUCT.GET SKU BENCH-__rand_int__ 2>/dev/null | redis_rps)"
        cost "get-$C" "$N"
        note "get-P16-$C" "$(measured --server redis-benchmark -p "$PORT" -c "$C" -n "$((N * 4))" -r 100000 -P 16 -q PRODUCT.GET SKU BENCH-__rand_int__ 2>/dev/null | redis_rps)"
        cost "get-P16-$C" "$((N * 4))"
        # No database at all: what the protocol path alone reaches with the same client,
        # the ceiling for PRODUCT.GET without pipelining; and redis-server's own, the
        # ceiling for that protocol path on this machine.
        note "ping-$C" "$(measured --server redis-benchmark -p "$PORT" -c "$C" -n "$N" -q PING 2>/dev/null | redis_rps)"
        cost "ping-$C" "$N"
        note "redis-ping-$C" "$(measured --pid "$REDIS_PID" redis-benchmark -p "$REDIS_PORT" -c "$C" -n "$N" -q PING 2>/dev/null | redis_rps)"
        cost "redis-ping-$C" "$N"
        # A key-value read of a product-sized value from memory: the floor for a read
        # that needs no database.
        note "redis-get-$C" "$(measured --pid "$REDIS_PID" redis-benchmark -p "$REDIS_PORT" -c "$C" -n "$N" -r 100000 -q GET BENCH-__rand_int__ 2>/dev/null | redis_rps)"
        cost "redis-get-$C" "$N"
    done
    # --- 2. order placement -------------------------------------------------------------
    for C in 8 64; do
        # -l logs each transaction's latency, for the same percentiles `bench orders`
        # prints: throughput alone hides where the time goes.
        rm -f "$OUT"/tpcb.*
        OUTPUT=$(measured pgbench -M prepared -c "$C" -j "$THREADS" -T "$SECONDS_EACH" -n -l --log-prefix="$OUT/tpcb" "$URL" 2>/dev/null)
        note "pg-tpcb-$C" "$(echo "$OUTPUT" | pgbench_tps)"
        cost "pg-tpcb-$C" "$(echo "$OUTPUT" | pgbench_count)"
        read -r P50 P99 P999 < <(cat "$OUT"/tpcb.* | percentiles)
        note "pg-tpcb-p50-$C" "$P50"; note "pg-tpcb-p99-$C" "$P99"; note "pg-tpcb-p999-$C" "$P999"
        # ORDER.PLACE's own statement driven by pgbench, with generic plans as the
        # service runs it: what PostgreSQL does with an order's work and nothing in
        # front of it. The ceiling for any service, and what the service's hop costs.
        OUTPUT=$(PGOPTIONS="-c plan_cache_mode=force_generic_plan" measured pgbench -M prepared -f "$OUT/order-statement.sql" \
            -D products=100000 -D users=2000 -c "$C" -j "$THREADS" -T "$SECONDS_EACH" -n "$URL" 2>/dev/null)
        note "pg-order-$C" "$(echo "$OUTPUT" | pgbench_tps)"
        cost "pg-order-$C" "$(echo "$OUTPUT" | pgbench_count)"
        LINE=$(measured --server --from "clients logged in" "$BIN" bench orders --port "$PORT" --clients "$C" --seconds "$SECONDS_EACH" --users 2000)
        echo "$LINE" >&2
        note "order-$C" "$(echo "$LINE" | sed -n 's/.*throughput=\([0-9]*\).*/\1/p')"
        cost "order-$C" "$(echo "$LINE" | sed -n 's/.*count=\([0-9]*\).*/\1/p')"
        note "order-p50-$C" "$(echo "$LINE" | sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p')"
        note "order-p99-$C" "$(echo "$LINE" | sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p')"
        note "order-p999-$C" "$(echo "$LINE" | sed -n 's/.*p999_ms=\([0-9.]*\).*/\1/p')"
    done
done
for C in 8 64; do
    row "point read C=$C" "pgbench -S -M prepared" "pg-S-$C" "PRODUCT.GET" "get-$C" "$([[ $C == 64 ]] && echo '≥ 1.2' || echo —)"
    row "point read via PgBouncer C=$C" "pgbench -S -M prepared via PgBouncer" "pgb-S-$C" "PRODUCT.GET" "get-$C" "$([[ $C == 8 ]] && echo '≥ 1.3' || echo —)"
    row "point read C=$C -P 16" "pgbench -S -M prepared" "pg-S-$C" "PRODUCT.GET -P 16" "get-P16-$C" "≥ 3.0"
    row "PING C=$C (no database)" "pgbench -S -M prepared" "pg-S-$C" "PING" "ping-$C" "—"
    row "PING C=$C (no database)" "redis-server PING" "redis-ping-$C" "PING" "ping-$C" "$([[ $C == 8 ]] && echo '≥ 1.0' || echo —)"
    row "key read C=$C (redis from memory)" "redis-server GET" "redis-get-$C" "PRODUCT.GET" "get-$C" "—"
done
# "p50 / p99 / p99.9" of one tool at C clients, each the median of the rounds.
latencies() { for p in p50 p99 p999; do echo "${SEEN[$1-$p-$2]}" | mid; done | paste -sd/ | sed 's|/| / |g'; }
for C in 8 64; do
    row "order C=$C" "pgbench TPC-B-like" "pg-tpcb-$C" "ORDER.PLACE" "order-$C" "≥ 1.2"
    row "order C=$C (PostgreSQL alone)" "pgbench TPC-B-like" "pg-tpcb-$C" "its statement via pgbench" "pg-order-$C" "—"
    row "order C=$C (the service's hop)" "its statement via pgbench" "pg-order-$C" "ORDER.PLACE" "order-$C" "—"
    ROWS+=("order C=$C latency ms, p50 / p99 / p99.9 (medians)|pgbench TPC-B-like|$(latencies pg-tpcb "$C")|ORDER.PLACE|$(latencies order "$C")||—")
done

# --- 3. the wrapper itself --------------------------------------------------------------
cc -O2 -o "$OUT/point_query" "$ROOT/Benchmarks/c/point_query.c" -I/usr/include/postgresql -lpq -lpthread
cc -O2 -shared -fPIC -o "$OUT/malloc_count.so" "$ROOT/Benchmarks/c/malloc_count.c"
# Allocation counts, steady where time is not: a command run under the counting malloc
# prints its total at exit. Each figure is the difference of two runs of different
# lengths, so that starting up drops out: per_unit FIRST SECOND UNITS-BETWEEN.
allocations() { LD_PRELOAD="$OUT/malloc_count.so" "$@" 2>&1 >/dev/null | sed -n 's/^allocations=//p'; }
per_unit() {
    [[ -n "$1" && -n "$2" ]] || { echo "bench: a run under the counting malloc printed no count" >&2; return 1; }
    awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.1f", (b - a) / n }'
}
# Five runs each, C and LibPQ taking turns, and the median of each: a single pair of
# two-second runs moved by ±15% on this shared machine.
us_per_query() { sed -n 's/.*us_per_query=\([0-9.]*\).*/\1/p'; }
for P in 1 8; do
    Q=$((P == 1 ? 20000 : 80000))
    CS=(); SS=()
    for _ in 1 2 3 4 5; do
        # The client process's own CPU per query beside the wall time: steadier on this
        # shared machine, and the wrapper's cost itself (PostgreSQL's is the same for both).
        CL=$(measured "$OUT/point_query" "$URL" "$Q" 100000 "$P")
        note "c-cpu-$P" "$(command_cpu_per "$Q")"
        SL=$(measured "$BIN" bench point-query --database-url "$URL" --queries "$Q" --pool "$P")
        note "libpq-cpu-$P" "$(command_cpu_per "$Q")"
        echo "$CL" >&2; echo "$SL" >&2
        CS+=("$(echo "$CL" | us_per_query)"); SS+=("$(echo "$SL" | us_per_query)")
        # Each pair as a round of its own, for the targets table.
        note "c-us-$P" "${CS[-1]}"; note "libpq-us-$P" "${SS[-1]}"
    done
    CU=$(printf '%s\n' "${CS[@]}" | median)
    SU=$(printf '%s\n' "${SS[@]}" | median)
    # The same figure as the targets table: the median of the five pairs' own ratios
    # (each pair ran back to back), not the ratio of the two medians.
    ROWS+=("point query, $P connection(s), µs/query (median of 5)|C on libpq|$CU|LibPQ|$SU|$(round_ratios "c-us-$P" "libpq-us-$P" percent)|≤ +5%")
    ROWS+=("point query, $P connection(s), client CPU µs/query (median of 5)|C on libpq|$(echo "${SEEN[c-cpu-$P]}" | mid)|LibPQ|$(echo "${SEEN[libpq-cpu-$P]}" | mid)|$(round_ratios "c-cpu-$P" "libpq-cpu-$P" percent)|—")
    # Allocations per query, over 4,000 and 8,000 queries (exact, so short runs do).
    CA=$(per_unit "$(allocations "$OUT/point_query" "$URL" 4000 100000 "$P")" "$(allocations "$OUT/point_query" "$URL" 8000 100000 "$P")" 4000)
    LA=$(per_unit "$(allocations "$BIN" bench point-query --database-url "$URL" --queries 4000 --pool "$P")" "$(allocations "$BIN" bench point-query --database-url "$URL" --queries 8000 --pool "$P")" 4000)
    say "allocations per query, $P connection(s): C on libpq $CA, LibPQ $LA"
    ROWS+=("point query, $P connection(s), allocations per query (malloc, calloc, realloc)|C on libpq|$CA|LibPQ|$LA|$(awk -v c="$CA" -v l="$LA" 'BEGIN { printf "+%.1f", l - c }')|—")
    # PostgresNIO, when `make bench-nio` has built its package (Benchmarks/).
    NIO="$ROOT/Benchmarks/.build/release/PostgresNIOPointQuery"
    if [[ -x "$NIO" ]]; then
        NL=$(run "$NIO" 127.0.0.1 "$(psql -X -Atc 'SHOW port' "$URL")" stockroom stockroom "$DB" "$Q" 100000 "$P")
        echo "$NL" >&2
        NU=$(echo "$NL" | sed -n 's/.*us_per_query=\([0-9.]*\).*/\1/p')
        ROWS+=("point query, $P connection(s), µs/query|PostgresNIO|$NU|LibPQ|$SU|$(ratio "$NU" "$SU")× faster|≥ 1.0×")
    fi
done

# --- the service's allocations per request ------------------------------------------
# A second service under the counting malloc, on a port of its own, serves 50,000 and
# then 150,000 requests of each kind (starting up varies by a few thousand allocations).
# It prints its count when it exits, which SIGTERM lets it do.
COUNT_PORT="${BENCH_COUNT_PORT:-7398}"
port_taken "$COUNT_PORT" && die "port $COUNT_PORT on 127.0.0.1 is taken; choose another with BENCH_COUNT_PORT"
# Sets COUNTED; not run in a subshell, so that the exit trap knows COUNT_PID.
service_allocations() {  # N, then redis-benchmark's arguments
    local n=$1; shift
    LD_PRELOAD="$OUT/malloc_count.so" "$BIN" serve --port "$COUNT_PORT" --no-http --database-url "$URL" --pool-size 16 >/dev/null 2>"$OUT/count-server.log" &
    COUNT_PID=$!
    for _ in $(seq 100); do redis-cli -p "$COUNT_PORT" PING >/dev/null 2>&1 && break; sleep 0.1; done
    # Requests that never ran would make the difference meaningless, not just small.
    redis-cli -p "$COUNT_PORT" PING >/dev/null 2>&1 || die "the counting service on port $COUNT_PORT does not answer (log: $OUT/count-server.log)"
    redis-benchmark -p "$COUNT_PORT" -n "$n" -r 100000 -q "$@" >/dev/null 2>&1 || die "redis-benchmark $* failed against the counting service"
    kill -TERM "$COUNT_PID"; wait "$COUNT_PID" 2>/dev/null || true
    COUNT_PID=""
    COUNTED=$(sed -n 's/^allocations=//p' "$OUT/count-server.log")
    [[ -n "$COUNTED" ]] || die "the counting service printed no count (log: $OUT/count-server.log)"
}
for spec in "PING|-c 8 PING" "PRODUCT.GET|-c 8 PRODUCT.GET SKU BENCH-__rand_int__" "PRODUCT.GET -P 16|-c 8 -P 16 PRODUCT.GET SKU BENCH-__rand_int__"; do
    name="${spec%%|*}"; read -r -a args <<<"${spec#*|}"
    service_allocations 50000 "${args[@]}"; A=$COUNTED
    service_allocations 150000 "${args[@]}"; B=$COUNTED
    PER=$(per_unit "$A" "$B" 100000)
    say "allocations per request in the service, $name at 8 clients: $PER"
    ROWS+=("$name C=8, allocations per request in the service|—||Stockroom|$PER||—")
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
# With perf, the instructions per operation of both (all the machine's, over the run).
cpu_row() {
    local extra=""
    [[ -z "$PERF" ]] || extra="|$(echo "${SEEN[${3/#cpu-/ins-}]}" | mid)|$(echo "${SEEN[${5/#cpu-/ins-}]}" | mid)"
    CPU_ROWS+=("$1|$2|$(echo "${SEEN[$3]}" | mid)|$4|$(echo "${SEEN[$5]}" | mid)|$(round_ratios "$3" "$5" inverse)$extra")
}
for C in 8 64; do
    cpu_row "point read C=$C" "pgbench -S -M prepared" "cpu-pg-S-$C" "PRODUCT.GET" "cpu-get-$C"
    cpu_row "point read via PgBouncer C=$C" "pgbench -S -M prepared via PgBouncer" "cpu-pgb-S-$C" "PRODUCT.GET" "cpu-get-$C"
    cpu_row "point read C=$C -P 16" "pgbench -S -M prepared" "cpu-pg-S-$C" "PRODUCT.GET -P 16" "cpu-get-P16-$C"
    cpu_row "PING C=$C (no database)" "redis-server PING" "cpu-redis-ping-$C" "PING" "cpu-ping-$C"
    cpu_row "key read C=$C (redis from memory)" "redis-server GET" "cpu-redis-get-$C" "PRODUCT.GET" "cpu-get-$C"
done
for C in 8 64; do
    cpu_row "order C=$C" "pgbench TPC-B-like" "cpu-pg-tpcb-$C" "ORDER.PLACE" "cpu-order-$C"
    cpu_row "order C=$C (the service's hop)" "its statement via pgbench" "cpu-pg-order-$C" "ORDER.PLACE" "cpu-order-$C"
done

# The targets: each the median of the rounds' ratios (each round's in brackets), and
# whether that median meets it. A comparison is "ge" (at least) or "le" (at most).
declare -a TARGETS
target() {
    local verdict
    verdict=$(awk -v v="${2%% *}" -v op="$3" -v t="$4" 'BEGIN {
        gsub(/[+%]/, "", v)
        if (v !~ /^-?[0-9.]+$/) print "n/a"
        else if (op == "ge" ? v + 0 >= t + 0 : v + 0 <= t + 0) print "met"
        else print "missed"
    }')
    TARGETS+=("$1|$2|$5|$verdict")
}
target "PRODUCT.GET / pgbench -S via PgBouncer, 8 clients" "$(round_ratios pgb-S-8 get-8)" ge 1.3 "≥ 1.3"
target "PRODUCT.GET / pgbench -S direct, 64 clients" "$(round_ratios pg-S-64 get-64)" ge 1.2 "≥ 1.2"
for C in 8 64; do
    target "PRODUCT.GET -P 16 / pgbench -S direct, $C clients" "$(round_ratios "pg-S-$C" "get-P16-$C")" ge 3.0 "≥ 3.0"
done
target "Stockroom PING / redis-server PING, 8 clients" "$(round_ratios redis-ping-8 ping-8)" ge 1.0 "≥ 1.0"
for C in 8 64; do
    target "ORDER.PLACE / TPC-B throughput, $C clients" "$(round_ratios "pg-tpcb-$C" "order-$C")" ge 1.2 "≥ 1.2"
done
for C in 8 64; do
    target "ORDER.PLACE p99.9 / TPC-B p99.9, $C clients" "$(round_ratios "pg-tpcb-p999-$C" "order-p999-$C")" le 3.0 "≤ 3.0"
done
for P in 1 8; do
    target "LibPQ over C on libpq, $P connection(s), µs/query (5 pairs)" "$(round_ratios "c-us-$P" "libpq-us-$P" percent)" le 5 "≤ +5%"
done
target "CPU per PRODUCT.GET (service + PostgreSQL + client) / pgbench -S's, 8 clients" "$(round_ratios cpu-pg-S-8 cpu-get-8)" le 1.3 "≤ 1.3×"

# --- the tables -------------------------------------------------------------------------
echo
echo "Targets: the median of the rounds' ratios, each round's in brackets."
echo
echo "| measurement | ratio | target | met |"
echo "|---|---|---|---|"
for row in "${TARGETS[@]}"; do echo "| ${row//|/ | } |"; done
echo
echo "| measurement | reference | reference/s | Stockroom | Stockroom/s | ratio | target |"
echo "|---|---|---|---|---|---|---|"
for row in "${ROWS[@]}"; do echo "| ${row//|/ | } |"; done
echo
echo "CPU per operation, µs: the load generator, PostgreSQL, and the server (the service, PgBouncer or redis-server), from scripts/cpu-split.py over the same runs."
if [[ -n "$PERF" ]]; then
    echo "Instructions per operation: every instruction on the machine over the run (perf stat -a -e instructions), so busy neighbours count too."
    echo
    echo "| measurement | reference | reference µs/op | Stockroom | Stockroom µs/op | reference/Stockroom | reference instructions/op | Stockroom instructions/op |"
    echo "|---|---|---|---|---|---|---|---|"
else
    echo "No instructions per operation: $PERF_WHY."
    echo
    echo "| measurement | reference | reference µs/op | Stockroom | Stockroom µs/op | reference/Stockroom |"
    echo "|---|---|---|---|---|---|"
fi
for row in "${CPU_ROWS[@]}"; do echo "| ${row//|/ | } |"; done
