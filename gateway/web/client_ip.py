"""The client's address, anonymized before anything else sees it.

An ASGI middleware around each public app: it takes the client address from the socket, or
from `X-Forwarded-For` when the socket's peer is a configured trusted proxy (the rightmost
address that is not a trusted proxy), cuts it to its network (IPv4 /24 or /16, IPv6 /48;
IPv4-mapped IPv6 as IPv4), and puts that network's first address in `scope["client"]`. The
forwarding headers are dropped. So the full address never reaches a log line (uvicorn's
access log reads `scope["client"]` after the app ran), a database row, a metric or a
forwarded request: it lives in this function's locals only. What the public app may learn
from it besides the network — which kind of fetcher's range holds it (the operator's pixel
range file, pixels/networks.py) — is looked up here and passed on as that kind alone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from typing import Any

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_FORWARDING = {b"x-forwarded-for", b"forwarded", b"x-real-ip"}


def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as written in a socket name or a header; IPv4-mapped IPv6 as IPv4."""
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def anonymized(address: str, ipv4_prefix: int = 24) -> IpNetwork | None:
    ip = _parse(address)
    if ip is None:
        return None
    prefix = ipv4_prefix if ip.version == 4 else 48
    return ipaddress.ip_network(f"{ip}/{prefix}", strict=False)


def client_address(peer: str, forwarded_for: Sequence[str],
                   trusted: Sequence[IpNetwork]) -> str:
    """The rightmost hop that is not a trusted proxy (RFC 7239 s 7.4's advice)."""
    if not trusted or not _in(peer, trusted):
        return peer
    hops = [h.strip() for value in forwarded_for for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _in(address: str, networks: Sequence[IpNetwork]) -> bool:
    ip = _parse(address)
    return ip is not None and any(ip in net for net in networks)


class AnonymizeClient:
    def __init__(self, app: Any, trusted: Sequence[str] = (), ipv4_prefix: int = 24,
                 classify: Callable[[str], object] | None = None) -> None:
        self.app = app
        self._trusted = [ipaddress.ip_network(t, strict=False) for t in trusted]
        self._prefix = ipv4_prefix
        self._classify = classify  # the full address -> its range's kind (pixels)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            peer = scope["client"][0] if scope.get("client") else ""
            forwarded = [v.decode("latin-1") for k, v in scope.get("headers", ())
                         if k == b"x-forwarded-for"]
            address = client_address(peer, forwarded, self._trusted)
            network = anonymized(address, self._prefix)
            if self._classify is not None:
                scope["ocg.client_kind"] = self._classify(address)
            scope["client"] = (str(network.network_address), 0) if network else ("0.0.0.0", 0)
            scope["ocg.client_network"] = str(network) if network else "unknown"
            scope["headers"] = [(k, v) for k, v in scope.get("headers", ())
                                if k not in _FORWARDING]
        await self.app(scope, receive, send)
