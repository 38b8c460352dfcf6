#!/usr/bin/env python3
"""CPU time of one benchmark run, split by who spent it: the command itself (its own
process tree, from rusage), every PostgreSQL process (backends that exit during the run
included: their time is read from the postmaster's reaped-children counters), and any
server given with --pid (several --pid for several: a service and PgBouncer in front of
PostgreSQL, say). Counts CPU time rather than throughput, which on a shared,
noisy machine moves much less between runs. (A backend that was already running and
exits during the run counts its whole life: keep long-lived connections open across it,
as a server's pool does.)

    scripts/cpu-split.py [--pid PID]... [--per N] [--record FILE] [--from-line TEXT] [--perf FILE] -- COMMAND...
    scripts/cpu-split.py --per 100000 -- pgbench -n -S -M prepared -c 8 -j 2 -t 12500 URL
    scripts/cpu-split.py --pid "$(pgrep -f 'stockroom serve')" --per 100000 -- \\
        redis-benchmark -p 7399 -c 8 -n 100000 -r 100000 -q PRODUCT.GET SKU BENCH-__rand_int__

With --per N the times are also given in microseconds per operation. With --record FILE
the total CPU seconds of all of them, then the command's own, are also written to FILE,
for scripts (make bench).
With --from-line TEXT counting starts when the command prints a line containing TEXT
(`stockroom bench orders` prints one once its clients are logged in: their Argon2
hashes are not the orders' cost). With --perf FILE, `perf stat -a -x, -e instructions -o FILE`
counts every instruction on the machine over the same window (from --from-line's line on,
if given): started beside the command rather than in front of it, so that the command's
own CPU and the --from-line start stay the command's, not perf's.
"""
import argparse
import os
import resource
import signal
import subprocess
import sys

TICK = os.sysconf("SC_CLK_TCK")


def processes():
    """pid -> (name, own CPU ticks, reaped children's CPU ticks)."""
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        found[pid] = (name, int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14]))
    return found


def postgres_ticks(before, after):
    total = 0
    for pid, (name, own, children) in after.items():
        if name != "postgres":
            continue
        own0, children0 = before[pid][1:] if pid in before else (0, 0)
        total += (own - own0) + (children - children0)
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pid", type=int, action="append", default=[], help="a server to count as well (repeatable)")
    parser.add_argument("--per", type=int, help="operations in the run, for microseconds per operation")
    parser.add_argument("--record", help="a file to write the total CPU seconds to")
    parser.add_argument("--from-line", help="start counting when the command prints a line containing this")
    parser.add_argument("--perf", help="count instructions system-wide with perf stat into this file")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")

    perf = None

    def start_perf():
        # Without a command, perf stat -a counts until it is interrupted.
        return subprocess.Popen(["perf", "stat", "-a", "-x,", "-e", "instructions", "-o", args.perf])

    before = processes()
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if args.perf and not args.from_line:
        perf = start_perf()
    # CPU the command had spent when counting started, from /proc (all its threads).
    skipped_user = skipped_system = 0.0
    if args.from_line:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        for line in child.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            if args.from_line in line and skipped_user == skipped_system == 0.0:
                before = processes()
                if args.perf:
                    perf = start_perf()
                with open(f"/proc/{child.pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                skipped_user, skipped_system = int(fields[11]) / TICK, int(fields[12]) / TICK
        status = child.wait()
    else:
        status = subprocess.run(command).returncode
    # Read before perf is reaped, so that its CPU is not counted as the command's.
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    after = processes()
    if perf:
        perf.send_signal(signal.SIGINT)
        perf.wait()

    rows = [
        ("command", usage1.ru_utime - usage0.ru_utime - skipped_user, usage1.ru_stime - usage0.ru_stime - skipped_system),
        ("postgres", postgres_ticks(before, after) / TICK, None),
    ]
    for number in args.pid:
        pid = str(number)
        if pid not in before or pid not in after:
            sys.exit(f"cpu-split: no process {pid} throughout the run")
        rows.append((f"server {after[pid][0]} ({pid})", (after[pid][1] - before[pid][1]) / TICK, None))
    if args.record:
        # The total first (what most callers read), then the command's own part.
        with open(args.record, "w") as f:
            f.write(f"{sum(seconds + (system or 0) for _, seconds, system in rows):.4f} {rows[0][1] + rows[0][2]:.4f}\n")
    for who, seconds, system in rows:
        total = seconds + (system or 0)
        line = f"{who}: {total:.2f} s"
        if system is not None:
            line += f" (user {seconds:.2f}, system {system:.2f})"
        if args.per:
            line += f", {total * 1e6 / args.per:.1f} us per operation"
        print(line, file=sys.stderr)
    sys.exit(status)


if __name__ == "__main__":
    main()
