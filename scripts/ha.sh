#!/usr/bin/env bash
# A replicated PostgreSQL 15 on this machine, managed by pg_auto_failover (Debian's
# postgresql-15-auto-failover and pg-auto-failover-cli), behind `make ha`, `make ha-stop`,
# `make ha-status`, `make ha-failover` and `make ha-kill-primary`.
#
#   scripts/ha.sh deps          install the missing Debian packages (as root, through apt-get)
#   scripts/ha.sh start         create the cluster on first use, start it, wait until it is
#                               healthy, and print the multi-host DATABASE_URL
#   scripts/ha.sh stop          stop every node, then the monitor (data is kept)
#   scripts/ha.sh status        the monitor's view of the nodes, and the URL
#   scripts/ha.sh url           only the URL
#   scripts/ha.sh failover      a planned switchover (pg_autoctl perform switchover)
#   scripts/ha.sh kill-primary  the primary's host "dies": its pg_autoctl is killed with
#                               SIGKILL and its PostgreSQL stopped with -m immediate; the
#                               monitor promotes a standby. `start` brings the node back
#                               (it rejoins as a standby).
#   scripts/ha.sh destroy       stop and throw the cluster away
#
# Topology, on 127.0.0.1: a monitor on $HA_PORT (54340), nodes on $HA_PORT+1 … +$HA_NODES
# (2: a primary and a standby; 3: a primary and two standbys), data in $HA_DIR (.ha/).
# Every PostgreSQL and pg_autoctl runs as `postgres` when this runs as root.
#
# Durability: every standby has replication-quorum true and synchronous_commit is on, so a
# commit is acknowledged only once a standby has it (with two standbys, the formation's
# number_sync_standbys is 1: one of the two). pg_auto_failover promotes only a standby that
# was in sync, so an acknowledged commit survives the loss of the primary. When the last
# standby is gone the primary stops waiting for it (wait_primary): availability first, as
# pg_auto_failover does; the loss of the primary then too would lose commits.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# pg_bindir, as_server; the messages below are ours.
source "$ROOT/scripts/db.sh"

die() { echo "ha: $*" >&2; exit 1; }
say() { echo "ha: $*"; }

HA_DIR="${HA_DIR:-$ROOT/.ha}"
HA_PORT="${HA_PORT:-54340}"
HA_NODES="${HA_NODES:-2}"
# The monitor's failure detection and the wait before it promotes a standby while the old
# primary cannot be reached (pg_auto_failover's defaults: 5 s checks, 20 s to call a node
# unhealthy, 30 s before promoting). A node's keeper demotes its own primary after
# HA_PARTITION_TIMEOUT s without the monitor and the standbys: it must stay below the
# demote timeout, or an isolated old primary could still take writes when the standby is
# promoted.
HA_CHECK_MS="${HA_CHECK_MS:-1000}"
HA_UNHEALTHY_MS="${HA_UNHEALTHY_MS:-3000}"
HA_DEMOTE_MS="${HA_DEMOTE_MS:-6000}"
HA_PARTITION_TIMEOUT="${HA_PARTITION_TIMEOUT:-4}"
DEBIAN_PACKAGES=(postgresql-15-auto-failover pg-auto-failover-cli haproxy)

[[ "$HA_NODES" == 2 || "$HA_NODES" == 3 ]] || die "HA_NODES must be 2 or 3, not $HA_NODES"
for port in 54320 54329 54399; do
    (( port < HA_PORT || port > HA_PORT + HA_NODES )) || die "HA_PORT=$HA_PORT would use port $port (the shared dev database or a test's); pick another"
done

cmd_deps() {
    "$ROOT/scripts/db.sh" deps
    local missing=()
    [[ -x /usr/bin/pg_autoctl ]] || missing+=(pg-auto-failover-cli)
    [[ -n "$(ls /usr/lib/postgresql/15/lib/pgautofailover.so 2>/dev/null)" ]] || missing+=(postgresql-15-auto-failover)
    command -v haproxy >/dev/null 2>&1 || [[ -x /usr/sbin/haproxy ]] || missing+=(haproxy)
    [[ ${#missing[@]} -eq 0 ]] && return 0
    if [[ "$(id -u)" -ne 0 ]]; then
        die "missing ${missing[*]}; install them with: sudo apt-get install ${DEBIAN_PACKAGES[*]}"
    fi
    say "installing ${missing[*]} (apt-get)"
    mkdir -p "$ROOT/.build"
    local aptlog="$ROOT/.build/apt-ha.log"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
           DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${DEBIAN_PACKAGES[@]}"; } >"$aptlog" 2>&1; then
        die "apt-get could not install ${DEBIAN_PACKAGES[*]}: $(grep -E '^(E|W):' "$aptlog" | head -n 1 || tail -n 1 "$aptlog") (full log: $aptlog)"
    fi
}

# pg_auto_failover 2.0 works with PostgreSQL 15 only through the -15 package's extension.
PG15=/usr/lib/postgresql/15/bin

# The folder, through a link to /var/lib/postgresql when `postgres` may not enter the
# checkout (as db.sh does).
prepare_dir() {
    [[ -L "$HA_DIR" && ! -e "$HA_DIR" ]] && rm -f "$HA_DIR"
    if [[ ! -e "$HA_DIR" ]]; then
        if [[ "$(id -u)" -eq 0 ]] && ! runuser -u postgres -- test -x "$(dirname "$HA_DIR")" 2>/dev/null; then
            local target="/var/lib/postgresql/stockroom-ha-$(printf '%s' "$HA_DIR" | sha256sum | cut -c1-12)"
            mkdir -p "$target"
            ln -s "$target" "$HA_DIR"
        else
            mkdir -p "$HA_DIR"
        fi
        [[ "$(id -u)" -eq 0 ]] && chown postgres: "$HA_DIR/"
        chmod 755 "$HA_DIR/"
    fi
    REAL="$(readlink -f "$HA_DIR")"
}

resolve() {
    REAL="$(readlink -f "$HA_DIR" 2>/dev/null || echo "$HA_DIR")"
    MONITOR_DATA="$REAL/monitor"
    MONITOR_URL="postgres://autoctl_node@127.0.0.1:$HA_PORT/pg_auto_failover?sslmode=disable"
}
node_data() { echo "$REAL/node$1"; }
node_port() { echo $((HA_PORT + $1)); }

# pg_autoctl keeps its configuration, state and pid files under the XDG folders: inside
# the cluster's folder, not in the home of `postgres`.
autoctl() {
    as_server env XDG_CONFIG_HOME="$REAL/xdg/config" XDG_DATA_HOME="$REAL/xdg/data" \
        XDG_RUNTIME_DIR="$REAL/xdg/run" PG_CONFIG="$PG15/pg_config" /usr/bin/pg_autoctl "$@"
}

monitor_sql() {
    psql -X -q -At -v ON_ERROR_STOP=1 "$MONITOR_URL" -c "$1"
}

# The pid of the `pg_autoctl run` serving a data folder, if it runs.
service_pid() {
    local file
    file="$(autoctl show file --pid --pgdata "$1" 2>/dev/null)" || return 1
    [[ -s "$file" ]] || return 1
    local pid
    pid="$(head -n 1 "$file")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

run_service() {   # run_service <pgdata> <log>: `pg_autoctl run` in the background, its own session
    local data="$1" log="$2"
    service_pid "$data" >/dev/null && return 0
    as_server touch "$log"
    # setsid: it outlives this script and make; its output goes to the log.
    (cd / && if [[ "$(id -u)" -eq 0 ]]; then
        exec runuser -u postgres -- setsid env XDG_CONFIG_HOME="$REAL/xdg/config" XDG_DATA_HOME="$REAL/xdg/data" \
            XDG_RUNTIME_DIR="$REAL/xdg/run" PG_CONFIG="$PG15/pg_config" /usr/bin/pg_autoctl run --pgdata "$data"
    else
        exec setsid env XDG_CONFIG_HOME="$REAL/xdg/config" XDG_DATA_HOME="$REAL/xdg/data" \
            XDG_RUNTIME_DIR="$REAL/xdg/run" PG_CONFIG="$PG15/pg_config" /usr/bin/pg_autoctl run --pgdata "$data"
    fi) >>"$log" 2>&1 </dev/null &
    disown
}

wait_for() {   # wait_for <seconds> <what> <command…>
    local seconds="$1" what="$2"
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        (( SECONDS < deadline )) || die "$what not within $seconds s (logs: $REAL/*.log)"
        sleep 0.5
    done
}

monitor_up() { monitor_sql "SELECT 1" | grep -qx 1; }

# True when one node is primary and every other one is a secondary, as the monitor wants,
# each reporting now and found healthy (not states left from before a stop).
healthy() {
    local counts
    counts="$(monitor_sql "SELECT count(*) FILTER (WHERE reportedstate = 'primary' AND goalstate = 'primary') || ' ' ||
                                  count(*) FILTER (WHERE reportedstate = 'secondary' AND goalstate = 'secondary')
                           FROM pgautofailover.node
                           WHERE health = 1 AND reportedpgisrunning AND reporttime > now() - interval '3 seconds'")"
    [[ "$counts" == "1 $((HA_NODES - 1))" ]]
}

# The node number of the current primary (the one the monitor has as primary, or as the
# only writable node while its standbys are away).
primary_node() {
    local port
    port="$(monitor_sql "SELECT nodeport FROM pgautofailover.node
                         WHERE reportedstate IN ('primary', 'wait_primary', 'single')
                           AND goalstate IN ('primary', 'wait_primary', 'single')
                         ORDER BY nodeport LIMIT 1")"
    [[ -n "$port" ]] || return 1
    echo $((port - HA_PORT))
}

url() {
    local hosts=() n
    for ((n = 1; n <= HA_NODES; n++)); do hosts+=("127.0.0.1:$(node_port "$n")"); done
    local IFS=,
    echo "postgres://stockroom:stockroom@${hosts[*]}/stockroom?target_session_attrs=read-write"
}

create_monitor() {
    say "creating the monitor on 127.0.0.1:$HA_PORT"
    autoctl create monitor --pgdata "$MONITOR_DATA" --pgport "$HA_PORT" --hostname 127.0.0.1 \
        --auth trust --no-ssl --pgctl "$PG15/pg_ctl" >>"$REAL/create.log" 2>&1 ||
        die "pg_autoctl create monitor failed (log: $REAL/create.log)"
    # Loopback only (pg_autoctl's default is every address).
    autoctl config set --pgdata "$MONITOR_DATA" postgresql.listen_addresses 127.0.0.1 >/dev/null
    as_server tee -a "$MONITOR_DATA/postgresql.conf" >/dev/null <<EOF

# Stockroom's HA cluster (scripts/ha.sh): quicker failure detection than the defaults.
shared_buffers = 32MB
pgautofailover.health_check_period = $HA_CHECK_MS
pgautofailover.health_check_timeout = $HA_CHECK_MS
pgautofailover.health_check_retry_delay = 500
pgautofailover.health_check_max_retries = 1
pgautofailover.node_considered_unhealthy_timeout = $HA_UNHEALTHY_MS
pgautofailover.primary_demote_timeout = $HA_DEMOTE_MS
EOF
}

create_node() {   # create_node <n>
    local n="$1" data port
    data="$(node_data "$n")"
    port="$(node_port "$n")"
    say "creating node$n on 127.0.0.1:$port"
    # --dbname: pg_autoctl creates the database; its owner and the role come after.
    local attempt
    for attempt in 1 2; do
        if autoctl create postgres --pgdata "$data" --pgport "$port" --pghost 127.0.0.1 --listen 127.0.0.1 \
            --hostname 127.0.0.1 --name "node$n" --dbname stockroom --monitor "$MONITOR_URL" \
            --auth trust --no-ssl --replication-quorum true --pgctl "$PG15/pg_ctl" >>"$REAL/create.log" 2>&1; then
            break
        fi
        # pg_autoctl 2.0 once lost track of a standby's freshly started PostgreSQL (no
        # postmaster.pid where it looked, then its retries found the port taken), about
        # one standby in ten here. Undo that node and make it once more.
        [[ "$attempt" == 1 && "$n" != 1 ]] || die "pg_autoctl create postgres for node$n failed (log: $REAL/create.log)"
        say "creating node$n failed; removing what was made and trying once more (log: $REAL/create.log)"
        undo_node "$n"
    done
    autoctl config set --pgdata "$data" timeout.network_partition_timeout "$HA_PARTITION_TIMEOUT" >/dev/null
    if [[ "$n" == 1 ]]; then
        # The primary's files are what the standbys copy (pg_basebackup): settings and
        # client authentication are set once, here. pg_autoctl sizes memory for a
        # dedicated host (GBs of shared_buffers per node); this is a development cluster.
        as_server tee -a "$data/postgresql.conf" >/dev/null <<EOF

# Stockroom's HA cluster (scripts/ha.sh)
shared_buffers = 128MB
effective_cache_size = 512MB
maintenance_work_mem = 64MB
wal_keep_size = 512MB
max_connections = 300
# Durable: what is tested is that an acknowledged commit survives the loss of the primary.
fsync = on
synchronous_commit = on
full_page_writes = on
EOF
        # The role the service uses logs in with its password over TCP, as on the dev
        # cluster (db.sh). The rest is pg_autoctl's (trust on loopback, for its monitor,
        # replication and health checks): first match wins, so this line goes on top.
        local hba="$data/pg_hba.conf"
        as_server sh -c "{ echo 'host all stockroom 127.0.0.1/32 scram-sha-256 # scripts/ha.sh'; cat '$hba'; } > '$hba.new' && mv '$hba.new' '$hba'"
    fi
}

undo_node() {   # undo_node <n>: a node whose creation failed, gone from this machine and the monitor
    local n="$1" data port pid
    data="$(node_data "$n")"
    port="$(node_port "$n")"
    as_server "$PG15/pg_ctl" stop -D "$data" -m immediate -w >/dev/null 2>&1 || true
    # A PostgreSQL of that node still holding the port: by its pid, after checking it is
    # one of this node's (its command line names the node's folder or its backup's).
    for pid in $(ss -ltnpH "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
        if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qE "$data|$REAL/backup/node_$n"; then
            kill -QUIT "$pid" 2>/dev/null || true
        fi
    done
    local deadline=$((SECONDS + 15))
    while ss -ltnH "sport = :$port" 2>/dev/null | grep -q . && (( SECONDS < deadline )); do sleep 0.3; done
    monitor_sql "SELECT pgautofailover.remove_node('127.0.0.1', $port, true)" >/dev/null 2>&1 || true
    as_server rm -rf "$data" "$REAL/backup/node_$n" "$REAL/xdg/config/pg_autoctl$data" "$REAL/xdg/data/pg_autoctl$data" "$REAL/xdg/run/pg_autoctl$data"
}

ensure_role_and_database_ha() {
    local primary port
    primary="$(primary_node)" || die "no primary to create the role on"
    port="$(node_port "$primary")"
    local admin=(psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d stockroom)
    if [[ "$("${admin[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = 'stockroom'")" != 1 ]]; then
        "${admin[@]}" -c "CREATE ROLE stockroom LOGIN CREATEDB PASSWORD 'stockroom'" >/dev/null
    fi
    "${admin[@]}" -c "ALTER DATABASE stockroom OWNER TO stockroom; GRANT ALL ON SCHEMA public TO stockroom; ALTER SCHEMA public OWNER TO stockroom" >/dev/null
}

cmd_start() {
    cmd_deps
    prepare_dir
    resolve
    as_server mkdir -p "$REAL/xdg/config" "$REAL/xdg/data" "$REAL/xdg/run"
    if [[ ! -f "$MONITOR_DATA/PG_VERSION" ]]; then
        (exec 3<>"/dev/tcp/127.0.0.1/$HA_PORT") 2>/dev/null && die "port $HA_PORT on 127.0.0.1 is taken; use another with HA_PORT=<port>"
        create_monitor
    fi
    # Nodes made before start ahead of the monitor, which must find them running: a
    # monitor that comes up to nodes still down (or last seen stopping) fails over at once.
    local n fresh=0
    for ((n = 1; n <= HA_NODES; n++)); do
        [[ -f "$(node_data "$n")/PG_VERSION" ]] && run_service "$(node_data "$n")" "$REAL/node$n.log"
    done
    run_service "$MONITOR_DATA" "$REAL/monitor.log"
    wait_for 60 "the monitor did not answer" monitor_up
    for ((n = 1; n <= HA_NODES; n++)); do
        if [[ ! -f "$(node_data "$n")/PG_VERSION" ]]; then
            fresh=1
            create_node "$n"
        fi
        run_service "$(node_data "$n")" "$REAL/node$n.log"
        if [[ "$n" == 1 && "$fresh" == 1 ]]; then
            wait_for 60 "node1 did not become the primary" primary_node
        fi
    done
    if [[ "$HA_NODES" == 3 ]]; then
        # With two standbys a commit waits for one of them (with one, it waits for it
        # already: pg_auto_failover counts 0 as "ANY 1" then).
        autoctl set formation number-sync-standbys 1 --pgdata "$MONITOR_DATA" >/dev/null 2>&1 || true
    fi
    wait_for 180 "the cluster did not become healthy (a primary and $((HA_NODES - 1)) secondaries)" healthy
    ensure_role_and_database_ha
    say "monitor 127.0.0.1:$HA_PORT, primary node$(primary_node), $((HA_NODES - 1)) synchronous standby(s); data in $HA_DIR"
    echo "DATABASE_URL=$(url)"
}

cmd_stop() {
    resolve
    local n stopped=0
    # The monitor first: one that watches its nodes stop would fail over to whichever
    # stopped last, and remember it for the next start.
    stop_service "$MONITOR_DATA" && stopped=1
    for ((n = HA_NODES; n >= 1; n--)); do
        stop_service "$(node_data "$n")" && stopped=1
    done
    if [[ "$stopped" == 1 ]]; then say "stopped"; else say "not running"; fi
}

stop_service() {   # stop_service <pgdata>: true if it ran
    local data="$1" pid
    [[ -d "$data" ]] || return 1
    pid="$(service_pid "$data")" || {
        # No pg_autoctl, yet its PostgreSQL may still run (say, after a kill of pg_autoctl).
        if as_server "$PG15/pg_ctl" status -D "$data" >/dev/null 2>&1; then
            as_server "$PG15/pg_ctl" stop -D "$data" -m fast -w -t 30 >/dev/null 2>&1 || true
            return 0
        fi
        return 1
    }
    autoctl stop --pgdata "$data" >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null || true
        as_server "$PG15/pg_ctl" stop -D "$data" -m immediate -w >/dev/null 2>&1 || true
    fi
    return 0
}

cmd_status() {
    resolve
    monitor_up || die "the monitor does not answer on 127.0.0.1:$HA_PORT (make ha starts it)"
    autoctl show state --pgdata "$MONITOR_DATA"
    echo
    autoctl show settings --pgdata "$MONITOR_DATA" 2>/dev/null || true
    echo
    echo "DATABASE_URL=$(url)"
}

cmd_failover() {
    resolve
    monitor_up || die "the monitor does not answer on 127.0.0.1:$HA_PORT (make ha starts it)"
    local before after
    before="$(primary_node)" || die "no primary now"
    say "switchover from node$before"
    autoctl perform switchover --pgdata "$MONITOR_DATA" --wait 120 >>"$REAL/switchover.log" 2>&1 ||
        die "pg_autoctl perform switchover failed (log: $REAL/switchover.log)"
    after="$(primary_node)" || die "no primary after the switchover"
    say "node$after is the primary now (node$before a standby)"
}

cmd_kill_primary() {
    resolve
    monitor_up || die "the monitor does not answer on 127.0.0.1:$HA_PORT (make ha starts it)"
    local n data pid children
    n="$(primary_node)" || die "no primary now"
    data="$(node_data "$n")"
    # The host dies: first its pg_autoctl (which would otherwise restart PostgreSQL at
    # once, and no failover would happen), every process of it by pid, then PostgreSQL
    # with a crash (no checkpoint, no goodbye to its clients).
    if pid="$(service_pid "$data")"; then
        children="$(pgrep -P "$pid" -d ' ' || true)"
        kill -9 "$pid" $children 2>/dev/null || true
    fi
    as_server "$PG15/pg_ctl" stop -D "$data" -m immediate -w >/dev/null 2>&1 ||
        die "pg_ctl stop -m immediate of node$n failed"
    say "killed node$n (the primary) at $(date +%H:%M:%S.%N | cut -c1-12); make ha brings it back as a standby"
}

cmd_destroy() {
    cmd_stop
    resolve
    if [[ -L "$HA_DIR" ]]; then rm -rf "$(readlink -f "$HA_DIR")"; fi
    rm -rf "$HA_DIR"
    say "removed $HA_DIR"
}

[[ "${BASH_SOURCE[0]}" != "$0" ]] && return 0

case "${1:-}" in
    deps) cmd_deps ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    url) resolve; url ;;
    primary) resolve; primary_node ;;
    failover) cmd_failover ;;
    kill-primary) cmd_kill_primary ;;
    destroy) cmd_destroy ;;
    *) die "usage: scripts/ha.sh deps|start|stop|status|url|primary|failover|kill-primary|destroy" ;;
esac
