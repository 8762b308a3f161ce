"""Who may try a password now: back-off per client network and login, a failure budget per
login, and the networks a login is known from. Shared by every worker and node.

Keyed on what the client is, not on what an attacker can aim at: five wrong passwords for a
login from one network lock that network out of that login, never the login everywhere
(a lockout keyed on the login alone is a lever against the customer). The rules:

- **client network**: the IPv4 address (/32) or the IPv6 /64 — the PROXY-protocol client
  behind a balancer, never the balancer;
- **per (network, login)**: `max_failures` failures within `failure_window` → that pair is
  refused (`421 4.7.0`) until the window is over;
- **per login, every network**: `login_failure_budget` failures within `budget_window`; once
  it is spent, a network that never logged in as this login (remembered
  `known_network_days`) is refused at once, while the customer's own networks keep trying
  under their per-pair limit; ops get an alert.

Counters live where the sending limits live (the database, or Redis), so N workers on M nodes
do not multiply the guesses. They name no address and no login in clear: each key is an HMAC
under a key derived from the deployment's digest key. If the counters cannot be read or
written, AUTH fails closed and temporary (`454 4.7.0`).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import logging
import time
from collections.abc import Callable

from gateway.config import AuthConfig
from gateway.limits.counters import Count, Counters

log = logging.getLogger("gateway.auth")

_DAY = 86400
_REMEMBERED = 1000  # (login, network) pairs this process recorded as known lately


class Admission(enum.Enum):
    OPEN = "open"
    BACKED_OFF = "backed-off"  # this network has failed this login too often lately
    BUDGET_SPENT = "budget-spent"  # this login's budget is spent; this network is unknown


def client_network(ip: str) -> str:
    """The unit of back-off: an IPv4 address, or the /64 an IPv6 address is in."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class AuthThrottle:
    def __init__(self, counters: Counters, config: AuthConfig,
                 digest_key: Callable[[], bytes] = lambda: b"") -> None:
        self._counters = counters
        self._config = config
        self._digest_key = digest_key  # the audit digest key, opened at start
        self._source = b""
        self._key = b""
        self._known_recorded: dict[str, float] = {}  # key -> when this process recorded it

    def _counter_key(self) -> bytes:
        """Counter names are keyed by a key derived from the audit digest key."""
        source = self._digest_key()
        if source != self._source:
            self._source = source
            self._key = hmac.new(source, b"auth-throttle", hashlib.sha256).digest()
        return self._key

    def reconfigure(self, config: AuthConfig) -> None:
        self._config = config

    def _name(self, kind: str, *parts: str) -> str:
        text = "\0".join(parts).encode("utf-8", "surrogateescape")
        digest = hmac.new(self._counter_key(), text, hashlib.sha256).hexdigest()
        return f"auth:{kind}:" + digest[:32]

    def _counts(self, login: str, ip: str, now: float) -> tuple[Count, Count, Count, Count]:
        """(pair failures, login failures, known in this period, known in the last one)."""
        cfg = self._config
        login = login.casefold()
        network = client_network(ip)
        pair_window, budget_window = int(cfg.failure_window), int(cfg.budget_window)
        period = cfg.known_network_days * _DAY
        known = self._name("k", login, network)
        this_period = int(now // period * period)
        return (
            Count(self._name("p", login, network), int(now // pair_window * pair_window),
                  pair_window, 1, 0),
            Count(self._name("b", login), int(now // budget_window * budget_window),
                  budget_window, 1, 0),
            # a mark lives two periods, so the one from the last period is still there
            Count(known, this_period, 2 * period, 1, 0),
            Count(known, this_period - period, 2 * period, 1, 0),
        )

    async def admit(self, login: str, ip: str) -> Admission:
        """Before a password is checked. Raises if the counters cannot be read."""
        return self._admission(await self._counters.used(self._counts(login, ip, time.time())))

    def _admission(self, used: list[int]) -> Admission:
        """From what the four counters of `_counts` hold."""
        if used[0] >= self._config.max_failures:
            return Admission.BACKED_OFF
        if used[1] >= self._config.login_failure_budget and not (used[2] or used[3]):
            return Admission.BUDGET_SPENT
        return Admission.OPEN

    async def failed(self, login: str, ip: str, login_id: int | None) -> Admission:
        """Count a wrong password; what the next attempt from here would meet."""
        counts = self._counts(login, ip, time.time())
        await self._counters.hit(counts[:2])
        used = await self._counters.used(counts)
        admission = self._admission(used)
        if login_id is not None:
            if used[1] == self._config.login_failure_budget:  # once, when it is spent
                log.error("login failure budget spent: unknown networks are refused",
                          extra={"alert": "ops", "login_id": login_id,
                                 "budget": self._config.login_failure_budget,
                                 "window_seconds": int(self._config.budget_window)})
        return admission

    async def succeeded(self, login: str, ip: str) -> None:
        """Remember this network as one the login is known from (once a day per process)."""
        now = time.time()
        _, _, known, _ = self._counts(login, ip, now)
        if now - self._known_recorded.get(known.key, 0.0) < _DAY:
            return
        await self._counters.hit([known])
        if len(self._known_recorded) > _REMEMBERED:
            self._known_recorded.clear()
        self._known_recorded[known.key] = now
