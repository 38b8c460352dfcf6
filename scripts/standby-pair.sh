#!/usr/bin/env bash
# A throwaway primary with one streaming standby, for the tests of reads from standbys
# (Tests/StockroomServerTests/StandbyReadTests.swift): plain streaming replication made
# with pg_basebackup, in a folder of its own under /tmp, on two free loopback ports, run
# as the `postgres` OS user when we are root (as scripts/db.sh runs the local cluster).
#
#   scripts/standby-pair.sh start   prints: <folder> <primary port> <standby port>
#   scripts/standby-pair.sh stop <folder>
#
# The role and database `stockroom` (password `stockroom`) exist on the primary, and so on
# the standby. The superuser `postgres` connects without a password through the Unix
# socket in <folder> (to pause the standby's replay, say).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/db.sh"   # pg_bindir, as_server, psql_admin, ensure_role_and_database
die() { echo "standby-pair: $*" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cmd_start() {
    BIN="$(pg_bindir)"
    [[ -n "$BIN" ]] || die "PostgreSQL server binaries not found; run make deps"
    local dir primary standby
    dir="$(mktemp -d /tmp/stockroom-standby-pair.XXXXXX)"
    chmod 755 "$dir"
    [[ "$(id -u)" -eq 0 ]] && chown postgres: "$dir"
    primary="$(free_port)"
    standby="$(free_port)"
    as_server "$BIN/initdb" -D "$dir/primary" -U postgres -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 || die "initdb failed (log: $dir/initdb.log)"
    as_server tee -a "$dir/primary/postgresql.conf" >/dev/null <<CONF
listen_addresses = '127.0.0.1'
port = $primary
unix_socket_directories = '$dir'
max_connections = 100
fsync = off
full_page_writes = off
CONF
    as_server "$BIN/pg_ctl" -D "$dir/primary" -l "$dir/primary.log" -w -t 60 start >/dev/null || die "the primary did not start (log: $dir/primary.log)"
    SOCKDIR="$dir" PORT="$primary" LOG="$dir/primary.log" PGDIR="$dir" ensure_role_and_database
    as_server "$BIN/pg_basebackup" -h "$dir" -p "$primary" -U postgres -D "$dir/standby" -R -X stream --checkpoint=fast \
        >"$dir/basebackup.log" 2>&1 || die "pg_basebackup failed (log: $dir/basebackup.log)"
    echo "port = $standby" | as_server tee -a "$dir/standby/postgresql.conf" >/dev/null
    as_server "$BIN/pg_ctl" -D "$dir/standby" -l "$dir/standby.log" -w -t 60 start >/dev/null || die "the standby did not start (log: $dir/standby.log)"
    echo "$dir $primary $standby"
}

cmd_stop() {
    local dir="${1:-}"
    [[ "$dir" == /tmp/stockroom-standby-pair.* && -d "$dir" ]] || die "usage: scripts/standby-pair.sh stop /tmp/stockroom-standby-pair.XXXXXX"
    BIN="$(pg_bindir)"
    for node in standby primary; do
        [[ -f "$dir/$node/postmaster.pid" ]] && as_server "$BIN/pg_ctl" -D "$dir/$node" -m immediate -w stop >/dev/null 2>&1 || true
    done
    rm -rf "$dir"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop "${2:-}" ;;
    *) die "usage: scripts/standby-pair.sh start | stop <folder>" ;;
esac
