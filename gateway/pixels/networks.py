"""The networks pixel fetches come from that are not readers: the operator's range file.

The gateway ships no ranges of its own (they change, and they are the providers' to
publish); the operator fills `[pixels] networks_file` from the published lists and sends
SIGHUP after each refresh (docs/pixels.md gives the commands). One network per line:

    # Microsoft 365, Exchange Online Protection (endpoints.office.com)
    40.92.0.0/15      scanner        microsoft
    2a01:111:f400::/48  scanner      microsoft
    @kind privacy-proxy apple        # lines below without a kind take this one
    172.224.224.0/27,GB,GB-EN,London,

A kind is `scanner` (link and attachment scanners: their fetches are bots), `privacy-proxy`
(prefetching on delivery, as Apple Mail Privacy Protection does: machine) or `image-proxy`
(a mail provider fetching when the reader opens, as Gmail's does: the reader). A line may be
a provider's CSV row (Apple's egress list): the first field is the network. `#` starts a
comment. A bad line refuses the whole file with its line number: at start the gateway does
not start, on SIGHUP it keeps the ranges it had.
"""

from __future__ import annotations

import bisect
import enum
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import ConfigError

MAX_LINES = 2_000_000


class Kind(enum.StrEnum):
    SCANNER = "scanner"
    PRIVACY_PROXY = "privacy-proxy"
    IMAGE_PROXY = "image-proxy"


_RANK = {Kind.SCANNER: 0, Kind.PRIVACY_PROXY: 1, Kind.IMAGE_PROXY: 2}


@dataclass(frozen=True, slots=True)
class Match:
    kind: Kind
    provider: str


class _Family:
    """One IP version's ranges, sorted by first address, for a bisect lookup that also
    finds a range holding a smaller one (each entry knows the furthest end before it)."""

    def __init__(self, ranges: list[tuple[int, int, Match]]) -> None:
        ranges.sort(key=lambda r: (r[0], -r[1]))
        self._starts = [r[0] for r in ranges]
        self._ranges = ranges
        self._reach: list[int] = []
        furthest = -1
        for _, end, _ in ranges:
            furthest = max(furthest, end)
            self._reach.append(furthest)

    def find(self, first: int, last: int) -> Match | None:
        """A range overlapping [first, last]. When several kinds do (a network holding
        both), the one least likely a reader's: scanner, then privacy proxy."""
        i = bisect.bisect_right(self._starts, last) - 1
        found: Match | None = None
        while i >= 0 and self._reach[i] >= first:
            start, end, match = self._ranges[i]
            if end >= first and start <= last and (
                    found is None or _RANK[match.kind] < _RANK[found.kind]):
                found = match
                if match.kind is Kind.SCANNER:
                    break
            i -= 1
        return found


class Networks:
    """The ranges of one file (empty: none configured)."""

    def __init__(self, entries: Sequence[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network,
                                               Match]] = ()) -> None:
        v4: list[tuple[int, int, Match]] = []
        v6: list[tuple[int, int, Match]] = []
        for net, match in entries:
            (v4 if net.version == 4 else v6).append(
                (int(net.network_address), int(net.broadcast_address), match))
        self._v4, self._v6 = _Family(v4), _Family(v6)
        self.size = len(entries)

    def find(self, network: str) -> Match | None:
        """The range holding a client's address ("192.0.2.17"), or overlapping its network
        as kept ("203.0.113.0/24")."""
        try:
            net = ipaddress.ip_network(network, strict=False)
        except ValueError:
            return None
        family = self._v4 if net.version == 4 else self._v6
        return family.find(int(net.network_address), int(net.broadcast_address))


def parse(text: str, name: str = "networks file") -> Networks:
    entries = []
    default: Match | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        if number > MAX_LINES:
            raise ConfigError(f"{name}: more than {MAX_LINES} lines.")
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if fields[0] == "@kind":
            default = _match(fields[1:], name, number)
            continue
        network_text = fields[0].split(",", 1)[0]
        try:
            net = ipaddress.ip_network(network_text, strict=False)
        except ValueError:
            raise ConfigError(f"{name} line {number}: {network_text[:60]!r} is not a "
                              "network (203.0.113.0/24, 2001:db8::/32).") from None
        if len(fields) > 1 and "," not in fields[0]:
            match = _match(fields[1:], name, number)
        elif default is not None:
            match = default
        else:
            raise ConfigError(f"{name} line {number}: no kind (scanner, privacy-proxy, "
                              "image-proxy), and no '@kind' line before it.")
        entries.append((net, match))
    return Networks(entries)


def _match(fields: list[str], name: str, number: int) -> Match:
    if not fields or fields[0] not in {k.value for k in Kind}:
        raise ConfigError(f"{name} line {number}: the kind is one of scanner, privacy-proxy, "
                          "image-proxy.")
    provider = fields[1] if len(fields) > 1 else fields[0]
    return Match(Kind(fields[0]), provider[:40])


def load(path: str) -> Networks:
    """The operator's range file; no path: no ranges."""
    if not path:
        return Networks()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise ConfigError(f"Config 'pixels.networks_file': cannot read {path} "
                          f"({type(exc).__name__}).") from None
    return parse(text, path)
