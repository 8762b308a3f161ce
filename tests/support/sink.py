"""RecordingSink: a real aiosmtpd upstream on port 0, in the test's loop, that records what it
received and can be told to fail at any stage (like aiosmtplib's own test server)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


@dataclass
class Received:
    envelope_from: str
    recipients: list[str]
    content: bytes
    mail_options: list[str]


@dataclass
class Faults:
    rcpt: dict[str, str] = field(default_factory=dict)  # recipient -> reply
    mail: str | None = None
    data: str | None = None
    disconnect_at: str | None = None  # "mail" | "rcpt" | "data"
    delay: float = 0.0  # seconds before answering DATA


class _Handler:
    def __init__(self, sink: RecordingSink) -> None:
        self.sink = sink

    async def auth_XOAUTH2(self, server, args):
        """Gmail's and Microsoft's SASL XOAUTH2: `user=..^Aauth=Bearer ..^A^A`, base64.
        A bad token gets the 334 error challenge, then 535 after the client's empty line."""
        if self.sink.xoauth2 is None or len(args) != 2:
            return AuthResult(success=False, handled=False)
        try:
            fields = dict(part.split("=", 1) for part in
                          base64.b64decode(args[1]).decode().split("\x01") if part)
            user, token = fields["user"], fields["auth"].removeprefix("Bearer ")
        except (ValueError, KeyError, binascii.Error):
            return AuthResult(success=False, handled=False)
        self.sink.logins.append((user, token))
        self.sink.commands.append("AUTH")
        if self.sink.xoauth2(user, token):
            return AuthResult(success=True, auth_data=user)
        error = json.dumps({"status": "401", "schemes": "bearer",
                            "scope": "https://mail.google.com/"}).encode()
        await server.challenge_auth(base64.b64encode(error).decode(), encode_to_b64=False)
        return AuthResult(success=False, handled=False,
                          message="535 5.7.8 Username and Password not accepted")

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.sink.pipelining:  # aiosmtpd reads pipelined commands; it does not say so
            responses = [*responses[:-1], "250-PIPELINING", responses[-1]]
        if self.sink.eightbitmime:
            return responses
        return [r for r in responses if "8BITMIME" not in r.upper()]

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.sink.commands.append("MAIL")
        if self.sink.xoauth2 is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        if self.sink.faults.disconnect_at == "mail":
            server.transport.close()
            return "421 4.3.0 gone"
        if self.sink.faults.mail:
            return self.sink.faults.mail
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RSET(self, server, session, envelope):
        return "250 2.0.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.sink.commands.append("RCPT")
        if self.sink.faults.disconnect_at == "rcpt":
            server.transport.close()
            return "421 4.3.0 gone"
        reply = self.sink.faults.rcpt.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.sink.commands.append("DATA")
        if self.sink.faults.delay:
            await asyncio.sleep(self.sink.faults.delay)
        if self.sink.faults.disconnect_at == "data":
            server.transport.close()
            return "421 4.3.0 gone"
        if self.sink.faults.data:
            return self.sink.faults.data
        sender = "" if envelope.mail_from == "<>" else envelope.mail_from
        self.sink.received.append(Received(sender, list(envelope.rcpt_tos),
                                           envelope.original_content, envelope.mail_options))
        self.sink.arrived.set()
        return "250 2.0.0 Ok: sink"


class _SinkSMTP(SMTP):
    """aiosmtpd refuses the null reverse-path; real MTAs must accept it (RFC 5321 s 4.5.5)."""

    async def smtp_MAIL(self, arg):
        if arg and arg.replace(" ", "").upper().startswith("FROM:<>"):
            if await self.check_helo_needed() or await self.check_auth_needed("MAIL"):
                return
            status = await self._call_handler_hook("MAIL", "", arg.split()[1:])
            if status.startswith("250"):
                self.envelope.mail_from = "<>"  # truthy, so aiosmtpd's RCPT accepts it
            await self.push(status)
            return
        await super().smtp_MAIL(arg)


class RecordingSink:
    def __init__(self, *, tls: ssl.SSLContext | None = None, auth: tuple[str, str] | None = None,
                 smtputf8: bool = True, eightbitmime: bool = True,
                 xoauth2: Callable[[str, str], bool] | None = None,
                 pipelining: bool = False) -> None:
        self.xoauth2 = xoauth2  # (user, token) -> accepted?
        self.pipelining = pipelining  # offer PIPELINING (RFC 2920) in the EHLO reply
        self.eightbitmime = eightbitmime  # offer 8BITMIME (RFC 6152) in the EHLO reply
        self.logins: list[tuple[str, str]] = []
        self.received: list[Received] = []
        self.commands: list[str] = []
        self.connections = 0
        self.faults = Faults()
        self.arrived = asyncio.Event()
        self._tls = tls
        self.auth = auth  # (login, password) accepted; may change while running
        self._smtputf8 = smtputf8
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        self.commands.append("AUTH")  # a password reached this server
        ok = (isinstance(auth_data, LoginPassword) and self.auth is not None
              and (auth_data.login.decode(), auth_data.password.decode()) == self.auth)
        return AuthResult(success=ok, handled=False)

    def _factory(self) -> SMTP:
        self.connections += 1
        return _SinkSMTP(_Handler(self), hostname="sink.test", enable_SMTPUTF8=self._smtputf8,
                    tls_context=self._tls, require_starttls=self._tls is not None,
                    auth_required=self.auth is not None,
                    auth_require_tls=self._tls is not None,
                    authenticator=self._authenticate if self.auth else None)

    async def start(self) -> RecordingSink:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._factory, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def to(self, recipient: str) -> list[Received]:
        return [r for r in self.received if recipient in r.recipients]
