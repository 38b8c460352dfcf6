#!/usr/bin/env python3
"""`make ha-serve`: the topology of docs/SCALING.md on this machine, in the foreground
until Ctrl-C: --instances `stockroom serve` over `make ha`'s cluster, behind one HAProxy.

Clients connect to HAProxy (127.0.0.1:7400 by default), which sends each new connection
to the next instance that answers /readyz, as in production. The instances and HAProxy
are the very ones `make test-ha` proves (scripts/ha-storm.py's HAProxy, fault-storm.py's
Service; imported, not copied): every instance starts with --migrate, so the first one
applies pending migrations and the others wait for it. Try, in another shell:

    redis-cli -p 7400 PRODUCT.GET SKU MUG-01
    make ha-kill-primary       # the instances follow the new primary by themselves
    kill -TERM <an instance>   # it drains; HAProxy sends its clients to the others

Ctrl-C (or SIGTERM) drains and stops the instances, then HAProxy. Logs, pid files and
HAProxy's configuration are in --state (.ha/serve).
"""

import argparse
import importlib.util
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("ha_storm", os.path.join(HERE, "ha-storm.py"))
ha_storm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ha_storm)
fs = ha_storm.fs


def log(message):
    print(f"ha-serve: {message}", flush=True)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stockroom", required=True, help="the stockroom binary")
    parser.add_argument("--database-url", required=True, help="the cluster's multi-host URL (make ha prints it)")
    parser.add_argument("--migrations", required=True, help="the migrations folder")
    parser.add_argument("--state", required=True, help="folder for logs, pid files and HAProxy's configuration")
    parser.add_argument("--instances", type=int, default=3, help="stockroom serve instances (3)")
    parser.add_argument("--port", type=int, default=7400, help="HAProxy's port, the one clients use (7400; 0: a free one)")
    parser.add_argument("--first-port", type=int, default=7401,
                        help="the first instance's port; the others follow (7401; 0: free ones)")
    parser.add_argument("--first-http-port", type=int, default=7481,
                        help="the first instance's HTTP port (/readyz, /metrics); the others follow (7481; 0: free ones)")
    parser.add_argument("--statement-timeout", default="5s", help="the instances' --statement-timeout (5s)")
    parser.add_argument("--shutdown-deadline", type=int, default=10, help="the instances' --shutdown-deadline (10)")
    parser.add_argument("--duration", type=float, default=0,
                        help="stop by itself after this many seconds (0: run until Ctrl-C); for the smoke test")
    args = parser.parse_args()
    args.reply_timeout = 5.0   # fault-storm's clients (the start-up PINGs) wait this long for a reply
    return args


def main():
    args = parse_args()
    os.makedirs(args.state, exist_ok=True)
    stop = {"signal": None}

    def on_signal(number, _frame):
        stop["signal"] = number
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def ports(first):
        return [first + n if first else fs.free_port() for n in range(args.instances)]
    backends = list(zip(ports(args.first_port), ports(args.first_http_port)))
    args.port = args.port or fs.free_port()
    instances = [fs.Service(args, port, name=f"stockroom-{n}", http_port=http,
                            extra_args=["--migrate", "--dir", args.migrations])
                 for n, (port, http) in enumerate(backends, 1)]
    proxy = ha_storm.HAProxy(args, args.port, backends, origin="scripts/ha-serve.py (make ha-serve), anew at each start")
    status = 0
    try:
        for instance in instances:
            instance.start(timeout=60)   # the first one may be applying migrations
            log(f"{os.path.basename(instance.log_path)[:-4]}: 127.0.0.1:{instance.port}, HTTP {instance.http_port}, pid {instance.process.pid}")
        proxy.start()
        log(f"HAProxy: 127.0.0.1:{args.port} over {args.instances} instance(s), pid {proxy.process.pid}")
        log(f"ready: redis-cli -p {args.port} PING; logs in {args.state}; Ctrl-C stops it all")
        deadline = time.monotonic() + args.duration if args.duration > 0 else None
        while stop["signal"] is None and (deadline is None or time.monotonic() < deadline):
            for instance in instances:
                if instance.process.poll() is not None and stop["signal"] is None:
                    # An instance stopped by hand (SIGTERM to try a drain) is left stopped:
                    # HAProxy already routes around it. Said once.
                    log(f"{os.path.basename(instance.log_path)[:-4]} exited ({instance.process.returncode}); the others serve on")
                    instance.process = None
                    if os.path.exists(instance.pid_path):
                        os.unlink(instance.pid_path)
            instances = [instance for instance in instances if instance.process is not None]
            time.sleep(0.2)
    except fs.Failure as error:
        log(f"failed: {error}")
        status = 1
    finally:
        log("stopping: the instances drain, then HAProxy")
        for instance in instances:
            instance.stop()
        proxy.stop()
    sys.exit(status)


if __name__ == "__main__":
    main()
