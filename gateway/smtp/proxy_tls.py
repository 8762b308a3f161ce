"""The PROXY header on the implicit-TLS port: in clear, before the TLS handshake.

HAProxy's `send-proxy-v2` writes the header first on every connection, whatever the client
speaks after it; on port 465 that is a TLS ClientHello. aiosmtpd reads PROXY headers only
inside the SMTP session, which on this port starts after the handshake, so this protocol
reads the header off the socket first (v1 or v2, with aiosmtpd's own parser), believes it
only from a configured load balancer, and then hands the socket to the TLS protocol, the
bytes after the header included. Without it, every client behind the balancer would share
the balancer's address: one network for AUTH back-off, IP credentials and logs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiosmtpd.proxy_protocol import ProxyData, get_proxy

from gateway.observability.logs import anonymize_ip

log = logging.getLogger("gateway.smtp")

_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_V1_PREFIX = b"PROXY "
_V1_MAX = 107  # the longest v1 line, CRLF included (the PROXY protocol spec, 2.1)


def header_length(buffer: bytes) -> int | None:
    """The PROXY header's length at the start of `buffer`; None while more bytes are needed,
    -1 when it cannot be one."""
    if not buffer:
        return None
    if _V2_SIGNATURE.startswith(buffer[:12]):
        return None if len(buffer) < 16 else 16 + int.from_bytes(buffer[14:16], "big")
    if _V1_PREFIX.startswith(buffer[:6]):
        end = buffer.find(b"\r\n", 0, _V1_MAX)
        if end >= 0:
            return end + 2
        return -1 if len(buffer) >= _V1_MAX else None
    return -1


class _Bytes:
    """aiosmtpd's parser reads from a stream; this one holds exactly the header."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def read(self, n: int = -1) -> bytes:
        n = len(self._data) if n < 0 else n
        chunk, self._data = self._data[:n], self._data[n:]
        return chunk

    async def readexactly(self, n: int) -> bytes:
        if len(self._data) < n:
            raise asyncio.IncompleteReadError(self._data, n)
        return await self.read(n)

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        end = self._data.find(separator)
        if end < 0:
            raise asyncio.IncompleteReadError(self._data, None)
        return await self.read(end + len(separator))


class ProxyThenTLS(asyncio.Protocol):
    """Reads the PROXY header, then becomes `make_tls(proxy_data)`'s protocol."""

    def __init__(self, make_tls: Callable[[ProxyData], asyncio.BufferedProtocol],
                 trusted: Callable[[str], bool], timeout: float) -> None:
        self._make_tls, self._trusted, self._timeout = make_tls, trusted, timeout
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._timer: asyncio.TimerHandle | None = None
        self._peer = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self._peer = peer[0] if isinstance(peer, tuple) else ""
        if not self._trusted(self._peer):
            self._refuse(trusted=False)
            return
        self._timer = asyncio.get_running_loop().call_later(self._timeout, self._refuse)

    def data_received(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        self._buffer += data
        length = header_length(self._buffer)
        if length is None:
            return
        if length < 0:
            self._refuse()
            return
        if len(self._buffer) < length:
            return
        self._transport.pause_reading()
        header, rest = self._buffer[:length], self._buffer[length:]
        asyncio.get_running_loop().create_task(self._hand_over(header, rest))

    async def _hand_over(self, header: bytes, rest: bytes) -> None:
        transport = self._transport
        assert transport is not None
        proxy_data = await get_proxy(_Bytes(header))
        if not proxy_data.valid:
            self._refuse()
            return
        if self._timer is not None:
            self._timer.cancel()
        tls = self._make_tls(proxy_data)
        transport.set_protocol(tls)
        tls.connection_made(transport)
        while rest:
            buffer = memoryview(tls.get_buffer(len(rest)))
            n = min(len(buffer), len(rest))
            buffer[:n] = rest[:n]
            tls.buffer_updated(n)
            rest = rest[n:]
        transport.resume_reading()

    def _refuse(self, trusted: bool = True) -> None:
        log.warning("PROXY header refused", extra={"client": anonymize_ip(self._peer),
                                                   "trusted": trusted, "listener": "implicit-tls"})
        if self._transport is not None:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()


def proxy_then_tls(make_tls: Callable[[ProxyData], Any], trusted: Callable[[str], bool],
                   timeout: float) -> Callable[[], asyncio.Protocol]:
    return lambda: ProxyThenTLS(make_tls, trusted, timeout)
