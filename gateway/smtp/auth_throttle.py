"""Who may try a password now: back-off per client network and login, a failure budget per
login, and the networks a login is known from. Shared by every worker and node.

Keyed on what the client is, not on what an attacker can aim at: five wrong passwords for a
login from one network lock that network out of that login, never the login everywhere
(a lockout keyed on the login alone is a lever against the customer). The rules:

- **client network**: the IPv4 address (/32) or the IPv6 /64 — the PROXY-protocol client
  behind a balancer, never the balancer;
- **per (network, login)**: `max_failures` failures within `failure_window` → that pair is
  refused (`421 4.7.0`) until its failures have aged out;
- **per login, every network**: `login_failure_budget` failures within `budget_window`; once
  it is spent, a network that never logged in as this login (remembered
  `known_network_days`) is refused at once, while the customer's own networks keep trying
  under their per-pair limit; ops get an alert.

Counters live where the sending limits live (the database, or Redis), so N workers on M nodes
do not multiply the guesses. They name no address and no login in clear: each key is an HMAC
under a key derived from the deployment's digest key. If the counters cannot be read or
written, AUTH fails closed and temporary (`454 4.7.0`).

A window is counted as two fixed buckets, this one and the last, summed: any stretch of one
window's length lies within two consecutive buckets, so no failures straddling a bucket's
edge slip past the limit (a lone fixed bucket lets 2 x limit - 2 guesses through at its edge).
A back-off therefore lasts between one window and two.
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
                 digest_key: Callable[[], bytes] = lambda: b"",
                 clock: Callable[[], float] = time.time) -> None:
        self._counters = counters
        self._clock = clock
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

    def _counts(self, login: str, ip: str, now: float) -> list[Count]:
        """The counters `_admission` reads, in its order: pair failures (this bucket, the
        last), login failures (this bucket, the last), known (this period, the last)."""
        cfg = self._config
        login = login.casefold()
        network = client_network(ip)
        pair_window, budget_window = int(cfg.failure_window), int(cfg.budget_window)
        period = cfg.known_network_days * _DAY
        known = self._name("k", login, network)
        this_period = int(now // period * period)
        pair, budget = self._name("p", login, network), self._name("b", login)
        pair_start = int(now // pair_window * pair_window)
        budget_start = int(now // budget_window * budget_window)
        return [
            # a failure is kept one window past its bucket, to be summed in the next one
            Count(pair, pair_start, pair_window, 1, 0, keep=pair_window),
            Count(pair, pair_start - pair_window, pair_window, 1, 0, keep=pair_window),
            Count(budget, budget_start, budget_window, 1, 0, keep=budget_window),
            Count(budget, budget_start - budget_window, budget_window, 1, 0,
                  keep=budget_window),
            # a mark lives two periods, so the one from the last period is still there
            Count(known, this_period, 2 * period, 1, 0),
            Count(known, this_period - period, 2 * period, 1, 0),
        ]

    async def admit(self, login: str, ip: str) -> Admission:
        """Before a password is checked. Raises if the counters cannot be read."""
        return self._admission(await self._counters.used(self._counts(login, ip, self._clock())))

    def _admission(self, used: list[int]) -> Admission:
        """From what the six counters of `_counts` hold."""
        if used[0] + used[1] >= self._config.max_failures:
            return Admission.BACKED_OFF
        if used[2] + used[3] >= self._config.login_failure_budget and not (used[4] or used[5]):
            return Admission.BUDGET_SPENT
        return Admission.OPEN

    async def failed(self, login: str, ip: str, login_id: int | None) -> Admission:
        """Count a wrong password; what the next attempt from here would meet."""
        counts = self._counts(login, ip, self._clock())
        await self._counters.hit([counts[0], counts[2]])  # this bucket's pair and budget
        used = await self._counters.used(counts)
        admission = self._admission(used)
        if login_id is not None:
            if used[2] + used[3] == self._config.login_failure_budget:  # once, when it is spent
                log.error("login failure budget spent: unknown networks are refused",
                          extra={"alert": "ops", "login_id": login_id,
                                 "budget": self._config.login_failure_budget,
                                 "window_seconds": int(self._config.budget_window)})
        return admission

    async def succeeded(self, login: str, ip: str) -> None:
        """Remember this network as one the login is known from (once a day per process)."""
        now = self._clock()
        known = self._counts(login, ip, now)[4]
        if now - self._known_recorded.get(known.key, 0.0) < _DAY:
            return
        await self._counters.hit([known])
        if len(self._known_recorded) > _REMEMBERED:
            self._known_recorded.clear()
        self._known_recorded[known.key] = now
