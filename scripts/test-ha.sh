#!/usr/bin/env bash
# `make test-ha`: several Stockroom instances behind HAProxy over a pg_auto_failover cluster
# — three instances migrating one empty database at once, one instance stopped mid-storm,
# the primary killed mid-storm, a planned switchover mid-storm — and no order lost or
# doubled (scripts/ha-storm.py does the storms and checks; scripts/ha.sh the cluster).
#
# It never touches `make ha`'s cluster: a fresh one of its own in .build/test-ha/ on
# 127.0.0.1:$HA_TEST_PORT (54350) and up, with a monitor and HA_TEST_NODES (2) nodes,
# thrown away after a passing run and kept, stopped, after a failing one. Everything it
# started is stopped on the way out, whatever happened. Arguments go to ha-storm.py
# (e.g. --scenario K; see scripts/ha-storm.py --help).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "test-ha: $*" >&2; exit 1; }
say() { echo "test-ha: $*"; }

export HA_DIR="$ROOT/.build/test-ha"
export HA_PORT="${HA_TEST_PORT:-54350}"
export HA_NODES="${HA_TEST_NODES:-2}"
PYTHON="$ROOT/.build/venv/bin/python"
STOCKROOM="$ROOT/.build/debug/stockroom"
STATE="$ROOT/.build/test-ha-state"

[[ -x "$PYTHON" ]] && "$PYTHON" -c 'import redis' 2>/dev/null || die "no redis-py in .build/venv; run make pyclients"
mkdir -p "$ROOT/.build"
exec 9>"$ROOT/.build/test-ha.lock"
flock -w 120 9 || die "another make test-ha is running in this checkout"

STORM_PID=
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n "$STORM_PID" ]] && kill -0 "$STORM_PID" 2>/dev/null; then
        kill -TERM "$STORM_PID" 2>/dev/null || true   # it stops its instances and HAProxy
        wait "$STORM_PID" 2>/dev/null || true
    fi
    # ha-storm.py stops them itself; this is for when it could not (killed).
    local pidfile
    for pidfile in "$STATE"/*.pid "$STATE"/serve/*.pid; do
        [[ -s "$pidfile" ]] && kill -9 "$(cat "$pidfile")" 2>/dev/null || true
        rm -f "$pidfile"
    done
    "$ROOT/scripts/ha.sh" stop >/dev/null 2>&1 || true
    if [[ $status -eq 0 ]]; then
        "$ROOT/scripts/ha.sh" destroy >/dev/null 2>&1 || true
    else
        echo "test-ha: FAILED (exit $status). Logs: $STATE/ (instances, HAProxy, setup.log), $HA_DIR/*.log (pg_autoctl); the stopped cluster is kept in $HA_DIR" >&2
    fi
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

started=$SECONDS
rm -rf "$STATE"
mkdir -p "$STATE"
SETUP_LOG="$STATE/setup.log"
step() {   # step <what> <command…>: its output goes to setup.log, and its last lines on failure
    local what="$1"
    shift
    if ! "$@" >>"$SETUP_LOG" 2>&1; then
        tail -n 5 "$SETUP_LOG" >&2
        die "$what failed (log: $SETUP_LOG)"
    fi
}

step "scripts/ha.sh deps" "$ROOT/scripts/ha.sh" deps
step "swift build --product stockroom" swift build --package-path "$ROOT" --product stockroom
# The previous run's cluster (kept after a failure) goes first.
step "scripts/ha.sh destroy" "$ROOT/scripts/ha.sh" destroy
step "scripts/ha.sh start" "$ROOT/scripts/ha.sh" start
URL="$("$ROOT/scripts/ha.sh" url)"
say "cluster up in $((SECONDS - started)) s: $URL"

"$PYTHON" "$ROOT/scripts/ha-storm.py" --stockroom "$STOCKROOM" --database-url "$URL" \
    --ha-script "$ROOT/scripts/ha.sh" --migrations "$ROOT/migrations" --state "$STATE" "$@" &
STORM_PID=$!
wait "$STORM_PID"
STORM_PID=

# `make ha-serve` on the same cluster: two instances behind its HAProxy, each reached in
# turn through it, then stopped by SIGINT as Ctrl-C would.
SERVE_LOG="$STATE/ha-serve.log"
"$PYTHON" "$ROOT/scripts/ha-serve.py" --stockroom "$STOCKROOM" --database-url "$URL" --migrations "$ROOT/migrations" \
    --state "$STATE/serve" --instances 2 --port 0 --first-port 0 --first-http-port 0 --duration 120 >"$SERVE_LOG" 2>&1 &
STORM_PID=$!
for _ in $(seq 300); do grep -qs "ready:\|failed" "$SERVE_LOG" && break; sleep 0.2; done
PROXY_PORT=$(sed -n 's/^ha-serve: HAProxy: 127.0.0.1:\([0-9]*\) .*/\1/p' "$SERVE_LOG")
[[ -n "$PROXY_PORT" ]] || { cat "$SERVE_LOG" >&2; die "make ha-serve did not start"; }
SEEN_PORTS=$(for _ in 1 2 3 4; do redis-cli -p "$PROXY_PORT" INFO server | sed -n 's/^tcp_port:\([0-9]*\).*/\1/p'; done | sort -u | wc -l)
[[ $SEEN_PORTS == 2 ]] || { cat "$SERVE_LOG" >&2; die "make ha-serve: 4 connections through HAProxy reached $SEEN_PORTS instance(s), not 2"; }
kill -INT "$STORM_PID"
wait "$STORM_PID" || { cat "$SERVE_LOG" >&2; die "make ha-serve did not stop cleanly on SIGINT"; }
STORM_PID=
say "make ha-serve: HAProxy on $PROXY_PORT reached both instances in turn, and SIGINT stopped it all"
say "passed in $((SECONDS - started)) s"
