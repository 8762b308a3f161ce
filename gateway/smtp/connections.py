"""Open SMTP connections per client, in this process: one client address (an IPv4 address or
an IPv6 /64; behind a balancer, the client its PROXY header names) may hold at most
`smtp.max_connections_per_client`, so a scanner or a looping tool cannot take every slot.
The connection over the cap gets `421 4.7.0` before the banner and is closed."""

from __future__ import annotations

from collections import Counter

from gateway.smtp.auth_throttle import client_network


class ClientConnections:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    def admit(self, client_ip: str) -> str | None:
        """The key the connection now counts under, or None if it is over the cap."""
        key = client_network(client_ip)
        if self._open[key] >= self.limit:
            return None
        self._open[key] += 1
        return key

    def release(self, key: str) -> None:
        self._open[key] -= 1
        if self._open[key] <= 0:
            del self._open[key]
