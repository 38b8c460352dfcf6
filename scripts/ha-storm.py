#!/usr/bin/env python3
"""Several Stockroom instances behind HAProxy over a pg_auto_failover cluster: what a
client keeps when an instance stops or the primary dies under load.

Run by scripts/test-ha.sh (`make test-ha`), which stands a fresh cluster up (scripts/ha.sh)
and passes its whereabouts; this script owns the instances and HAProxy. The storms, the
clients and the invariant checks are fault-storm.py's (imported, not copied): --clients
threads place keyed orders of quantity 1, each retrying the same key after a connection
error or -UNAVAILABLE/-TIMEOUT/-INDOUBT/-SHUTDOWN until a definitive answer, and then, in
PostgreSQL (the new primary): every acknowledged order stored once under its key, nothing
stored that no client was answered or still retried, one order per key, stock + sold =
initial.

  M. --instances `stockroom serve --migrate` started at once on an empty database: each
     migration applied exactly once (the runner's advisory lock), every instance serving.
  T. One instance gets SIGTERM mid-storm and drains; its clients come back through HAProxy
     to the others (HAProxy's /readyz check takes it out of rotation), then it restarts.
  R. The primary turns read-only for --read-only seconds mid-storm (ALTER SYSTEM SET
     default_transaction_read_only, reloaded): pooled sessions meet SQLSTATE 25006, as
     they would on an old primary come back as a standby. Clients must get -UNAVAILABLE
     (never -INTERNAL) and the orders resume by themselves once it takes writes again.
  K. The primary's host dies mid-storm (scripts/ha.sh kill-primary: pg_autoctl SIGKILLed,
     PostgreSQL stopped -m immediate); pg_auto_failover promotes the synchronous standby and
     the instances follow without a restart. Reported: the time from the kill to the first
     order committed on the new primary.
  S. A planned switchover mid-storm (scripts/ha.sh failover), after the killed node has
     rejoined as a standby.
--strict (the default in make test-ha): -INTERNAL replies fail the test.
"""

import argparse
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time

import redis

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("fault_storm", os.path.join(HERE, "fault-storm.py"))
fs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fs)

Failure = fs.Failure


def log(message):
    print(f"ha-storm: {message}", flush=True)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stockroom", required=True, help="the stockroom binary")
    parser.add_argument("--database-url", required=True, help="the cluster's multi-host URL (target_session_attrs=read-write)")
    parser.add_argument("--ha-script", required=True, help="scripts/ha.sh, with HA_DIR and HA_PORT in the environment")
    parser.add_argument("--migrations", required=True, help="the migrations folder")
    parser.add_argument("--state", required=True, help="folder for logs, pid files and HAProxy's configuration")
    parser.add_argument("--instances", type=int, default=3, help="stockroom serve instances (3)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (8)")
    parser.add_argument("--stock", type=int, default=240, help="initial stock of each scenario's product (240)")
    parser.add_argument("--pace", type=float, default=0.2,
                        help="seconds each client waits between keys (0.2): the storm lasts through the fault")
    parser.add_argument("--extra-keys", type=float, default=0.25, help="keys beyond the stock, as a fraction of it (0.25)")
    parser.add_argument("--fault-at", type=float, default=0.33, help="the fault once this fraction of the stock is sold (0.33)")
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds a scenario's clients may take in all (60)")
    parser.add_argument("--reply-timeout", type=float, default=5.0, help="seconds a client waits for one reply (5)")
    parser.add_argument("--scenario", choices=["T", "R", "K", "S", "all"], default="all", help="all: T, R, K and S (M always runs)")
    parser.add_argument("--strict", action="store_true", help="-INTERNAL replies fail the test")
    parser.add_argument("--read-only", type=float, default=2.0, help="seconds the primary refuses writes in R (2)")
    parser.add_argument("--statement-timeout", default="1s", help="the instances' --statement-timeout (1s)")
    parser.add_argument("--shutdown-deadline", type=int, default=3, help="the instances' --shutdown-deadline (3)")
    parser.add_argument("--webhook-deadline", type=float, default=75.0, help="seconds the webhook deliveries may take after the storms (75)")
    args = parser.parse_args()
    args.outage = 0.0        # fault-storm's Storm sleeps this long between fault and recovery
    args.verbose = False
    return args


class HAProxy:
    """HAProxy in TCP mode on 127.0.0.1, round robin over the instances; an instance is in
    rotation while its /readyz answers 200, so a draining one (503) is taken out — unless
    none answers 200 (the database is away): then all of them take clients."""

    def __init__(self, args, port, backends, origin="scripts/ha-storm.py: thrown away after the test"):
        self.args = args
        self.port = port
        self.config = os.path.join(args.state, "haproxy.cfg")
        self.log_path = os.path.join(args.state, "haproxy.log")
        self.pid_path = os.path.join(args.state, "haproxy.pid")
        # Each instance twice: checked on /readyz, so a draining one leaves the rotation;
        # and as an unchecked backup, used only when every check fails — the database is
        # away, and /readyz says so on every instance — so that clients still reach an
        # instance and hear -UNAVAILABLE from it, not a connection HAProxy closes.
        servers = "\n".join(
            f"    server s{n} 127.0.0.1:{port_} check port {http} inter 300 fall 1 rise 2\n"
            f"    server s{n}-when-all-down 127.0.0.1:{port_} backup"
            for n, (port_, http) in enumerate(backends, 1))
        with open(self.config, "w") as f:
            f.write(f"""# Written by {origin}.
global
    maxconn 2000

defaults
    mode tcp
    timeout connect 1s
    timeout client 120s
    timeout server 120s
    # A connection refused by an instance that just stopped goes to another.
    retries 2
    option redispatch

frontend stockroom
    bind 127.0.0.1:{port}
    default_backend instances

backend instances
    balance roundrobin
    option httpchk GET /readyz
    option allbackups
{servers}
""")
        self.process = None

    def start(self):
        check = subprocess.run(["haproxy", "-c", "-f", self.config], capture_output=True, text=True)
        if check.returncode != 0:
            raise Failure(f"haproxy -c rejected {self.config}: {check.stderr.strip() or check.stdout.strip()}")
        with open(self.log_path, "a") as log_file:
            self.process = subprocess.Popen(["haproxy", "-db", "-f", self.config], stdout=log_file,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        with open(self.pid_path, "w") as f:
            f.write(str(self.process.pid))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with fs.connect(self.args, self.port) as probe:
                    if probe.ping():
                        return
            except redis.RedisError:
                time.sleep(0.1)
        raise Failure(f"no PING through HAProxy on {self.port} within 10 s (log: {self.log_path})")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if os.path.exists(self.pid_path):
            os.unlink(self.pid_path)


def ha(args, command):
    started = time.monotonic()
    result = subprocess.run([args.ha_script, command], capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise Failure(f"scripts/ha.sh {command} failed: {(result.stderr or result.stdout).strip()}")
    return result.stdout.strip(), time.monotonic() - started


def migrate_at_once(args, instances):
    """M: every instance started at the same moment with --migrate on the empty database."""
    files = sorted(f for f in os.listdir(args.migrations) if f.endswith(".up.sql"))
    errors = []

    def start(instance):
        try:
            instance.start(timeout=60.0)
        except Exception as error:  # noqa: BLE001 — reported below
            errors.append(f"{os.path.basename(instance.log_path)}: {error}")

    threads = [threading.Thread(target=start, args=(instance,)) for instance in instances]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.monotonic() - began
    if errors:
        raise Failure("M: " + "; ".join(errors))
    rows = fs.psql(args, "SELECT version, count(*) FROM stockroom_migrations GROUP BY version ORDER BY version")
    failures = [f"migration {version} recorded {count} times" for version, count in rows if count != "1"]
    # The history's primary key would refuse a second row anyway: the logs say who applied
    # what, and every file must have been applied by exactly one of the instances.
    applied = 0
    for instance in instances:
        with open(instance.log_path) as f:
            applied += sum(1 for line in f if "applied migration" in line)
    if applied != len(files):
        failures.append(f"the instances logged {applied} applied migrations, for {len(files)} files")
    if len(rows) != len(files):
        failures.append(f"{len(rows)} migrations recorded, {len(files)} files in {args.migrations}")
    status = subprocess.run([args.stockroom, "migrate", "status", "--database-url", args.database_url, "--dir", args.migrations],
                            capture_output=True, text=True)
    if status.returncode != 0:
        failures.append(f"stockroom migrate status exited with {status.returncode}: {status.stderr.strip()[:300]}")
    if failures:
        raise Failure("M: " + "; ".join(failures))
    log(f"ok   M ({len(instances)} instances with --migrate at once on an empty database): "
        f"{len(files)} migrations, each applied once (by one of them, as their logs and the history say); "
        f"all serving after {took:.1f} s; migrate status exits 0")


def kill_to_first_commit(args, product_id, killed_wall_clock):
    """Seconds from the kill to the first order of the scenario's product committed on the
    new primary: the earliest created_at after the kill (now() of its transaction, which
    could not start on the dead primary)."""
    (first,), = fs.psql(args, f"""
        SELECT coalesce(extract(epoch FROM min(o.created_at)), 0) FROM orders o
        WHERE o.created_at > to_timestamp({killed_wall_clock})
          AND o.id IN (SELECT order_id FROM order_lines WHERE product_id = {product_id})""")
    first = float(first)
    return first - killed_wall_clock if first else None


def longest_gap(args, product_id):
    """The longest time between two orders of the scenario's product, one after the other:
    how long writes stopped, as the database saw it."""
    (gap,), = fs.psql(args, f"""
        SELECT coalesce(extract(epoch FROM max(gap)), 0) FROM (
            SELECT o.created_at - lag(o.created_at) OVER (ORDER BY o.created_at) AS gap
            FROM orders o WHERE o.id IN (SELECT order_id FROM order_lines WHERE product_id = {product_id})) g""")
    return float(gap)


def run_storm(args, name, title, port, product_id, customers, fault, recover, extra=""):
    storm = fs.Storm(args, name, port, product_id, customers)
    storm.run(fault, recover)
    stored, _, failures = fs.check_invariants(args, storm)
    line = fs.summary(storm, stored, title) + extra
    return storm, failures, line


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ports = [fs.free_port() for _ in range(2 * args.instances + 1)]
    proxy_port, service_ports, http_ports = ports[0], ports[1:1 + args.instances], ports[1 + args.instances:]
    instances = [fs.Service(args, port, name=f"stockroom-{n}", http_port=http,
                            extra_args=["--migrate", "--dir", args.migrations])
                 for n, (port, http) in enumerate(zip(service_ports, http_ports), 1)]
    proxy = HAProxy(args, proxy_port, list(zip(service_ports, http_ports)))
    receiver = fs.WebhookReceiver()
    failed = False
    started = time.monotonic()
    timings = {}
    try:
        migrate_at_once(args, instances)
        proxy.start()
        front = type("Front", (), {"port": proxy_port})()   # setup talks to "the service": HAProxy
        products, customers, webhook = fs.setup(args, front, receiver)

        victim = instances[1]
        killed = {}

        def kill_primary():
            ha(args, "kill-primary")
            # pg_ctl stop -w returned: the old primary is down, nothing commits there any more.
            killed["wall"] = time.time()

        def switchover():
            killed["wall"] = time.time()
            _, took = ha(args, "failover")
            killed["switchover"] = took
            killed["done"] = time.time()

        def primary_sql(sql):
            node, _ = ha(args, "primary")
            port = int(os.environ["HA_PORT"]) + int(node)
            result = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(port),
                                     "-U", "postgres", "-d", "postgres", "-c", sql, "-c", "SELECT pg_reload_conf()"],
                                    capture_output=True, text=True, timeout=30)
            if result.returncode != 0:
                raise Failure(f"psql on the primary failed: {result.stderr.strip()}")

        def turn_read_only():
            primary_sql("ALTER SYSTEM SET default_transaction_read_only = on")
            time.sleep(args.read_only)

        scenarios = [
            ("T", "SIGTERM to one of the instances, restarted", products["A"], victim.stop, victim.start),
            ("R", f"the primary read-only for {args.read_only:g} s", products["D"], turn_read_only,
             lambda: primary_sql("ALTER SYSTEM RESET default_transaction_read_only")),
            ("K", "the primary killed: pg_autoctl SIGKILL, pg_ctl stop -m immediate", products["B"], kill_primary, lambda: None),
            ("S", "a planned switchover", products["C"], switchover, lambda: None),
        ]
        for name, title, product_id, fault, recover in scenarios:
            if args.scenario not in (name, "all"):
                continue
            if name == "S" and args.scenario == "all":
                # The node killed in K rejoins as a standby first: a switchover needs one.
                _, took = ha(args, "start")
                log(f"     the killed node rejoined as a standby in {took:.1f} s (scripts/ha.sh start)")
            storm, failures, line = run_storm(args, name, title, proxy_port, product_id, customers, fault, recover)
            if name == "R" and not storm.errors.get("-UNAVAILABLE"):
                failures.append("no client saw -UNAVAILABLE while the primary refused writes: the scenario proved nothing")
            if name in ("K", "S"):
                gap = longest_gap(args, product_id)
                if name == "K":
                    first = kill_to_first_commit(args, product_id, killed["wall"])
                    timings[name] = first
                    line += (f"; first order committed on the new primary {first:.2f} s after the primary was down"
                             if first else "; no order committed after the kill")
                    if not first:
                        failures.append("no order committed on the new primary")
                else:
                    line += f"; the switchover took {killed['switchover']:.1f} s"
                line += f"; longest time without an order committed {gap:.2f} s"
            if failures:
                failed = True
                log(f"FAIL {line}")
                for failure in failures[:25]:
                    log(f"  {failure}")
            else:
                log(f"ok   {line}")
        failures, line = fs.check_webhooks(args, receiver, webhook, None)
        if failures:
            failed = True
            log(f"FAIL {line}")
            for failure in failures[:25]:
                log(f"  {failure}")
        else:
            log(f"ok   {line}")
    except Failure as error:
        failed = True
        log(f"FAIL {error}")
    except Exception as error:
        failed = True
        log(f"FAIL {type(error).__name__}: {error}")
        raise
    finally:
        proxy.stop()
        for instance in instances:
            instance.stop()
        receiver.close()
    if failed:
        log(f"logs in {args.state}: stockroom-N.log (instances), haproxy.log")
        sys.exit(1)
    log(f"no order lost or doubled across instances and failovers ({time.monotonic() - started:.1f} s)")


if __name__ == "__main__":
    main()
