#!/usr/bin/env bash
# The project-local PostgreSQL behind `make db`, `make db-stop`, `make db-reset`, `make psql`.
#
#   scripts/db.sh deps    install missing Debian packages (as root, through apt-get)
#   scripts/db.sh start   initialize .pg/ on first use, start it, create role and database
#   scripts/db.sh stop    stop it (data is kept)
#   scripts/db.sh reset   throw the cluster away and start a new one
#   scripts/db.sh psql    a psql shell on the stockroom database
#
# The cluster listens on 127.0.0.1:$STOCKROOM_PG_PORT (54320) and on a socket inside .pg/.
# Run as root, the server runs as the unprivileged `postgres` user (PostgreSQL refuses to
# run as root). Every failure ends in one line on stderr saying what to do.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PGDIR="$ROOT/.pg"
PORT="${STOCKROOM_PG_PORT:-54320}"
MAX_CONNECTIONS=1000
DEBIAN_PACKAGES=(postgresql postgresql-contrib libpq-dev libsodium-dev pkg-config redis-tools netcat-openbsd python3 python3-venv openssl)

die() { echo "db: $*" >&2; exit 1; }
say() { echo "db: $*"; }

# Debian's postgresql packages keep the server binaries in a versioned folder; take the newest.
pg_bindir() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -n "$dir" && -x "$dir/initdb" ]]; then echo "$dir"; return; fi
    dir="$(command -v initdb 2>/dev/null || true)"
    [[ -n "$dir" ]] && dirname "$dir"
}

missing_packages() {
    local missing=()
    [[ -n "$(pg_bindir)" ]] || missing+=(postgresql)
    command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
    [[ -f /usr/include/postgresql/libpq-fe.h ]] || missing+=(libpq-dev)
    [[ -f /usr/include/sodium.h ]] || missing+=(libsodium-dev)
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
    command -v nc >/dev/null 2>&1 || missing+=(netcat-openbsd)
    python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
    # The mail and TLS tests make a throwaway CA and certificates with it.
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    echo "${missing[*]}"
}

cmd_deps() {
    local missing
    missing="$(missing_packages)"
    [[ -z "$missing" ]] && return 0
    if [[ "$(id -u)" -ne 0 ]]; then
        die "missing $missing; install them with: sudo apt-get install ${DEBIAN_PACKAGES[*]}"
    fi
    command -v apt-get >/dev/null 2>&1 || die "missing $missing and there is no apt-get here; install PostgreSQL 14+, libpq and libsodium headers, pkg-config, redis-tools, nc, python3-venv and openssl by hand"
    say "installing $missing (apt-get)"
    mkdir -p "$ROOT/.build"
    local aptlog="$ROOT/.build/apt.log"
    # The package scripts try to start services; on machines without an init system they
    # must not fail the install.
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
           DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${DEBIAN_PACKAGES[@]}"; } >"$aptlog" 2>&1; then
        die "apt-get could not install ${DEBIAN_PACKAGES[*]}: $(grep -E '^(E|W):' "$aptlog" | head -n 1 || tail -n 1 "$aptlog") (full log: $aptlog)"
    fi
    missing="$(missing_packages)"
    [[ -z "$missing" ]] || die "still missing after apt-get: $missing (log: $aptlog)"
}

# Who runs the server: ourselves, or `postgres` when we are root.
server_user() {
    if [[ "$(id -u)" -eq 0 ]]; then echo postgres; else id -un; fi
}

as_server() {
    # From /, since `postgres` may not be allowed into the current folder.
    if [[ "$(id -u)" -eq 0 ]]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# As root, the data folder must belong to `postgres`, and every folder above it must let
# `postgres` through. When the checkout does not (say, under /root), the cluster lives in
# /var/lib/postgresql and .pg is a link to it.
prepare_pgdir() {
    [[ -L "$PGDIR" && ! -e "$PGDIR" ]] && rm -f "$PGDIR"   # its cluster was removed
    if [[ -e "$PGDIR" ]]; then return; fi
    if [[ "$(id -u)" -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || die "no 'postgres' OS user to run the server as root; install the postgresql package"
        if runuser -u postgres -- test -x "$ROOT" 2>/dev/null; then
            mkdir -p "$PGDIR"
        else
            local hash target
            hash="$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
            target="/var/lib/postgresql/stockroom-$hash"
            mkdir -p "$target"
            ln -s "$target" "$PGDIR"
        fi
        chown postgres: "$PGDIR/"
    else
        mkdir -p "$PGDIR"
    fi
    chmod 700 "$PGDIR/"
}

# Paths the server uses go through the link, if any: it may not be allowed to see the checkout.
resolve_paths() {
    local real
    real="$(readlink -f "$PGDIR" 2>/dev/null || echo "$PGDIR")"
    SOCKDIR="$real"
    DATA="$real/data"
    LOG="$real/server.log"
}

is_running() {
    [[ -f "$DATA/PG_VERSION" ]] && as_server "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

port_taken() {
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

psql_admin() {
    "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKDIR" -p "$PORT" -U postgres -d postgres -At "$@"
}

ensure_role_and_database() {
    local exists
    exists="$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = 'stockroom'")" ||
        die "cannot connect to the cluster in $PGDIR (log: $LOG)"
    if [[ "$exists" != 1 ]]; then
        psql_admin -c "CREATE ROLE stockroom LOGIN CREATEDB PASSWORD 'stockroom'" >/dev/null ||
            die "could not create the role stockroom"
    fi
    exists="$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = 'stockroom'")"
    if [[ "$exists" != 1 ]]; then
        psql_admin -c "CREATE DATABASE stockroom OWNER stockroom" >/dev/null ||
            die "could not create the database stockroom"
    fi
}

cmd_start() {
    cmd_deps
    BIN="$(pg_bindir)"
    [[ -n "$BIN" ]] || die "PostgreSQL server binaries not found; install the postgresql package"
    prepare_pgdir
    resolve_paths
    [[ -w "$PGDIR" || "$(id -u)" -eq 0 ]] || die "no permission to write $PGDIR"
    if is_running; then
        # The fourth line of postmaster.pid is the port the running server listens on.
        local running
        running="$(as_server sed -n 4p "$DATA/postmaster.pid" 2>/dev/null || true)"
        if [[ -n "$running" && "$running" != "$PORT" ]]; then
            die "the cluster in $PGDIR is running on port $running, not $PORT; stop it first (make db-stop) or use PG_PORT=$running"
        fi
        ensure_role_and_database
        return 0
    fi
    if [[ ! -f "$DATA/PG_VERSION" ]]; then
        say "initializing a cluster in $PGDIR"
        local initlog
        initlog="$(mktemp)"
        chmod 644 "$initlog"
        # Trust on the socket (only the owner can reach .pg/), passwords over TCP.
        if ! as_server "$BIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
                --auth-local=trust --auth-host=scram-sha-256 >"$initlog" 2>&1; then
            die "initdb failed: $(grep -iE 'error|fatal' "$initlog" | head -n 1 || tail -n 1 "$initlog")"
        fi
        rm -f "$initlog"
        cat >>"$DATA/postgresql.conf" <<EOF

# Stockroom's local cluster (scripts/db.sh)
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCKDIR'
max_connections = $MAX_CONNECTIONS
shared_buffers = 256MB
# A development and test cluster: durability across an OS crash is not worth the fsyncs.
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
EOF
    fi
    if port_taken; then
        die "port $PORT on 127.0.0.1 is taken by another process; stop it, or use another port with STOCKROOM_PG_PORT=<port> and DATABASE_URL"
    fi
    as_server touch "$LOG" 2>/dev/null || true
    # The port on the command line: a cluster made with another PG_PORT starts on this one.
    # So is max_connections, so that a cluster made before it grew gets it too: the
    # suite's tests run in parallel, each with a database or schema and connections of
    # its own, and each test server a listening connection or two for events (several
    # hundred at its peak; 600 was once reached).
    local logged; logged=$(stat -c %s "$LOG" 2>/dev/null || echo 0)
    if ! as_server "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -o "-p $PORT -c max_connections=$MAX_CONNECTIONS" -w -t 60 start >/dev/null 2>&1; then
        # What this start wrote (the log is appended to). Another program on the port (a
        # client's ephemeral port can be one too) is the usual cause, and the last FATAL
        # line alone does not say so.
        local written; written=$(tail -c +"$((logged + 1))" "$LOG" 2>/dev/null || true)
        grep -q "could not bind.*Address already in use" <<<"$written" &&
            die "PostgreSQL did not start: 127.0.0.1:$PORT is in use by another program; choose another port with PG_PORT=…"
        die "PostgreSQL did not start: $(grep -E 'FATAL|ERROR|LOG: +could not' <<<"$written" | tail -n 1 || echo "see $LOG")"
    fi
    ensure_role_and_database
    say "PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') running on 127.0.0.1:$PORT (data in $PGDIR)"
}

cmd_stop() {
    BIN="$(pg_bindir)"
    [[ -n "$BIN" ]] || die "PostgreSQL is not installed"
    resolve_paths
    if is_running; then
        as_server "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null || die "could not stop the cluster in $PGDIR"
        say "stopped"
    else
        say "not running"
    fi
}

cmd_reset() {
    cmd_stop
    if [[ -L "$PGDIR" ]]; then
        rm -rf "$(readlink "$PGDIR")"
    fi
    rm -rf "$PGDIR"
    cmd_start
}

cmd_psql() {
    cmd_start >/dev/null
    exec psql "${DATABASE_URL:-postgres://stockroom:stockroom@127.0.0.1:$PORT/stockroom}"
}

# Sourced (scripts/test-faults.sh borrows the helpers above for a cluster of its own): stop here.
[[ "${BASH_SOURCE[0]}" != "$0" ]] && return 0

case "${1:-}" in
    deps) cmd_deps ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    reset) cmd_reset ;;
    psql) cmd_psql ;;
    *) die "usage: scripts/db.sh deps|start|stop|reset|psql" ;;
esac
