"""The aiosmtpd server, made strict: every reply through the catalogue, TLS rules, limits."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl
from collections.abc import Callable
from typing import Any, AnyStr

from aiosmtpd.proxy_protocol import ProxyData
from aiosmtpd.smtp import SMTP, TLSSetupException

from gateway.config import SmtpConfig
from gateway.observability import log_context, metrics
from gateway.protocol import replies
from gateway.protocol.line_discipline import guard_commands
from gateway.smtp.connections import ClientConnections
from gateway.smtp.proxy_tls import proxy_then_tls
from gateway.smtp.session import GatewayEnvelope, GatewaySession
from gateway.smtp.tls_handshakes import (
    client_dropped,
    handshake_failed,
    implicit_tls,
    tls_server_protocol,
)

_HANDSHAKE_TIMEOUT = 30  # seconds a client has to finish the TLS handshake
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
# `<local@domain>`: a dot-atom local part (RFC 5322 s 3.2.3) and a domain of LDH labels
_SIMPLE_PATH = re.compile(rf"[ \t]*<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>")

log = logging.getLogger("gateway.smtp")


def names_aiosmtpd_seeks(obj: object, prefixes: tuple[str, ...]) -> list[str]:
    """dir() of a session or its handler: the commands (`smtp_*`), hooks (`handle_*`) and
    AUTH mechanisms (`auth_*`) aiosmtpd looks for. It finds them with dir() and
    inspect.getmembers() on every connection, which walk and fetch every attribute (~70 us
    a connection); they are the class's, so they are listed once per class."""
    cls = type(obj)
    names: list[str] | None = cls.__dict__.get("_names_aiosmtpd_seeks")
    if names is None:
        names = [n for n in object.__dir__(obj) if n.startswith(prefixes)]
        type.__setattr__(cls, "_names_aiosmtpd_seeks", names)
    return list(names)


class GatewaySMTP(SMTP):
    """One SMTP session. Adds to aiosmtpd only what its constructor cannot express."""

    def __init__(self, handler: Any, config: SmtpConfig, tls_context: ssl.SSLContext,
                 implicit_tls: bool, connections: ClientConnections | None = None) -> None:
        super().__init__(
            handler,
            hostname=config.hostname,
            ident="ESMTP",  # the banner shows no software or version
            data_size_limit=config.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            # On the implicit-TLS port the whole connection is TLS already; STARTTLS is not
            # offered there, and AUTH is allowed (see below).
            tls_context=None if implicit_tls else tls_context,
            require_starttls=False,  # IP-credential clients may stay in clear; AUTH may not
            timeout=config.session_timeout,
            auth_required=True,
            auth_require_tls=True,  # (the command budget: guard_commands, below)
            # behind HAProxy: the PROXY header first (on the implicit-TLS
            # port it was read before TLS: proxy_tls.py)
            proxy_protocol_timeout=config.proxy_timeout
            if config.proxy_protocol and not implicit_tls else None,
        )
        self._smtp_methods = guard_commands(self, config.max_commands)
        self._connections = connections
        self._counted_as: str | None = None  # this connection's place under the client cap
        self.implicit_tls = implicit_tls
        self.proxy_header: ProxyData | None = None  # implicit TLS: the header before TLS
        self.session_id = log_context.new_session_id()  # one per connection, across STARTTLS
        if implicit_tls:
            self._auth_require_tls = False  # the transport itself is TLS (RFC 8314)
        self._verb = ""

    def __dir__(self) -> list[str]:
        return names_aiosmtpd_seeks(self, ("smtp_", "auth_"))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """aiosmtpd starts a new session after STARTTLS (RFC 3207 4.2); what the connection
        itself established carries over: the client a load balancer named, and the place
        the connection holds in its tenant's session cap."""
        old = self.session
        super().connection_made(transport)
        if isinstance(old, GatewaySession) and isinstance(self.session, GatewaySession):
            self.session.proxy_data = old.proxy_data
            self.session.counted_tenant = old.counted_tenant
            return
        if self.proxy_header is not None and self.session is not None:
            self.session.proxy_data = self.proxy_header  # read before TLS (proxy_tls.py)
        if self._proxy_timeout is None:  # behind a balancer the PROXY hook asks instead
            self.admit_client()

    def admit_client(self) -> bool:
        """Take a place under the per-client connection cap, or refuse the connection."""
        if self._connections is None or self.session is None:
            return True
        assert isinstance(self.session, GatewaySession)
        self._counted_as = self._connections.admit(self.session.client_ip)
        if self._counted_as is not None:
            return True
        if self.transport is not None:
            self.transport.write(f"{replies.TOO_MANY_CONNECTIONS}\r\n".encode())  # type: ignore[attr-defined]
            self.transport.close()
        return False

    async def _handle_client(self) -> None:
        log_context.bind(session=self.session_id)  # this task's lines, and its children's
        await super()._handle_client()

    def connection_lost(self, error: Exception | None) -> None:
        if self.session is not None and hasattr(self.event_handler, "session_closed"):
            self.event_handler.session_closed(self.session)
        if error is not None and self.session is not None:
            client_dropped(self.session.peer, error)
        if self._counted_as is not None and self._connections is not None:
            self._connections.release(self._counted_as)
            self._counted_as = None
        super().connection_lost(error)

    def _create_session(self) -> GatewaySession:
        return GatewaySession(self.loop)

    def _create_envelope(self) -> GatewayEnvelope:
        return GatewayEnvelope()

    @property
    def tls_active(self) -> bool:
        return self.implicit_tls or self._tls_protocol is not None

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, bytes):
            if not status.startswith(b"334 "):  # AUTH challenges are the only bytes pushed
                status = replies.translate(self._verb, status.decode("ascii", "replace")).encode()
            _count(status.decode("ascii", "replace"))
            await super().push(status)
            return
        translated = replies.translate(self._verb, status)
        _count(translated)
        await super().push(translated)

    async def _as(self, verb: str, method: Callable[[str], Any], arg: str) -> None:
        self._verb = verb
        try:
            await method(arg)
        finally:
            self._verb = ""

    async def smtp_EHLO(self, hostname: str) -> None:
        await self._as("EHLO", super().smtp_EHLO, hostname)

    async def smtp_HELO(self, hostname: str) -> None:
        await self._as("HELO", super().smtp_HELO, hostname)

    async def smtp_MAIL(self, arg: str) -> None:
        await self._as("MAIL", super().smtp_MAIL, arg)

    async def smtp_RCPT(self, arg: str) -> None:
        await self._as("RCPT", super().smtp_RCPT, arg)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd drops a source route (`<@relay:a@b>` -> `a@b`); keep it as written, so the
        checks see it and refuse it instead of passing on the address it hid.

        The path nearly every client sends, `<dot-atom@domain>` and its parameters, is read
        by one pattern; anything else goes to aiosmtpd's RFC 5322 parser (a differential
        test keeps both readings equal)."""
        simple = _SIMPLE_PATH.match(arg) if arg else None
        if simple is not None:
            after = arg[simple.end():]
            if after[:1] in (" ", "\t"):  # the parser drops the space before parameters
                after = after.lstrip()
            if not after.startswith("("):  # a comment there: the parser's to read
                address = simple.group(1)
                local_part = address.rpartition("@")[0]
                if self.local_part_limit and len(local_part) > self.local_part_limit:
                    return None, None
                return address, after
        text = arg.lstrip() if arg else ""
        if text.startswith("<@") and ">" in text:
            written, _, after = text[1:].partition(">")
            return written, after
        try:
            return super()._getaddr(arg)
        except (IndexError, AttributeError, UnboundLocalError):
            # the stdlib parser trips on some hostile paths (`<a@`, `!@[`, `"`) instead of
            # raising its parse error: malformed, like any other unreadable path
            return None, None

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, TLSSetupException):  # a scanner or a broken client: one line
            assert self.session is not None
            handshake_failed("starttls", error.__cause__, self.session.peer)
            return str(replies.TLS_NOT_AVAILABLE)  # the connection is closed after it
        status: str = await super().handle_exception(error)
        return status

    async def smtp_STARTTLS(self, arg: str) -> None:
        if self.tls_active:
            await self.push(str(replies.ALREADY_TLS))
            return
        await super().smtp_STARTTLS(arg)

    async def smtp_VRFY(self, arg: str) -> None:
        await self.push(str(replies.VRFY_DISABLED))

    async def smtp_EXPN(self, arg: str) -> None:
        await self.push(str(replies.NOT_IMPLEMENTED))

    async def smtp_HELP(self, arg: str) -> None:
        await self.push(str(replies.HELP))


def _count(reply: str) -> None:
    code = reply[:3]
    if code.isdigit():
        metrics.REPLIES.labels(code).inc()


def server_tls_context(cert: str, key: str) -> ssl.SSLContext:
    """TLS >= 1.2, strong suites. Reloading = calling load_cert_chain again on the same
    context (SIGHUP)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # TLS 1.2: forward secrecy and AEAD only (Mozilla's "intermediate" without DHE); TLS 1.3's
    # suites are all of that kind already.
    context.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
    context.load_cert_chain(cert, key)
    return context


class Listener:
    """One listening socket (submission with STARTTLS, or implicit TLS)."""

    def __init__(self, factory: Callable[[], GatewaySMTP], host: str, port: int,
                 ssl_context: ssl.SSLContext | None, sock: socket.socket | None = None,
                 proxy: tuple[Callable[[str], bool], float] | None = None) -> None:
        self._factory = factory
        # implicit TLS behind a balancer: (is it a balancer?, seconds to wait for the header)
        self._proxy = proxy
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self._sock = sock  # a socket the supervisor bound and every worker accepts on
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        factory: Callable[[], asyncio.BaseProtocol] = self._factory
        if self._ssl is not None and self._proxy is not None:  # PROXY header, then TLS
            factory = proxy_then_tls(self._tls_after_proxy, *self._proxy)
        elif self._ssl is not None:  # TLS from the first byte, failed handshakes counted
            factory = implicit_tls(self._factory, self._ssl, _HANDSHAKE_TIMEOUT)
        if self._sock is not None:
            self._server = await loop.create_server(factory, sock=self._sock)
        else:
            self._server = await loop.create_server(
                factory, host=self._host, port=self._port, reuse_address=True)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def _tls_after_proxy(self, proxy_data: ProxyData) -> asyncio.BufferedProtocol:
        assert self._ssl is not None
        app = self._factory()
        app.proxy_header = proxy_data  # the client the balancer named, for the whole session
        return tls_server_protocol(app, self._ssl, _HANDSHAKE_TIMEOUT)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._server.wait_closed()
