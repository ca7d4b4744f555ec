#!/usr/bin/python3
"""The tests' throwaway SMTP server (Debian's python3-aiosmtpd).

Listens on 127.0.0.1:PORT and saves each message it accepts as
DIR/msg-NNNN.json: the envelope (MAIL FROM, RCPT TO), the headers that
matter (From, To, Cc, Bcc, Subject) and the decoded text body, so a test
reads recipients, subjects and bodies without parsing MIME. DIR/ready is
written once it listens.

  --tls CERT KEY     offer STARTTLS with this certificate (and require it)
  --implicit         TLS from the first byte instead (SMTPS)
  --auth USER FILE   require AUTH (after TLS), the password in FILE
  --exit-after N     after N messages, exit at the next command, answering
                     nothing: the server is gone mid-batch
  --reject-after N   after N messages, refuse every recipient (451)
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    def __init__(self, directory, exit_after, reject_after):
        self.directory = directory
        self.exit_after = exit_after
        self.reject_after = reject_after
        self.count = 0

    def _gone_if_done(self):
        if self.exit_after is not None and self.count >= self.exit_after:
            # No answer, no clean close: a server that went away.
            os._exit(0)

    async def handle_NOOP(self, server, session, envelope, arg):
        self._gone_if_done()
        return "250 OK"

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self._gone_if_done()
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server, session, envelope, address, options):
        self._gone_if_done()
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):
        if self.reject_after is not None and self.count >= self.reject_after:
            return "451 4.3.0 mailbox temporarily unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(message.get("From", "")),
            "to": str(message.get("To", "")),
            "cc": str(message.get("Cc", "")),
            "bcc": str(message.get("Bcc", "")),
            "subject": str(message.get("Subject", "")),
            "body": body.get_content() if body is not None else "",
            "tls": session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
            "authenticated": bool(session.authenticated),
        }
        self.count += 1
        name = os.path.join(self.directory, "msg-%04d.json" % self.count)
        with open(name + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(name + ".tmp", name)
        return "250 OK"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--implicit", action="store_true")
    parser.add_argument("--auth", nargs=2, metavar=("USER", "FILE"))
    parser.add_argument("--exit-after", type=int)
    parser.add_argument("--reject-after", type=int)
    args = parser.parse_args()

    context = None
    if args.tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*args.tls)

    authenticator = None
    if args.auth:
        user = args.auth[0].encode()
        with open(args.auth[1], "rb") as f:
            secret = f.read().strip()

        def authenticator(server, session, envelope, mechanism, data):
            ok = isinstance(data, LoginPassword) and data.login == user and data.password == secret
            return AuthResult(success=ok)

    handler = Handler(args.dir, args.exit_after, args.reject_after)

    def factory():
        return SMTP(
            handler,
            hostname="smtp.test",
            tls_context=None if args.implicit else context,
            require_starttls=bool(context) and not args.implicit,
            authenticator=authenticator,
            auth_required=authenticator is not None,
            auth_require_tls=True,
        )

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(
            factory, "127.0.0.1", args.port, ssl=context if args.implicit else None
        )
    )
    with open(os.path.join(args.dir, "ready"), "w") as f:
        f.write(str(os.getpid()))
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(main())
