"""Failed TLS handshakes and dropped clients: counted, and one info line each, never a
traceback. Scanners try every port with every protocol version; our error log is for our bugs.

On the implicit-TLS port asyncio does the handshake before the SMTP session exists and says
nothing when it fails; `implicit_tls` wraps each connection in asyncio's own TLS protocol
with a hook on the handshake's outcome, so those failures are counted too. (asyncio's
`SSLProtocol` is the class `loop.create_server(ssl=...)` uses; its constructor and the
`_on_handshake_complete` hook have been stable since Python 3.11.)
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from asyncio import sslproto
from collections.abc import Callable
from typing import Any

from gateway.observability import metrics
from gateway.observability.logs import anonymize_ip

log = logging.getLogger("gateway.smtp")


def handshake_failed(listener: str, error: BaseException | None, peer: object) -> None:
    metrics.TLS_HANDSHAKE_FAILURES.labels(listener).inc()
    log.info("TLS handshake failed", extra={
        "listener": listener, "client": anonymize_ip(peer),
        "error": type(error).__name__ if error is not None else "none"})


def client_dropped(peer: object, error: BaseException | None) -> None:
    metrics.CLIENT_DROPS.inc()
    log.debug("client dropped the connection", extra={
        "client": anonymize_ip(peer), "error": type(error).__name__ if error else "none"})


class _CountedTLS(sslproto.SSLProtocol):
    def _on_handshake_complete(self, handshake_exc: BaseException | None) -> None:
        if handshake_exc is not None:
            transport: Any = getattr(self, "_transport", None)
            peer = transport.get_extra_info("peername") if transport is not None else ""
            handshake_failed("implicit-tls", handshake_exc, peer)
        super()._on_handshake_complete(handshake_exc)


def tls_server_protocol(app: asyncio.Protocol, context: ssl.SSLContext,
                        timeout: int) -> asyncio.BufferedProtocol:
    """asyncio's TLS protocol around `app`, with failed handshakes counted."""
    # no waiter: nobody awaits the handshake (a future that failed unawaited would log)
    return _CountedTLS(asyncio.get_running_loop(), app, context, None,  # type: ignore[arg-type]
                       server_side=True, ssl_handshake_timeout=timeout)


def implicit_tls(factory: Callable[[], asyncio.Protocol], context: ssl.SSLContext,
                 timeout: int) -> Callable[[], asyncio.BaseProtocol]:
    """A protocol factory for a plain listening socket that speaks TLS from the first byte,
    as `create_server(ssl=context)` would, with failed handshakes counted."""
    return lambda: tls_server_protocol(factory(), context, timeout)
