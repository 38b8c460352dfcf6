#!/usr/bin/env python3
"""The attacks of docs/PROTOCOL.md's threat model against a running `stockroom serve`,
each with a bystander pinging on two other connections. Prints, per attack, the
attacker's reply, the bystander's PING latency (max and p99) and the server's peak RSS.

    scripts/attacks.py --port 7379 --pid $(pgrep -f 'stockroom serve')

The hostile CONFIG GET runs last: against a server without the fix it pins an event loop
for good (and the megabyte pattern crashes it).
"""
import argparse, os, socket, threading, time, uuid


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Conn:
    def __init__(self, port, timeout=30):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self):
        line = self.line()
        if line[:1] in (b"$",) and int(line[1:]) >= 0:
            n = int(line[1:])
            while len(self.buf) < n + 2:
                chunk = self.s.recv(65536)
                if not chunk:
                    raise EOFError("closed")
                self.buf += chunk
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if line[:1] in (b"*", b"%"):
            return [self.reply() for _ in range(int(line[1:]) * (2 if line[:1] == b"%" else 1))]
        return line

    def call(self, *args):
        self.s.sendall(resp(*args))
        return self.reply()


def rss(pid, field="VmRSS"):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except FileNotFoundError:
        return 0
    return 0


class Bystander(threading.Thread):
    def __init__(self, port, pid):
        super().__init__(daemon=True)
        self.port, self.pid = port, pid
        self.latencies, self.peak, self.stop, self.error = [], 0, False, None

    def run(self):
        try:
            conns = [Conn(self.port, timeout=60) for _ in range(2)]
            while not self.stop:
                for c in conns:
                    t = time.monotonic()
                    assert c.call("PING") == b"+PONG"
                    self.latencies.append(time.monotonic() - t)
                self.peak = max(self.peak, rss(self.pid))
                time.sleep(0.005)
        except Exception as e:  # the server stalled or died
            self.error = repr(e)

    def report(self):
        l = sorted(self.latencies) or [float("nan")]
        p99 = l[min(len(l) - 1, len(l) * 99 // 100)]
        note = f" (bystander failed: {self.error})" if self.error else ""
        return f"PING max {l[-1]*1000:.1f} ms, p99 {p99*1000:.1f} ms over {len(self.latencies)}; peak RSS {self.peak >> 20} MiB{note}"


SKIPPED = []


def attack(name, port, pid, body):
    if any(w in name for w in SKIPPED):
        return
    b = Bystander(port, pid)
    b.start()
    time.sleep(0.2)
    t = time.monotonic()
    try:
        outcome = body()
    except Exception as e:
        outcome = f"failed: {e!r}"
    took = time.monotonic() - t
    time.sleep(0.2)
    b.stop = True
    b.join(timeout=30)
    short = outcome if isinstance(outcome, str) else repr(outcome)
    print(f"| {name} | {short[:90]} | {took*1000:.0f} ms | {b.report()} |", flush=True)


def logged_in(port):
    c = Conn(port)
    email = f"a{uuid.uuid4().hex[:8]}@example.com"
    c.call("USER.REGISTER", '{"email":"%s","name":"Attacker","password":"password123"}' % email)
    token = c.call("SESSION.LOGIN", '{"email":"%s","password":"password123"}' % email)
    return c, email, token


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=7379)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--skip", default="", help="comma-separated words: attacks whose name holds one are skipped")
    a = ap.parse_args()
    skipped = [w for w in a.skip.split(",") if w]
    port, pid = a.port, a.pid
    SKIPPED.extend(skipped)
    print("| attack | attacker's reply | took | bystander, server |\n|---|---|---|---|")

    def json_keys():
        c, _, _ = logged_in(port)
        keys = ",".join('"k%d":0' % i for i in range(60000))
        return c.call("ORDER.PLACE", "{" + keys + "}").decode()[:80]
    attack("ORDER.PLACE of 60,000 keys", port, pid, json_keys)

    def nul_sku():
        c = Conn(port)
        c.s.sendall(b'PRODUCT.GET SKU MUG-01\r\nPRODUCT.GET SKU "A\\x00B"\r\nPRODUCT.GET SKU NO-SUCH\r\n')
        return " / ".join(c.reply().decode()[:24] for _ in range(3))
    attack("NUL sku in a shared batch", port, pid, nul_sku)

    def big_request():
        c = Conn(port)
        sent = 0
        arg = b"$1048576\r\n" + b"x" * (1 << 20) + b"\r\n"
        try:
            c.s.sendall(b"*256\r\n")
            for _ in range(256):
                c.s.sendall(arg)
                sent += 1
        except OSError:
            pass
        try:
            reply = c.reply().decode()
        except Exception as e:
            reply = repr(e)
        return f"{reply[:60]} after {sent} MiB sent"
    attack("256 MiB request", port, pid, big_request)

    def flood():
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        data = b"PRODUCT.GET 1\r\n" * 300000
        sent, deadline = 0, time.monotonic() + 3
        while sent < len(data) and time.monotonic() < deadline:
            try:
                sent += s.send(data[sent:])
            except BlockingIOError:
                time.sleep(0.01)
        other = Conn(port)
        t = time.monotonic()
        other.call("PRODUCT.GET", "1")
        single = time.monotonic() - t
        s.close()
        return f"{sent // 15} lookups taken before the server stopped reading; another client's single lookup {single*1000:.1f} ms"
    attack("300,000 pipelined lookups never read", port, pid, flood)

    def throttle():
        _, email, _ = logged_in(port)
        for spelling in [email, " " + email, email + " ", email.upper(), "\t" + email]:
            Conn(port).call("SESSION.LOGIN", '{"email":"%s","password":"wrong-password"}' % spelling.replace("\t", "\\t"))
        t = time.monotonic()
        Conn(port).call("SESSION.LOGIN", '{"email":"%s","password":"password123"}' % email)
        return f"sixth attempt (right password) waited {(time.monotonic() - t)*1000:.0f} ms"
    attack("throttle spelled five ways", port, pid, throttle)

    def revoked():
        owner, _, login = logged_in(port)
        token = login.decode().split('"token":"')[1].split('"')[0]
        other = Conn(port)
        other.call("AUTH", token)
        owner.call("SESSION.LOGOUT")
        return "WHOAMI after logout elsewhere: " + other.call("WHOAMI").decode()[:40]
    attack("revoked token on a live connection", port, pid, revoked)

    def config_glob():
        c = Conn(port, timeout=10)
        return repr(c.call("CONFIG", "GET", "*" * 40 + "#"))
    attack("CONFIG GET '*'×40 '#'", port, pid, config_glob)

    def config_stars():
        c = Conn(port, timeout=10)
        return f"{len(c.call('CONFIG', 'GET', '*' * (1 << 20))) // 2} keys"
    attack("CONFIG GET of 1 MiB of '*'", port, pid, config_stars)
    print(f"server peak RSS (VmHWM): {rss(pid, 'VmHWM') >> 20} MiB" if rss(pid, "VmHWM") else "server gone")


if __name__ == "__main__":
    main()
