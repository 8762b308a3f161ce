"""Keyed digests: how entries are stored and found without the list being a list of
addresses anyone with the database can read.

HMAC-SHA256 under the suppression purpose key, of a label and the canonical target, cut to
15 bytes behind one byte that says the kind (a collision among billions of entries is far
less likely than a disk error, and would only suppress someone by mistake). The key is never
rotated: erased people exist only as digests, and a new key would forget them.

The kind byte first: every check probes one address digest and four or so domain digests.
Domain and subdomain entries are few, and with their own first byte they sit together at
one end of the index, in a handful of pages every check keeps warm; only the address probe
reads a page the lookup has not just read. With ten million entries that is the difference
between one cold page per check and five.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from suppression.canonical import parent_domains
from suppression.entries import Kind, Target

DIGEST_BYTES = 16
_DOMAINS_KEPT = 100_000
_LABELS = {Kind.ADDRESS: b"a:", Kind.DOMAIN: b"d:", Kind.SUBDOMAINS: b"w:"}
# the first byte of the digest: addresses sort apart from domains (see above)
_KIND_BYTE = {b"a:": b"\x80", b"d:": b"\x01", b"w:": b"\x02"}


@dataclass(frozen=True, slots=True)
class Digester:
    key: bytes = field(repr=False)
    key_id: str  # which key: exports carry it, so digests go back only where it is held
    # A domain's digests, kept: recipients crowd onto few domains.
    _for_domain: dict[str, list[bytes]] = field(
        default_factory=dict, init=False, repr=False, compare=False)
    _keyed: hmac.HMAC = field(init=False, repr=False, compare=False)

    def target(self, target: Target) -> bytes:
        return self._digest(_LABELS[target.kind], target.value)

    def lookups(self, canonical_address: str) -> list[bytes]:
        """Every digest an entry matching this address could have: the address, its
        domain, and the domain and each parent as a subdomains entry."""
        domain = canonical_address.rpartition("@")[2]
        for_domain = self._for_domain.get(domain)
        if for_domain is None:
            if len(self._for_domain) >= _DOMAINS_KEPT:
                self._for_domain.clear()
            for_domain = [self._digest(b"d:", domain)]
            for_domain.extend(self._digest(b"w:", parent) for parent in parent_domains(domain))
            self._for_domain[domain] = for_domain
        return [self._digest(b"a:", canonical_address), *for_domain]

    def _digest(self, label: bytes, value: str) -> bytes:
        mac = self._keyed.copy()  # the key's pads are hashed once, not on every digest
        mac.update(label + value.encode())
        return _KIND_BYTE[label] + mac.digest()[:DIGEST_BYTES - 1]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_keyed", hmac.new(self.key, digestmod=hashlib.sha256))
