#!/usr/bin/env python3
"""A test SMTP server (aiosmtpd) for the notification channel tests.

Writes each accepted message (raw RFC 5322 bytes) to DIR/<n>.eml, prints READY once it
listens. Modes: STARTTLS offered (and required before AUTH/MAIL), implicit TLS, or plain.
With --fail-data every DATA is answered 451 (temporary failure).
"""
import argparse
import asyncio
import os
import signal
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Handler:
    def __init__(self, directory, fail_data):
        self.directory = directory
        self.fail_data = fail_data
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        if self.fail_data:
            return "451 4.3.0 temporary failure (test)"
        self.count += 1
        name = os.path.join(self.directory, "%06d.eml" % self.count)
        tmp = name + ".tmp"
        with open(tmp, "wb") as out:
            out.write(envelope.original_content)
        os.rename(tmp, name)
        return "250 2.0.0 OK"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--starttls", action="store_true")
    parser.add_argument("--implicit", action="store_true")
    parser.add_argument("--auth", help="user:password")
    parser.add_argument("--fail-data", action="store_true")
    args = parser.parse_args()

    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    kwargs = {}
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                auth_data.login.decode() == user
                and auth_data.password.decode() == password
            )
            if ok:
                return AuthResult(success=True)
            return AuthResult(success=False, handled=False, message="535 5.7.8 Authentication credentials invalid")

        kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=True)
    if args.implicit:
        kwargs.update(ssl_context=context)
    elif args.starttls:
        kwargs.update(tls_context=context, require_starttls=True)

    controller = Controller(
        Handler(args.dir, args.fail_data),
        hostname="127.0.0.1",
        port=args.port,
        server_hostname="localhost",
        **kwargs,
    )
    controller.start()
    print("READY", flush=True)
    signal.sigwait([signal.SIGTERM, signal.SIGINT])
    controller.stop()


if __name__ == "__main__":
    sys.exit(main())
