"""Who fetched a pixel: a person (`human`), a machine fetching for a person's mailbox
(`machine`: a privacy proxy prefetching every image on delivery) or a bot (`bot`: a link or
attachment scanner, a script) — from what the fetch itself shows, kept in the open's row.

The signals (agents.py names them; the open keeps them in `signals`):

- the user agent: its family, a scanner's or a script's name, none at all, the bare
  `Mozilla/5.0` of Apple Mail Privacy Protection, Gmail's and Yahoo's image proxies;
- the method: a `HEAD` is never a mail client showing an image; a `GET` of the same pixel
  soon after a `HEAD` (`head-then-get`, within `HEAD_WINDOW` seconds, remembered per
  process) is the scanner coming back for the body;
- the network, from the operator's range file (networks.py): `scanner-net`,
  `privacy-net`, `image-proxy-net` — matched on the full address by the client-address
  anonymizer (web/client_ip.py), which passes on only the kind it found;
- the time since the copy was sent: within `pixels.machine_open_seconds` (`fast`) nobody has
  read it yet — scanners and prefetchers fetch on delivery.

The verdict: `bot` for a scanner or script by name, network, `HEAD` or `head-then-get`, or
a `fast` fetch from no known proxy; `machine` for a privacy prefetch, or an image proxy
fetching `fast`; `human` otherwise — an image proxy fetching later is the reader opening.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass

from gateway.pixels import agents
from gateway.pixels.networks import Kind, Match, Networks

HEAD_WINDOW = 30.0  # seconds a HEAD is remembered for the GET that may follow it
HEAD_MEMORY = 50_000  # pixels remembered at once (the oldest are forgotten first)


class Verdict(enum.StrEnum):
    HUMAN = "human"
    MACHINE = "machine"
    BOT = "bot"


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: Verdict
    signals: tuple[str, ...]
    family: str


_NETWORK_SIGNAL = {Kind.SCANNER: "scanner-net", Kind.PRIVACY_PROXY: "privacy-net",
                   Kind.IMAGE_PROXY: "image-proxy-net"}
_BOT = frozenset({"scanner", "scanner-net", "head-then-get"})
_PREFETCH = frozenset({"apple-mpp", "privacy-net"})
_READER_PROXY = frozenset({"google-proxy", "yahoo-proxy", "image-proxy-net"})


def verdict_of(signals: tuple[str, ...]) -> Verdict:
    found = set(signals)
    if found & _BOT:
        return Verdict.BOT
    if found & _PREFETCH:
        return Verdict.MACHINE
    if "fast" in found:
        return Verdict.MACHINE if found & _READER_PROXY else Verdict.BOT
    return Verdict.HUMAN


class Judge:
    """Judges each fetch; remembers recent HEADs (per process) for `head-then-get`."""

    def __init__(self, networks: Networks, fast_seconds: float) -> None:
        self.networks = networks
        self.fast_seconds = fast_seconds
        self._heads: OrderedDict[str, float] = OrderedDict()

    def classify(self, address: str) -> Match | None:
        """The range holding a client's full address (the anonymizer asks, in memory)."""
        return self.networks.find(address)

    def judge(self, pixel: str, user_agent: str, method: str, network: str, sent_at: int,
              now: float, match: Match | None | bool = False) -> Judgement:
        """`pixel`: what names this copy's pixel (its token); `network`: the client's, as
        kept; `sent_at`: Unix time the copy was sent (0: unknown); `now`: Unix time of the
        fetch; `match`: the range the full address fell in, when the anonymizer looked
        (False: it did not, and `network` is looked up)."""
        found = list(agents.signals(user_agent, method, network, sent_at, now,
                                   self.fast_seconds))
        if match is False:
            match = self.networks.find(network)
        if isinstance(match, Match):
            found.append(_NETWORK_SIGNAL[match.kind])
        if method == "HEAD":
            self._remember(pixel, now)
        elif self._after_head(pixel, now):
            found.append("head-then-get")
        signals = tuple(dict.fromkeys(found))
        return Judgement(verdict_of(signals), signals, agents.family(user_agent))

    def _remember(self, pixel: str, now: float) -> None:
        self._heads[pixel] = now
        self._heads.move_to_end(pixel)
        while len(self._heads) > HEAD_MEMORY:
            self._heads.popitem(last=False)

    def _after_head(self, pixel: str, now: float) -> bool:
        at = self._heads.get(pixel)
        return at is not None and 0 <= now - at <= HEAD_WINDOW
