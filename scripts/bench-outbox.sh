#!/usr/bin/env bash
# What the transactional outbox costs an order, in the database alone: pgbench runs
# ORDER.PLACE's statement (scripts/order-statement.sh: two products, generic plans, as
# the service runs it) at CLIENTS clients with the outbox's triggers on (and the
# numbering alongside, as a running service does: scripts/sequence-statement.sh) and off, in
# alternating rounds on a database of its own. docs/EVENTS.md ("What it costs") quotes
# its output.
#
#   scripts/bench-outbox.sh            # 3 rounds of 8 s at 8 clients
#   ROUNDS=5 SECONDS_EACH=15 CLIENTS=64 scripts/bench-outbox.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE_URL="${DATABASE_URL:-postgres://stockroom:stockroom@127.0.0.1:54320/stockroom}"
DB="stockroom_outbox_bench"
URL="${BASE_URL%/*}/$DB"
ROUNDS="${ROUNDS:-3}"
SECONDS_EACH="${SECONDS_EACH:-8}"
CLIENTS="${CLIENTS:-8}"

psql -X -q "$BASE_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null 2>&1
# An autovacuum worker busy in the database (after eight seconds of orders it often is)
# cannot be ended by a non-superuser's FORCE: it stops on its own, so try again.
drop_database() {
    for _ in 1 2 3 4 5; do
        psql -X -q "$BASE_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 && return 0
        sleep 1
    done
    psql -X -q "$BASE_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
}
PLACE="$(mktemp)" SEQUENCE="$(mktemp)"
trap 'rm -f "$PLACE" "$SEQUENCE" "$SEQUENCE.log"; drop_database' EXIT
swift build --package-path "$ROOT" --product stockroom >/dev/null 2>&1
"$ROOT/.build/debug/stockroom" migrate up --database-url "$URL" --dir "$ROOT/migrations" >/dev/null
# 10,000 products with plenty of stock and 2,000 users, the ranges given to pgbench below.
awk 'BEGIN { for (i = 0; i < 10000; i++) printf "OB-%012d\tOutbox bench %d\tseeded\t%d\tEUR\t1000000000\n", i, i, 100 + i % 5000 }' |
    psql -X -q "$URL" -c "\\copy products (sku, name, description, price_cents, currency, stock) FROM STDIN"
psql -X -q "$URL" -c "INSERT INTO users (email, name, role, password_hash) SELECT 'ob-' || n || '@example.com', 'OB ' || n, 'customer', 'x' FROM generate_series(1, 2000) AS n" -c "ANALYZE" 2>/dev/null

triggers() {
    psql -X -q "$URL" -c "ALTER TABLE order_status_history $1 TRIGGER order_status_history_event" \
        -c "ALTER TABLE products $1 TRIGGER products_low_stock_event"
}
tps() { awk '/^tps =/ { printf "%.0f", $3 }'; }
"$ROOT/scripts/order-statement.sh" >"$PLACE"
"$ROOT/scripts/sequence-statement.sh" >"$SEQUENCE"
place() {
    PGOPTIONS="-c plan_cache_mode=force_generic_plan" pgbench -n -f "$PLACE" -D products=10000 -D users=2000 \
        -c "$CLIENTS" -j 2 -T "$SECONDS_EACH" -M prepared "$URL" 2>/dev/null | tps
}
# A warm-up, not counted, then statistics, as a running service's tables have them.
SECONDS_EACH=3 place >/dev/null
psql -X -q "$URL" -c "ANALYZE"
echo "ORDER.PLACE statement, $CLIENTS clients, $SECONDS_EACH s per run, orders per second:"
for ((round = 1; round <= ROUNDS; round++)); do
    triggers ENABLE
    pgbench -n -M prepared -f "$SEQUENCE" -c 1 -T "$SECONDS_EACH" "$URL" >"$SEQUENCE.log" 2>&1 &
    with=$(place)
    wait $! || { cat "$SEQUENCE.log" >&2; echo "bench-outbox: the numbering failed" >&2; exit 1; }
    triggers DISABLE
    without=$(place)
    echo "round $round: with the outbox $with, without $without ($(awk -v a="$with" -v b="$without" 'BEGIN { printf "%+.0f%%", (a / b - 1) * 100 }'))"
done
