#!/usr/bin/env python3
"""Crash consistency of ORDER.PLACE: no order is lost or doubled, and no order's webhook
is lost, when the service or the database dies in the middle of a storm of orders.

Run by scripts/test-faults.sh (`make test-faults`), which makes a throwaway, migrated
PostgreSQL cluster and passes its whereabouts; this script owns the service process.

Each scenario is a storm: --clients threads, one customer each, place orders of quantity
1 of a product of their own scenario, each under a unique idempotency key, for a bit more
keys than there is stock. A client retries the SAME key — reconnecting and logging in
again as needed, with a small backoff, until an overall deadline — after a connection
error or an error reply that is not definitive, until it gets a definitive answer: the
order, or -OUTOFSTOCK. Once a third of the stock is sold, the fault:

  A. the service is killed with SIGKILL, then started again on the same port — with
     order events committed but not yet delivered to the webhook (below);
  B. PostgreSQL is stopped with `pg_ctl stop -m immediate` (a crash: no checkpoint), then
     started again; the service stays up and must recover by itself.
  C. PostgreSQL hangs: every process of the cluster is stopped with SIGSTOP for longer
     than the service's deadlines, then resumed with SIGCONT — a database that neither
     answers nor fails. Every request must still be answered (-TIMEOUT, -UNAVAILABLE)
     before the client's own reply timeout: with --strict, a client left without a reply
     fails the test.
  D. With PostgreSQL frozen and orders in flight, the service gets SIGTERM: it must exit
     within its --shutdown-deadline.

Then, directly in PostgreSQL: every acknowledged order is stored once, under its key, its
user and its id; nothing else is stored (no order behind a -OUTOFSTOCK or behind a key the
client never saw answered); no (user, key) holds two orders; stock + sold == initial stock;
every stored order has exactly one order.placed event, no event outlives its order, and
the service numbers every event once it runs again.
-INTERNAL replies are counted and retried; with --strict they fail the test.

Webhooks (issue 18: a kill -9 after an order commits and before its delivery, and the
event is delivered after the restart). At setup the admin registers a webhook for order.*
to a receiver in a thread of this script, which verifies every request as Standard
Webhooks says (docs/EVENTS.md) and answers 200, or 503 while told to refuse. It refuses
from the start of A's storm until the kill, which waits for the first refused attempt to
be recorded (no request in flight, whose lease would hold the endpoint for 60 s): the
endpoint's oldest delivery then waits for its retry (5 s) and every order acknowledged
before the kill has its event committed and undelivered — there must be some. After A to
C (before D, which stops the service), within --webhook-deadline: every order.* event
after the endpoint's creation was answered 2xx at least once and no delivery is pending;
every signature was valid; the events pending at the kill were delivered after it; first
deliveries came in event order. Duplicates are counted, not failed (at least once). A
delivery in flight when B or C takes PostgreSQL away cannot be recorded and goes again
when its lease expires: the wait may then be close to a minute.
"""

import argparse
import base64
import collections
import hashlib
import hmac
import http.server
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

PASSWORD = "fault-storm-password"
ADMIN_EMAIL = "storm-admin@example.com"

# Error replies after which the same key is tried again: the order may or may not have
# been written, and asking again with the same key is how a client finds out.
RETRIED = {"UNAVAILABLE", "TIMEOUT", "INDOUBT", "INTERNAL", "SHUTDOWN", "NOAUTH"}


def log(message):
    print(f"fault-storm: {message}", flush=True)


class Failure(Exception):
    pass


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stockroom", required=True, help="the stockroom binary")
    parser.add_argument("--database-url", required=True, help="the throwaway cluster's stockroom database")
    parser.add_argument("--pg-bin", required=True, help="PostgreSQL's bin folder (pg_ctl)")
    parser.add_argument("--pg-data", required=True, help="the throwaway cluster's data folder")
    parser.add_argument("--pg-log", required=True, help="its server log")
    parser.add_argument("--state", required=True, help="folder for the service's log and pid file")
    parser.add_argument("--port", type=int, default=int(os.environ.get("FAULT_SERVICE_PORT", "0")),
                        help="the service's port (default: a free one; FAULT_SERVICE_PORT)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (8)")
    parser.add_argument("--stock", type=int, default=90, help="initial stock of each scenario's product (90)")
    parser.add_argument("--extra-keys", type=float, default=0.25,
                        help="keys beyond the stock, as a fraction of it (0.25): those end in -OUTOFSTOCK")
    parser.add_argument("--fault-at", type=float, default=0.33,
                        help="inject the fault once this fraction of the stock is sold (0.33)")
    parser.add_argument("--outage", type=float, default=1.0, help="seconds the killed part stays down (1.0)")
    parser.add_argument("--deadline", type=float, default=25.0, help="seconds a scenario's clients may take in all (25)")
    parser.add_argument("--reply-timeout", type=float, default=5.0, help="seconds a client waits for one reply (5)")
    parser.add_argument("--scenario", choices=["A", "B", "C", "D", "all"], default="all", help="all: A to D")
    parser.add_argument("--strict", action="store_true", help="-INTERNAL replies, and requests left without a reply while the database hangs, fail the test")
    parser.add_argument("--statement-timeout", default="1s", help="the service's --statement-timeout (1s): its deadline is 0.5 s more, then 1 s of grace")
    parser.add_argument("--shutdown-deadline", type=int, default=3, help="the service's --shutdown-deadline, in seconds (3)")
    parser.add_argument("--freeze", type=float, default=4.0, help="seconds PostgreSQL stays frozen in C (4): longer than the service's deadlines")
    parser.add_argument("--webhook-deadline", type=float, default=75.0,
                        help="seconds the storms' webhook deliveries may take after the last storm (75): "
                             "a delivery whose outcome could not be recorded while PostgreSQL was away "
                             "is sent again when its 60 s lease expires")
    parser.add_argument("--verbose", action="store_true", help="also list the in-doubt orders and what their clients saw")
    return parser.parse_args()


def free_port():
    """A free port below the ephemeral range: while the service is down, no client socket of
    another process (tests run in parallel) can take it as its local port."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(200):
        port = random.randrange(max(1024, low - 12000), low - 1000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise Failure("no free port for the service; pass one with --port")


def as_postgres(command):
    """PostgreSQL refuses to run as root: its commands run as `postgres` then, from /."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--"] + command
    return subprocess.run(command, cwd="/", capture_output=True, text=True)


def psql(args, sql):
    result = subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", args.database_url, "-c", sql],
        capture_output=True, text=True, timeout=60,
    )
    if result.returncode != 0:
        raise Failure(f"psql failed: {result.stderr.strip()}\n  for: {sql}")
    return [line.split("\t") for line in result.stdout.splitlines() if line]


def connect(args, port):
    # No retries of redis-py's own: every retry is this script's, and counted.
    return redis.Redis(
        host="127.0.0.1", port=port, protocol=2, decode_responses=True, single_connection_client=True,
        socket_timeout=args.reply_timeout, socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0),
    )


def error_code(error):
    code = getattr(error, "status_code", None)
    return code or (str(error).split(" ", 1)[0] or "?")


class Service:
    """`stockroom serve` on a fixed port, as a child process that can be killed."""

    def __init__(self, args, port, name="stockroom", extra_args=(), http_port=0):
        self.args = args
        self.port = port
        self.process = None
        # Several services (scripts/ha-storm.py) keep logs and pid files of their own names.
        self.log_path = os.path.join(args.state, f"{name}.log")
        self.pid_path = os.path.join(args.state, f"{name}.pid")
        self.extra_args = list(extra_args)
        self.http_port = http_port
        self.starts = 0

    def start(self, timeout=20.0):
        self.starts += 1
        with open(self.log_path, "a") as log_file:
            log_file.write(f"\n===== fault-storm: start #{self.starts} at {time.strftime('%H:%M:%S')} =====\n")
            log_file.flush()
            # A hung server accepts no connection either: give up on one after 2 s.
            url = self.args.database_url + ("&" if "?" in self.args.database_url else "?") + "connect_timeout=2"
            env = dict(os.environ, DATABASE_URL=url)
            self.process = subprocess.Popen(
                # --http-port 0 (unless given): a free port, so storms in other checkouts never compete for 7380.
                [self.args.stockroom, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--http-port", str(self.http_port),
                 "--database-url", url, "--statement-timeout", self.args.statement_timeout,
                 "--shutdown-deadline", str(self.args.shutdown_deadline)] + self.extra_args,
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            )
        with open(self.pid_path, "w") as pid_file:
            pid_file.write(str(self.process.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise Failure(f"the service exited with {self.process.returncode} on start (log: {self.log_path})")
            try:
                with connect(self.args, self.port) as probe:
                    if probe.ping():
                        return
            except redis.RedisError:
                time.sleep(0.05)
        raise Failure(f"the service did not answer PING within {timeout:.0f} s of its start (log: {self.log_path})")

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        os.unlink(self.pid_path)

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            log(f"the service did not stop within 15 s of SIGTERM; killed (log: {self.log_path})")
            self.process.kill()
            self.process.wait()
        if os.path.exists(self.pid_path):
            os.unlink(self.pid_path)


class Database:
    def __init__(self, args):
        self.args = args
        self.pg_ctl = os.path.join(args.pg_bin, "pg_ctl")
        self.frozen = False

    def crash(self):
        result = as_postgres([self.pg_ctl, "-D", self.args.pg_data, "-m", "immediate", "-w", "stop"])
        if result.returncode != 0:
            raise Failure(f"pg_ctl stop -m immediate failed: {result.stderr.strip() or result.stdout.strip()}")

    def start(self):
        result = as_postgres([self.pg_ctl, "-D", self.args.pg_data, "-l", self.args.pg_log, "-w", "-t", "60", "start"])
        if result.returncode != 0:
            raise Failure(f"PostgreSQL did not start again (log: {self.args.pg_log}): {result.stderr.strip()}")


    def freeze(self, sig):
        """SIGSTOP or SIGCONT to the postmaster and every process it started."""
        with open(os.path.join(self.args.pg_data, "postmaster.pid")) as pid_file:
            postmaster = int(pid_file.readline())
        children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
        for pid in [postmaster] + [int(child) for child in children]:
            os.kill(pid, sig)
        self.frozen = sig == signal.SIGSTOP


class WebhookReceiver:
    """An HTTP endpoint for the storm's webhook, on 127.0.0.1 in a thread of its own. It
    checks every request as a Standard Webhooks receiver must (docs/EVENTS.md: the
    `v1,` HMAC-SHA256 of `<webhook-id>.<webhook-timestamp>.<body>`, keyed with the
    secret's base64, a timestamp within five minutes) and records, for each, the event
    id, when it came, whether it was signed right, and the answer: 200; 503 while
    refusing; 401 to a request it cannot verify."""

    def __init__(self):
        self.lock = threading.Lock()
        self.key = None
        self.refusing = False
        self.hold = 0.0      # seconds to sit on a request before answering it
        self.arrived = 0     # requests read, answered or not
        self.requests = []   # (sequence, monotonic time, event id or None, signature valid, status, why invalid)
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the service's HTTP client expects
            # The status line and headers go out before the body: without this, Nagle's
            # algorithm holds the body for the client's delayed ACK, 40 ms a request.
            disable_nagle_algorithm = True

            def do_POST(self):
                body = self.read_body()
                now = time.monotonic()
                event_id, valid, why = receiver.verify(self.headers, body)
                with receiver.lock:
                    hold = receiver.hold
                    receiver.arrived += 1
                if hold:
                    time.sleep(hold)
                with receiver.lock:
                    # As a receiver should, it takes nothing it cannot verify.
                    status = 401 if not valid else 503 if receiver.refusing else 200
                    receiver.requests.append((len(receiver.requests), now, event_id, valid, status, why))
                answer = {200: b"ok\n", 401: b"bad signature\n", 503: b"refused\n"}[status]
                self.send_response(status)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def read_body(self):
                if "chunked" in self.headers.get("transfer-encoding", "").lower():
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("content-length") or 0))

            def log_message(self, *_):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def use_secret(self, secret):
        with self.lock:
            self.key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)

    def refuse(self, refusing):
        """Answer 503 (True) or 200 from now on; returns how many requests came before."""
        with self.lock:
            self.refusing = refusing
            return len(self.requests)

    def verify(self, headers, body):
        """(event id, signature valid, why not) for one request."""
        msg_id, ts, signatures = headers.get("webhook-id"), headers.get("webhook-timestamp"), headers.get("webhook-signature")
        if not msg_id or not ts or not signatures:
            return None, False, "a webhook-* header is missing"
        event_id = int(msg_id[4:]) if msg_id.startswith("evt_") and msg_id[4:].isdigit() else None
        if event_id is None:
            return None, False, f"webhook-id {msg_id!r} is not evt_<event id>"
        try:
            timestamp = int(ts)
        except ValueError:
            return event_id, False, f"webhook-timestamp {ts!r} is not unix seconds"
        if abs(time.time() - timestamp) > 300:
            return event_id, False, f"webhook-timestamp {ts} is more than 5 minutes off"
        with self.lock:
            key = self.key
        if key is None:
            return event_id, False, "a request before the webhook was created"
        mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
        expected = "v1," + base64.b64encode(mac).decode()
        if not any(hmac.compare_digest(expected, s) for s in signatures.split(" ")):
            return event_id, False, "the signature does not match"
        try:
            message = json.loads(body)
            if message["data"]["id"] != event_id or message["type"] != message["data"]["type"]:
                return event_id, False, f"the body is another event: {body[:120]!r}"
        except (ValueError, KeyError, TypeError) as error:
            return event_id, False, f"the body is not an event ({error})"
        return event_id, True, None

    def snapshot(self):
        with self.lock:
            return list(self.requests)

    def delivered(self):
        """Event ids answered 200 so far."""
        with self.lock:
            return {event_id for _, _, event_id, _, status, _ in self.requests if status == 200}

    def wait_for_refusal(self, since, timeout):
        """The event id of the first request after the first `since` that was refused, or
        None if none was within `timeout` seconds. Once one is, the endpoint's oldest
        delivery has failed, and every later one waits behind its retry (5 s less up to a
        fifth)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                for request in self.requests[since:]:
                    if request[4] == 503:
                        return request[2]
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Storm:
    """One scenario's clients, their outcomes and what they saw."""

    def __init__(self, args, name, port, product_id, customers):
        self.args = args
        self.name = name
        self.port = port
        self.product_id = product_id
        self.customers = customers  # [(user_id, email, token)]
        self.lock = threading.Lock()
        self.acknowledged = {}       # key -> (order id, user id)
        self.out_of_stock = set()
        self.unresolved = {}         # key -> last error, when the deadline struck
        self.retried_keys = set()    # keys answered after at least one failed attempt
        self.trails = collections.defaultdict(list)  # key -> what its failed attempts saw
        self.anomalies = []          # replies that break the protocol's promises
        self.errors = collections.Counter()
        self.retries = 0
        self.first_failure = None
        self.first_success_after_restart = None
        self.restart_began = None
        self.fault_wanted = threading.Event()
        self.fault_at = max(1, int(args.stock * args.fault_at))
        total = args.stock + max(args.clients, int(args.stock * args.extra_keys))
        self.keys = [[] for _ in customers]
        for index in range(total):
            self.keys[index % len(customers)].append(f"{name}-{index:04d}")
        self.total_keys = total

    # -- bookkeeping, under the lock --

    def failed(self, kind, key=None):
        with self.lock:
            if key is not None:
                self.trails[key].append(kind)
            self.errors[kind] += 1
            if self.first_failure is None:
                self.first_failure = time.monotonic()

    def answered(self):
        now = time.monotonic()
        with self.lock:
            if self.restart_began is not None and self.first_success_after_restart is None and now >= self.restart_began:
                self.first_success_after_restart = now

    # -- one client --

    def run_client(self, index, deadline):
        user_id, email, token = self.customers[index]
        client = None

        def drop():
            nonlocal client
            if client is not None:
                try:
                    client.close()
                except Exception:
                    pass
            client = None

        def log_in():
            nonlocal client, token
            client = connect(self.args, self.port)
            try:
                try:
                    client.execute_command("AUTH", token)
                except redis.AuthenticationError as error:
                    if error_code(error) != "WRONGPASS":
                        raise
                    # The session is gone (it should not be: sessions live in the database).
                    self.failed("-WRONGPASS (session token)")
                    reply = client.execute_command("SESSION.LOGIN", json.dumps({"email": email, "password": PASSWORD}))
                    token = json.loads(reply)["token"]
            except BaseException:
                drop()  # not logged in: the next attempt starts over on a new connection
                raise

        # Seconds between one key's answer and the next key (ha-storm.py: a storm that lasts
        # through a failover); none here.
        pace = getattr(self.args, "pace", 0.0)
        for number, key in enumerate(self.keys[index]):
            if pace and number:
                time.sleep(pace)
            payload = json.dumps({"lines": [{"product_id": self.product_id, "quantity": 1}], "idempotency_key": key},
                                 separators=(",", ":"))
            tries = 0
            last_error = None
            while True:
                if time.monotonic() > deadline:
                    with self.lock:
                        self.unresolved[key] = last_error
                    break
                if tries:
                    with self.lock:
                        self.retries += 1
                    time.sleep(min(0.4, 0.02 * 2 ** min(tries, 5)) * random.uniform(0.5, 1.0))
                tries += 1
                try:
                    if client is None:
                        log_in()
                    reply = client.execute_command("ORDER.PLACE", payload)
                except redis.TimeoutError:
                    last_error = "client timeout"
                    self.failed(f"no reply in {self.args.reply_timeout:g} s", key)
                    drop()
                    continue
                except redis.AuthenticationError as error:  # NOAUTH or WRONGPASS; redis-py closed the connection
                    last_error = f"-{error_code(error)} {error}"
                    self.failed(f"-{error_code(error)}", key)
                    drop()
                    continue
                except redis.ConnectionError as error:
                    last_error = f"connection error: {error}"
                    self.failed("connection errors", key)
                    drop()
                    continue
                except redis.ResponseError as error:
                    code = error_code(error)
                    message = str(error)
                    if code == "OUTOFSTOCK":
                        with self.lock:
                            self.out_of_stock.add(key)
                        self.answered()
                        break
                    last_error = f"-{code} {message}"
                    if code in RETRIED or (code == "CONFLICT" and "concurrently" in message):
                        self.failed(f"-{code}", key)
                        if code == "SHUTDOWN":
                            drop()
                        continue
                    # Not definitive and not retryable: the service broke a promise.
                    with self.lock:
                        self.anomalies.append(f"{key}: unexpected reply -{code} {message}")
                        self.unresolved[key] = last_error
                        self.errors[f"-{code}"] += 1
                    break
                except (OSError, ValueError, KeyError) as error:
                    last_error = f"{type(error).__name__}: {error}"
                    self.failed(f"client-side {type(error).__name__}", key)
                    drop()
                    continue
                try:
                    order = json.loads(reply)
                    problems = []
                    if order.get("idempotency_key") != key:
                        problems.append(f"idempotency_key {order.get('idempotency_key')!r}")
                    if order.get("user_id") != user_id:
                        problems.append(f"user_id {order.get('user_id')!r}, expected {user_id}")
                    lines = order.get("lines") or []
                    if [(line.get("product_id"), line.get("quantity")) for line in lines] != [(self.product_id, 1)]:
                        problems.append(f"lines {lines!r}")
                    order_id = order["id"]
                except (ValueError, KeyError, TypeError, AttributeError) as error:
                    with self.lock:
                        self.anomalies.append(f"{key}: reply is not an order ({error}): {str(reply)[:200]}")
                        self.unresolved[key] = "bad reply"
                    break
                with self.lock:
                    if tries > 1:
                        self.retried_keys.add(key)
                    if problems:
                        self.anomalies.append(f"{key}: order {order_id} does not match its request: {'; '.join(problems)}")
                    self.acknowledged[key] = (order_id, user_id)
                self.answered()
                break
        drop()

    # -- the whole scenario --

    def run(self, fault, recover, before_fault=None):
        started = time.monotonic()
        deadline = started + self.args.deadline
        threads = [threading.Thread(target=self.run_client, args=(i, deadline), daemon=True)
                   for i in range(len(self.customers))]
        for thread in threads:
            thread.start()
        # The fault strikes once enough is sold, while the clients are busy.
        fault_deadline = started + self.args.deadline / 2
        while time.monotonic() < fault_deadline:
            with self.lock:
                sold = len(self.acknowledged)
            if sold >= self.fault_at:
                break
            time.sleep(0.002)
        if before_fault is not None:
            before_fault()
        with self.lock:
            sold_at_fault = len(self.acknowledged)
        fault_time = time.monotonic()
        self.fault_wall_clock = time.time()
        fault()
        time.sleep(self.args.outage)
        with self.lock:
            self.restart_began = time.monotonic()
        recover()
        restarted = time.monotonic()
        for thread in threads:
            thread.join(max(0.1, deadline + self.args.reply_timeout + 2 - time.monotonic()))
        hung = sum(thread.is_alive() for thread in threads)
        self.timing = {
            "sold_at_fault": sold_at_fault,
            "down": restarted - fault_time,
            "restart": restarted - self.restart_began,
            "outage": (self.first_success_after_restart - self.first_failure)
            if self.first_failure is not None and self.first_success_after_restart is not None else None,
            "elapsed": time.monotonic() - started,
            "hung": hung,
        }


def check_invariants(args, storm):
    """The scenario's orders as PostgreSQL has them, against what the clients were told."""
    failures = list(storm.anomalies)
    if storm.timing["hung"]:
        failures.append(f"{storm.timing['hung']} client(s) still waiting after the deadline (the service hangs?)")
    if storm.unresolved:
        sample = ", ".join(f"{k} ({v})" for k, v in sorted(storm.unresolved.items())[:5])
        failures.append(f"{len(storm.unresolved)} key(s) without a definitive answer by the deadline: {sample}")
    if args.strict and storm.errors.get("-INTERNAL"):
        failures.append(f"{storm.errors['-INTERNAL']} -INTERNAL replies (--strict)")
    unanswered = storm.errors.get(f"no reply in {args.reply_timeout:g} s")
    if args.strict and unanswered and storm.name == "C":
        failures.append(f"{unanswered} request(s) left without a reply for {args.reply_timeout:g} s while the database hung (--strict)")

    duplicates = psql(args, "SELECT user_id, idempotency_key, count(*) FROM orders "
                            "WHERE idempotency_key IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1")
    for user_id, key, count in duplicates:
        failures.append(f"key {key} of user {user_id} holds {count} orders")

    prefix = storm.name + "-"
    rows = psql(args, f"""
        SELECT o.id, o.user_id, o.idempotency_key, o.status, extract(epoch FROM o.created_at),
               (SELECT count(*) FROM order_lines l WHERE l.order_id = o.id),
               (SELECT coalesce(sum(l.quantity), 0) FROM order_lines l WHERE l.order_id = o.id AND l.product_id = {storm.product_id}),
               (SELECT count(*) FROM order_status_history h WHERE h.order_id = o.id),
               (SELECT count(*) FROM events e WHERE e.type = 'order.placed' AND e.subject_id = o.id)
        FROM orders o
        WHERE o.idempotency_key LIKE '{prefix}%'
           OR o.id IN (SELECT order_id FROM order_lines WHERE product_id = {storm.product_id})
        ORDER BY o.id""")
    stored = {}
    # Orders whose client lost the reply (its request was in flight at the fault) and
    # learned of them by retrying the key: the case idempotency keys exist for.
    storm.in_doubt = []
    for order_id, user_id, key, status, created, line_count, quantity, history, placed_events in rows:
        # The outbox: the order and its event commit together, whatever crashed.
        if placed_events != "1":
            failures.append(f"order {order_id} (key {key}) has {placed_events} order.placed events, not 1")
        if key in storm.retried_keys and float(created) < storm.fault_wall_clock:
            seen = collections.Counter(storm.trails[key])
            storm.in_doubt.append(f"{key} (order {order_id}) was written before the fault, its client then saw "
                                  + ", ".join(f"{kind} ×{n}" for kind, n in seen.most_common()))
        if key in stored:
            failures.append(f"key {key}: orders {stored[key][0]} and {order_id}")
        stored[key] = (int(order_id), int(user_id))
        if not key.startswith(prefix) or line_count != "1" or quantity != "1" or history != "1" or status != "pending":
            failures.append(f"order {order_id} (key {key}) is not one pending line of 1 x product {storm.product_id}: "
                            f"{line_count} line(s), quantity {quantity}, {history} history row(s), {status}")

    for key, (order_id, user_id) in sorted(storm.acknowledged.items()):
        if key not in stored:
            failures.append(f"LOST: key {key} was acknowledged as order {order_id} but no order has that key")
        elif stored[key] != (order_id, user_id):
            failures.append(f"key {key} was acknowledged as order {order_id} of user {user_id}, "
                            f"stored as order {stored[key][0]} of user {stored[key][1]}")
    for key, (order_id, _) in sorted(stored.items()):
        if key in storm.out_of_stock:
            failures.append(f"key {key} was answered -OUTOFSTOCK, yet order {order_id} has it")
        elif key not in storm.acknowledged and key not in storm.unresolved:
            failures.append(f"order {order_id} (key {key}) was never acknowledged to its client")
    if len(stored) != len(storm.acknowledged):
        failures.append(f"{len(stored)} orders stored, {len(storm.acknowledged)} acknowledged")

    # Events no order backs (an event that outlived a rolled-back order).
    (orphans,), = psql(args, "SELECT count(*) FROM events e WHERE e.type = 'order.placed' "
                             "AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = e.subject_id)")
    if orphans != "0":
        failures.append(f"{orphans} order.placed event(s) without their order")
    # The service numbers committed events within a second or so of running again.
    deadline = time.monotonic() + 10
    while True:
        (unnumbered,), = psql(args, "SELECT count(*) FROM events WHERE id IS NULL")
        if unnumbered == "0" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if unnumbered != "0":
        failures.append(f"{unnumbered} event(s) still without an id 10 s after the scenario")

    (stock, sold), = psql(args, f"""
        SELECT p.stock, (SELECT coalesce(sum(l.quantity), 0) FROM order_lines l JOIN orders o ON o.id = l.order_id
                         WHERE l.product_id = p.id AND o.status <> 'cancelled')
        FROM products p WHERE p.id = {storm.product_id}""")
    stock, sold = int(stock), int(sold)
    if stock + sold != args.stock:
        failures.append(f"stock {stock} + sold {sold} = {stock + sold}, not the initial {args.stock}")
    # More keys than stock, quantity 1, nothing cancelled: everything is sold, and a key
    # was refused only once the stock was gone.
    if not storm.unresolved and (stock != 0 or sold != args.stock):
        failures.append(f"stock left {stock}, sold {sold} of {args.stock}, yet {len(storm.out_of_stock)} keys were refused -OUTOFSTOCK")
    return stored, stock, failures


class KillWatch:
    """Scenario A's webhook side: the receiver refuses (503) from the start of A's storm,
    a moment before the kill, so that the orders acknowledged by then have events committed
    but not delivered — the endpoint's oldest delivery failed and waits for its retry, the
    later ones behind it — when the service dies with SIGKILL. What those events were is
    kept for the check."""

    def __init__(self, args, port, receiver, webhook):
        self.receiver = receiver
        self.webhook = webhook
        # The admin's, to read the endpoint's deliveries through the service: psql takes
        # longer to start than the storm to sell out.
        self.admin = connect(args, port)
        self.admin.execute_command("AUTH", webhook["admin_token"])
        self.acknowledged_orders = set()   # order ids acknowledged to clients before the kill
        self.delivered_before = set()      # event ids answered 200 before the kill
        self.refused_before_kill = False
        self.killed_at = None
        self.since = receiver.refuse(True)

    def before_kill(self, storm):
        # A request in flight at the kill would keep its delivery leased for 60 s: kill
        # once one was refused and its failure recorded (the lease let go), while the next
        # waits for its retry. The refusal usually came long before the fault is due; the
        # storm is fast, so this waits no longer than it must.
        refused = self.receiver.wait_for_refusal(self.since, 5.0)
        self.refused_before_kill = refused is not None
        deadline = time.monotonic() + 2.0
        while refused is not None and time.monotonic() < deadline and not self.recorded(refused):
            time.sleep(0.002)
        self.admin.close()
        with storm.lock:
            self.acknowledged_orders = {order_id for order_id, _ in storm.acknowledged.values()}
        self.delivered_before = self.receiver.delivered()

    def recorded(self, event_id):
        """Whether the failed attempt at `event_id` is recorded (which lets go the lease)."""
        after = 0
        while True:
            page = json.loads(self.admin.execute_command("WEBHOOK.DELIVERIES", self.webhook["id"], "AFTER", after, "LIMIT", 100))
            for delivery in page["items"]:
                if delivery["event_id"] == event_id:
                    return delivery["attempt_count"] > 0
            if not page["items"] or not page.get("next"):
                return False
            after = page["items"][-1]["id"]

    def kill(self, service):
        service.kill()
        self.killed_at = time.monotonic()
        # Accepting again before the restart: the dead service cannot deliver, and the
        # failed delivery's retry falls due 4–5 s after its refusal, which a slow restart
        # could otherwise meet refused (then it waits 30 s more).
        self.receiver.refuse(False)


def check_webhooks(args, receiver, webhook, watch):
    """Every order.* event numbered after the endpoint was created is delivered (2xx) at
    least once, signed right, first deliveries in event order; the events pending at A's
    kill -9 (`watch`; None when A did not run) are delivered by the restarted service.
    Duplicates are counted, not failed: delivery is at least once. Returns (failures,
    the log line)."""
    rows = psql(args, f"""SELECT id, subject_id, type FROM events
                          WHERE id IS NOT NULL AND id > {webhook['cursor']} AND type LIKE 'order.%' ORDER BY id""")
    expected = {int(event_id) for event_id, _, _ in rows}
    placed = {int(subject): int(event_id) for event_id, subject, kind in rows if kind == "order.placed"}
    started = time.monotonic()
    deadline = started + args.webhook_deadline
    still_pending = None
    while True:
        missing = expected - receiver.delivered()
        if not missing:
            # And the service knows: its last records are written, so that the worker is
            # idle when D freezes PostgreSQL (D is about orders, not deliveries).
            (still_pending,), = psql(args, "SELECT count(*) FROM webhook_deliveries "
                                           f"WHERE endpoint_id = {webhook['id']} AND state = 'pending'")
            if still_pending == "0":
                break
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    waited = time.monotonic() - started
    requests = receiver.snapshot()

    failures = []
    if missing:
        sample = ", ".join(str(event_id) for event_id in sorted(missing)[:10])
        failures.append(f"{len(missing)} of {len(expected)} event(s) not delivered {args.webhook_deadline:g} s after the storms: {sample}")
    elif still_pending != "0":
        failures.append(f"every event reached the receiver, yet {still_pending} deliveries are still pending "
                        f"{args.webhook_deadline:g} s after the storms")
    invalid = [(event_id, why) for _, _, event_id, valid, _, why in requests if not valid]
    if invalid:
        sample = "; ".join(f"evt_{event_id}: {why}" for event_id, why in invalid[:5])
        failures.append(f"{len(invalid)} of {len(requests)} request(s) failed verification: {sample}")
    first = {}   # event id -> (sequence, monotonic time) of its first 2xx
    successes = collections.Counter()
    for sequence, at, event_id, _, status, _ in requests:
        if status == 200:
            successes[event_id] += 1
            first.setdefault(event_id, (sequence, at))
    unexpected = sorted(set(first) - expected)
    if unexpected:
        failures.append(f"{len(unexpected)} delivered event(s) that are not the endpoint's (not order.*, or from before it): "
                        + ", ".join(map(str, unexpected[:10])))
    in_order = [event_id for event_id, _ in sorted(first.items(), key=lambda item: item[1][0])]
    behind = [(earlier, later) for earlier, later in zip(in_order, in_order[1:]) if later < earlier]
    if behind:
        failures.append(f"{len(behind)} first deliveries out of event order: "
                        + ", ".join(f"{later} after {earlier}" for earlier, later in behind[:5]))
    duplicates = sum(count - 1 for count in successes.values())
    refused = sum(1 for request in requests if request[4] == 503)

    at_kill = ""
    if watch is not None:
        pending = {placed[order_id] for order_id in watch.acknowledged_orders if order_id in placed} - watch.delivered_before
        if not pending:
            failures.append(f"no event was pending at the kill -9 ({len(watch.acknowledged_orders)} orders acknowledged, "
                            f"{len(watch.delivered_before)} events delivered, a request refused first: "
                            f"{watch.refused_before_kill}): the restart proves nothing")
        lost = sorted(event_id for event_id in pending if event_id not in first)
        if lost:
            failures.append(f"{len(lost)} of {len(pending)} event(s) pending at the kill -9 never delivered: "
                            + ", ".join(map(str, lost[:10])))
        early = sorted(event_id for event_id in pending if event_id in first and first[event_id][1] < watch.killed_at)
        if early:
            failures.append(f"{len(early)} event(s) counted pending at the kill -9 were delivered before it: "
                            + ", ".join(map(str, early[:10])))
        at_kill = f"{len(pending) - len(lost)} of {len(pending)} pending at the kill -9 delivered after restart, "
    line = (f"webhooks: {len(set(first) & expected)} of {len(expected)} events delivered, {at_kill}"
            f"{duplicates} duplicates, {refused} refused (503), "
            f"{'signatures valid' if not invalid else f'{len(invalid)} bad signatures'}; waited {waited:.1f} s after the storms")
    return failures, line


def summary(storm, stored, title):
    t = storm.timing
    kinds = ["connection errors", "-UNAVAILABLE", "-TIMEOUT", "-INTERNAL"]
    seen = [f"{kind} ×{storm.errors.get(kind, 0)}" for kind in kinds]
    seen += [f"{kind} ×{n}" for kind, n in sorted(storm.errors.items()) if kind not in kinds]
    outage = f"{t['outage']:.2f} s" if t["outage"] is not None else "n/a"
    return (f"{storm.name} ({title}): keys {storm.total_keys}, orders acknowledged {len(storm.acknowledged)}, "
            f"stored {len(stored)}, -OUTOFSTOCK {len(storm.out_of_stock)}, retries {storm.retries}, "
            f"in-doubt orders found by retrying {len(storm.in_doubt)}; "
            f"errors: {', '.join(seen)}; fault after {t['sold_at_fault']} orders, down {t['down']:.2f} s "
            f"(restart {t['restart']:.2f} s), outage for clients {outage}; {t['elapsed']:.1f} s")


def shutdown_with_frozen_database(args, service, database, product_id, customers, receiver):
    """D: SIGTERM while PostgreSQL hangs, orders wait on it and a webhook request is in
    flight (the receiver sits on it); the service must exit within its
    --shutdown-deadline. Its clients get -SHUTDOWN, -TIMEOUT or a closed connection; no
    invariant of orders is checked (nothing can be committed while frozen). The webhook
    delivery cannot be recorded with the database frozen: it is abandoned to its lease."""
    # A webhook request in flight: an order whose event the receiver sits on.
    with receiver.lock:
        receiver.hold = 30.0
        arrived = receiver.arrived
    placer = connect(args, service.port)
    placer.execute_command("AUTH", customers[0][2])
    placer.execute_command("ORDER.PLACE", json.dumps({"lines": [{"product_id": product_id, "quantity": 1}], "idempotency_key": "D-webhook"}))
    placer.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with receiver.lock:
            if receiver.arrived > arrived:
                break
        time.sleep(0.01)
    else:
        raise Failure("D: the order's webhook request did not reach the receiver within 5 s")
    clients = []
    for _, _, token in customers:
        client = connect(args, service.port)
        client.execute_command("AUTH", token)
        clients.append(client)
    database.freeze(signal.SIGSTOP)
    try:
        def place(client, index):
            payload = json.dumps({"lines": [{"product_id": product_id, "quantity": 1}], "idempotency_key": f"D-{index:04d}"})
            try:
                client.execute_command("ORDER.PLACE", payload)
            except redis.RedisError:
                pass
        threads = [threading.Thread(target=place, args=(client, index), daemon=True) for index, client in enumerate(clients)]
        for thread in threads:
            thread.start()
        time.sleep(0.3)  # the orders are in the service, waiting on the database
        started = time.monotonic()
        service.process.send_signal(signal.SIGTERM)
        try:
            service.process.wait(timeout=args.shutdown_deadline + 10)
        except subprocess.TimeoutExpired:
            pass
        took = time.monotonic() - started
        exited = service.process.poll() is not None
    finally:
        database.freeze(signal.SIGCONT)
    for client in clients:
        try:
            client.close()
        except Exception:
            pass
    limit = args.shutdown_deadline + 0.5
    if exited and took <= limit:
        log(f"ok   D (SIGTERM with PostgreSQL frozen, {len(clients)} orders waiting, a webhook request in flight): exited with {service.process.returncode} in {took:.2f} s (--shutdown-deadline {args.shutdown_deadline})")
        return True
    log(f"FAIL D (SIGTERM with PostgreSQL frozen): {'exited' if exited else 'still running'} after {took:.2f} s, more than {limit:g} s")
    if not exited:
        service.process.kill()
        service.process.wait()
    return False


def setup(args, service, receiver):
    """An admin (through `stockroom admin create`), --clients customers sharing its password
    hash (hashing costs seconds in a loop; the hash is what logging in checks), logged in;
    and a webhook for order.* events to `receiver`."""
    result = subprocess.run([args.stockroom, "admin", "create", ADMIN_EMAIL, "--name", "Storm Admin",
                             "--database-url", args.database_url], input=PASSWORD + "\n",
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise Failure(f"stockroom admin create failed: {result.stderr.strip()}")
    psql(args, f"""
        INSERT INTO users (email, name, role, password_hash)
        SELECT 'storm-customer-' || n || '@example.com', 'Storm customer ' || n, 'customer', a.password_hash
        FROM generate_series(1, {args.clients}) n, users a WHERE a.email = '{ADMIN_EMAIL}'""")
    admin = connect(args, service.port)
    admin_token = json.loads(admin.execute_command("SESSION.LOGIN", json.dumps({"email": ADMIN_EMAIL, "password": PASSWORD})))["token"]
    products = {}
    for name in ("A", "B", "C", "D"):
        reply = admin.execute_command("PRODUCT.CREATE", json.dumps({
            "sku": f"STORM-{name}", "name": f"Fault storm {name}", "description": "", "price_cents": 100,
            "currency": "EUR", "stock": args.stock}))
        products[name] = json.loads(reply)["id"]
    created = json.loads(admin.execute_command("WEBHOOK.CREATE", json.dumps({
        "url": receiver.url, "events": ["order.*"], "description": "fault storm"})))
    receiver.use_secret(created["secret"])
    admin.close()
    # Endpoints get the events fanned out after the cursor (migration 0009). Read after
    # the endpoint exists, it may be past a few of setup's product events; no order
    # exists yet, so every order.* event after it is the endpoint's.
    (cursor,), = psql(args, "SELECT last_event_id FROM webhook_cursor")
    webhook = {"id": created["id"], "cursor": int(cursor), "admin_token": admin_token}
    customers = []
    for n in range(1, args.clients + 1):
        email = f"storm-customer-{n}@example.com"
        client = connect(args, service.port)
        login = json.loads(client.execute_command("SESSION.LOGIN", json.dumps({"email": email, "password": PASSWORD})))
        customers.append((login["user"]["id"], email, login["token"]))
        client.close()
    return products, customers, webhook


def main():
    args = parse_args()
    # Stopped by test-faults.sh (interrupted): through `finally`, which stops the service.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    port = args.port or free_port()
    service = Service(args, port)
    database = Database(args)
    receiver = WebhookReceiver()
    watch = None
    failed = False
    started = time.monotonic()
    try:
        service.start()
        products, customers, webhook = setup(args, service, receiver)
        scenarios = {
            "A": ("kill -9 the service", lambda: watch.kill(service), lambda: service.start()),
            "B": ("pg_ctl stop -m immediate", database.crash, database.start),
            "C": ("PostgreSQL frozen by SIGSTOP", lambda: database.freeze(signal.SIGSTOP),
                  lambda: database.freeze(signal.SIGCONT)),
        }
        for name, (title, fault, recover) in scenarios.items():
            if args.scenario not in (name, "all"):
                continue
            outage = args.outage
            if name == "C":
                args.outage = max(args.outage, args.freeze)
            storm = Storm(args, name, port, products[name], customers)
            before_fault = None
            if name == "A":
                watch = KillWatch(args, port, receiver, webhook)  # the receiver refuses from now until the kill
                before_fault = lambda: watch.before_kill(storm)
            storm.run(fault, recover, before_fault)
            stored, stock, failures = check_invariants(args, storm)
            line = summary(storm, stored, title)
            if failures:
                failed = True
                log(f"FAIL {line}")
                for failure in failures[:25]:
                    log(f"  {failure}")
                if len(failures) > 25:
                    log(f"  … and {len(failures) - 25} more")
            else:
                log(f"ok   {line}")
            if args.verbose:
                for detail in storm.in_doubt:
                    log(f"  in doubt: {detail}")
            if storm.errors.get("-INTERNAL") and not args.strict:
                log(f"  note: {storm.errors['-INTERNAL']} -INTERNAL replies (a failure with --strict); "
                    f"their request ids are in {service.log_path}")
            args.outage = outage
        # Before D, which stops the service: delivery runs inside it.
        if args.scenario != "D":
            failures, line = check_webhooks(args, receiver, webhook, watch)
            if failures:
                failed = True
                log(f"FAIL {line}")
                for failure in failures[:25]:
                    log(f"  {failure}")
            else:
                log(f"ok   {line}")
        if args.scenario in ("D", "all"):
            if not shutdown_with_frozen_database(args, service, database, products["D"], customers, receiver):
                failed = True
    except Failure as error:
        failed = True
        log(f"FAIL {error}")
    except Exception as error:  # a bug of this script, or of the service breaking it
        failed = True
        log(f"FAIL {type(error).__name__}: {error}")
        raise
    finally:
        if database.frozen:  # interrupted in scenario C: a stopped cluster cannot be shut down
            database.freeze(signal.SIGCONT)
        service.stop()
        receiver.close()
    if failed:
        log(f"logs: service {service.log_path}, PostgreSQL {args.pg_log}")
        sys.exit(1)
    log(f"no order lost or doubled ({time.monotonic() - started:.1f} s)")


if __name__ == "__main__":
    main()

