#!/usr/bin/env python3
"""An SMTP server on loopback for the mail tests (aiosmtpd): saves every message it
accepts as <dir>/msg-<n>.json with the envelope, whether the session was under TLS, who
authenticated, the raw data, and the message as Python's email module parses it (an
independent reader of what Stockroom wrote).

    smtp-sink.py --dir D [--port 0] [--starttls CERT KEY | --tls CERT KEY]
                 [--auth USER:PASSWORD [--auth-without-tls]] [--reject-rcpt CODE]

Writes the port it listens on to <dir>/port once it accepts connections; runs until
SIGTERM, until the process that started it is gone, or for --lifetime seconds (600).
"""
import argparse, asyncio, email, email.policy, json, os, signal, ssl, sys, warnings

from aiosmtpd.smtp import SMTP, AuthResult


def write_atomically(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


class Sink:
    def __init__(self, folder, reject_rcpt):
        self.folder, self.reject_rcpt, self.count = folder, reject_rcpt, 0

    async def handle_RCPT(self, server, session, envelope, address, options):
        if self.reject_rcpt:
            return f"{self.reject_rcpt} no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        transport = server.transport
        tls = session.ssl is not None or (transport is not None and transport.get_extra_info("ssl_object") is not None)
        data = envelope.original_content or envelope.content
        message = email.message_from_bytes(data, policy=email.policy.default)
        to = message["To"].addresses[0] if message["To"] else None
        sender = message["From"].addresses[0] if message["From"] else None
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": tls,
            "auth_login": session.auth_data if session.authenticated else None,
            "data": data.decode("utf-8", "backslashreplace"),
            "to_name": to.display_name if to else None,
            "to_address": to.addr_spec if to else None,
            "from_name": sender.display_name if sender else None,
            "from_address": sender.addr_spec if sender else None,
            "subject": str(message["Subject"]),
            "date": str(message["Date"]),
            "date_parsed": message["Date"].datetime.isoformat() if message["Date"] and message["Date"].datetime else None,
            "message_id": str(message["Message-ID"]),
            "content_type": message.get_content_type(),
            "charset": message.get_content_charset(),
            "body": message.get_content(),
            "defects": [str(d) for d in message.defects] + [str(d) for h in message.values() for d in getattr(h, "defects", ())],
        }
        self.count += 1
        write_atomically(os.path.join(self.folder, f"msg-{self.count}.json"), json.dumps(record))
        return "250 Message accepted for delivery"


def main():
    # aiosmtpd sets Session.login_data itself and then warns that it is deprecated.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--auth", metavar="USER:PASSWORD")
    parser.add_argument("--auth-without-tls", action="store_true")
    parser.add_argument("--reject-rcpt", metavar="CODE")
    parser.add_argument("--lifetime", type=float, default=600)
    args = parser.parse_args()
    # The Swift test process blocks SIGTERM in its threads, and a child inherits the
    # mask: unblocked, the test's terminate() ends us.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    parent = os.getppid()

    def context(pair):
        if not pair:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*pair)
        return ctx

    user, password = (args.auth.split(":", 1) + [""])[:2] if args.auth else (None, None)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = mechanism == "PLAIN" and auth_data.login.decode() == user and auth_data.password.decode() == password
        # handled=False: aiosmtpd then answers 535 itself (True would leave the client waiting).
        return AuthResult(success=ok, handled=False, auth_data=auth_data.login.decode() if ok else None)

    handler = Sink(args.dir, args.reject_rcpt)
    # aiosmtpd knows of STARTTLS but not of TLS it did not start: with --tls, the
    # connection is TLS throughout, so AUTH may be offered at once.
    options = dict(hostname="sink.test", tls_context=context(args.starttls), auth_require_tls=not (args.auth_without_tls or args.tls))
    if user is not None:
        options["authenticator"] = authenticator

    async def serve():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(handler, loop=loop, **options), args.host, args.port, ssl=context(args.tls))
        write_atomically(os.path.join(args.dir, "port"), str(server.sockets[0].getsockname()[1]))
        stop = loop.create_future()
        loop.add_signal_handler(signal.SIGTERM, lambda: stop.done() or stop.set_result(None))
        # A test that crashed cannot stop us: leave when our parent is gone, or at the end
        # of our lifetime, whichever comes first.
        deadline = loop.time() + args.lifetime
        while not stop.done() and os.getppid() == parent and loop.time() < deadline:
            await asyncio.wait([stop], timeout=0.5)
        server.close()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
