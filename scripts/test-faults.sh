#!/usr/bin/env bash
# `make test-faults`: proves that no order is lost or doubled, and no order's webhook lost,
# when the service or the database dies in the middle of a storm of orders
# (scripts/fault-storm.py does the storm, receives the webhooks, and checks the invariants
# in PostgreSQL).
#
# The test stops PostgreSQL, so it never touches the shared cluster of `make db`: it makes
# a throwaway cluster of its own in .build/fault-pg/ on 127.0.0.1:$FAULT_PG_PORT (54329),
# with fsync on — durability is what is tested — migrates it, runs the storm, and stops
# the service and the cluster on the way out, whatever happened. Arguments are passed to
# fault-storm.py (e.g. --strict; see scripts/fault-storm.py --help).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# pg_bindir, as_server, is_running, port_taken, psql_admin, ensure_role_and_database.
# They read the globals below, which are set after sourcing for this cluster.
source "$ROOT/scripts/db.sh"

die() { echo "test-faults: $*" >&2; exit 1; }
say() { echo "test-faults: $*"; }

PGDIR="$ROOT/.build/fault-pg"
PORT="${FAULT_PG_PORT:-54329}"
URL="postgres://stockroom:stockroom@127.0.0.1:$PORT/stockroom"
PYTHON="$ROOT/.build/venv/bin/python"
STOCKROOM="$ROOT/.build/debug/stockroom"

[[ -x "$PYTHON" ]] && "$PYTHON" -c 'import redis' 2>/dev/null || die "no redis-py in .build/venv; run make pyclients"
BIN="$(pg_bindir)"
[[ -n "$BIN" ]] || die "PostgreSQL server binaries not found; run make deps"

mkdir -p "$ROOT/.build"
# Two runs in one checkout would share the folder and the ports: the second waits.
exec 9>"$ROOT/.build/fault-pg.lock"
flock -w 120 9 || die "another make test-faults is running in this checkout"

# The previous run's cluster (kept after a failure, for inspection) goes first.
if [[ -e "$PGDIR" ]]; then
    real="$(readlink -f "$PGDIR")"
    if [[ -f "$real/data/postmaster.pid" ]]; then
        as_server "$BIN/pg_ctl" -D "$real/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    [[ -L "$PGDIR" ]] && rm -rf "$real"
    rm -rf "$PGDIR"
fi
if [[ "$(id -u)" -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || die "no 'postgres' OS user to run the server as root; install the postgresql package"
    if runuser -u postgres -- test -x "$ROOT/.build" 2>/dev/null; then
        mkdir "$PGDIR"
    else
        # As in db.sh: a checkout `postgres` may not enter (say, under /root) keeps the
        # cluster in /var/lib/postgresql, behind a link.
        target="/var/lib/postgresql/stockroom-faults-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
        rm -rf "$target"
        mkdir -p "$target"
        ln -s "$target" "$PGDIR"
    fi
    chown postgres: "$PGDIR/"
else
    mkdir "$PGDIR"
fi
chmod 755 "$PGDIR/"
resolve_paths   # SOCKDIR, DATA, LOG (postgresql.log below) through the link, if any
LOG="$SOCKDIR/postgresql.log"
STATE="$SOCKDIR"   # the storm's logs and the service's pid file live next to the cluster

SERVICE_PID_FILE="$STATE/stockroom.pid"
STORM_PID=
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    # Interrupted: the storm stops its service on SIGTERM.
    if [[ -n "$STORM_PID" ]] && kill -0 "$STORM_PID" 2>/dev/null; then
        kill -TERM "$STORM_PID" 2>/dev/null || true
        wait "$STORM_PID" 2>/dev/null || true
    fi
    # fault-storm.py stops the service itself; this is for when it could not (killed).
    if [[ -s "$SERVICE_PID_FILE" ]]; then
        kill -9 "$(cat "$SERVICE_PID_FILE")" 2>/dev/null || true
        rm -f "$SERVICE_PID_FILE"
    fi
    if is_running; then
        as_server "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 20 stop >/dev/null 2>&1 ||
            as_server "$BIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [[ $status -eq 0 ]]; then
        rm -rf "$DATA"
    else
        echo "test-faults: FAILED (exit $status). Logs: $STATE/stockroom.log (service), $LOG (PostgreSQL), $STATE/setup.log; the stopped cluster is kept in $DATA" >&2
    fi
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

SETUP_LOG="$STATE/setup.log"
: >"$SETUP_LOG"
step() {   # step <what> <command…>: its output goes to setup.log, and its last lines on failure
    local what="$1"
    shift
    if ! "$@" >>"$SETUP_LOG" 2>&1; then
        tail -n 5 "$SETUP_LOG" >&2
        die "$what failed (log: $SETUP_LOG)"
    fi
}

step "swift build --product stockroom" swift build --package-path "$ROOT" --product stockroom
port_taken && die "port $PORT on 127.0.0.1 is taken; use another with FAULT_PG_PORT=<port>"

step initdb as_server "$BIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256
cat >>"$DATA/postgresql.conf" <<EOF

# Stockroom's fault-storm cluster (scripts/test-faults.sh): thrown away after each run.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCKDIR'
max_connections = 100
shared_buffers = 32MB
# Durable, unlike the development cluster: a crash must not lose a committed order.
fsync = on
synchronous_commit = on
full_page_writes = on
logging_collector = off
EOF
as_server touch "$LOG"
step "pg_ctl start" as_server "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start
ensure_role_and_database
step "stockroom migrate up" "$STOCKROOM" migrate up --database-url "$URL" --dir "$ROOT/migrations"
# Crash recovery replays the WAL since the last checkpoint: only the storm's, not the schema's.
psql_admin -c CHECKPOINT >/dev/null

# In the background, so that a signal to this script runs the cleanup at once (bash runs
# traps only between commands) and the cleanup can stop the storm first.
"$PYTHON" "$ROOT/scripts/fault-storm.py" \
    --stockroom "$STOCKROOM" --database-url "$URL" \
    --pg-bin "$BIN" --pg-data "$DATA" --pg-log "$LOG" --state "$STATE" "$@" &
STORM_PID=$!
wait "$STORM_PID"
