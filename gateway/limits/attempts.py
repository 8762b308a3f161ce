"""Rate limits of the public listener, kept in memory (one node's view)."""

from __future__ import annotations

import time
from collections import OrderedDict


class InvalidAttempts:
    """A sliding count of invalid-token requests per network, in memory, bounded."""

    def __init__(self, per_minute: int, networks: int = 10_000) -> None:
        self._limit = per_minute
        self._networks = networks
        self._seen: OrderedDict[str, list[float]] = OrderedDict()

    def over(self, network: str, now: float | None = None) -> bool:
        """Count one attempt; True if this network passed its limit for the last minute."""
        now = time.monotonic() if now is None else now
        times = [t for t in self._seen.pop(network, []) if now - t < 60.0]
        times.append(now)
        self._seen[network] = times
        while len(self._seen) > self._networks:
            self._seen.popitem(last=False)
        return len(times) > self._limit
