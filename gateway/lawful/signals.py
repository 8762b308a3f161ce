"""What says where a recipient is, and what kind of recipient, in order of trust:

1. a recipient attribute record (country, kind) the tenant imported;
2. a consent record — it does not place anyone, but it satisfies `require-consent`;
3. what the campaign tool states in the message (`X-Gateway-Recipient`, lawful/stated.py);
4. the address's country-code top-level domain — except the ccTLDs sold for generic use
   (`.io`, `.co`, `.me`, `.ai`, `.tv`, ...), which say nothing, like every gTLD;
5. the tenant's default decision.

Never the location of a domain's mail servers: where a company hosts its mail says nothing
about whom the law protects.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from gateway.lawful.table import Decision, Kind, Table, country_code

# ccTLDs marketed for generic use (Google treats these as generic too), and two-letter
# TLDs that are not one country's
NO_SIGNAL = frozenset({
    "ac", "ad", "ai", "am", "as", "bz", "cc", "cd", "co", "cx", "dj", "eu", "fm", "gg", "gs",
    "io", "la", "ly", "me", "ms", "nu", "sc", "sh", "sr", "st", "su", "tk", "to", "tv", "vc",
    "ws",
})
TLD_COUNTRY = {"uk": "GB"}  # the United Kingdom's ccTLD is not its ISO code


class Source(enum.StrEnum):
    RECORD = "record"  # the tenant's attribute record
    HEADER = "header"  # the tool's X-Gateway-Recipient field
    CCTLD = "cctld"
    TENANT_DEFAULT = "tenant-default"
    TABLE_DEFAULT = "table-default"


@dataclass(frozen=True, slots=True)
class Attributes:
    """A recipient attribute record: what the tenant knows of the person."""

    country: str | None
    kind: Kind | None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The table's decision for one recipient, what it rested on, and whether a consent
    record lifted a `require-consent`."""

    decision: Decision  # the table's (or the tenant default's)
    source: Source
    country: str  # "" when nothing placed the recipient
    kind: Kind | None
    consented: bool = False

    @property
    def sends(self) -> bool:
        return self.decision in (Decision.ALLOW, Decision.ALLOW_WITH_NOTICE) or (
            self.decision is Decision.REQUIRE_CONSENT and self.consented)

    @property
    def notice(self) -> bool:
        return self.decision is Decision.ALLOW_WITH_NOTICE


def tld_country(address: str) -> str | None:
    """The country an address's ccTLD names; None for a gTLD or a generic-use ccTLD."""
    domain = address.rpartition("@")[2].rstrip(".").lower()
    tld = domain.rpartition(".")[2]
    if len(tld) != 2 or not tld.isascii() or not tld.isalpha() or tld in NO_SIGNAL:
        return None
    return TLD_COUNTRY.get(tld, tld.upper())


def decide(table: Table, address: str, attributes: Attributes | None = None,
           consented: bool = False, tenant_default: Decision | None = None,
           stated: Attributes | None = None) -> Verdict:
    """One recipient's decision from the strongest signal there is."""
    for said, source in ((attributes, Source.RECORD), (stated, Source.HEADER)):
        if said is not None and (said.country or said.kind):
            placed = country_code(said.country) if said.country else (
                tld_country(address) or "")
            decision = table.decide(placed or None, said.kind)
            return Verdict(decision, source, placed, said.kind, consented)
    country = tld_country(address)
    if country is not None:
        return Verdict(table.decide(country, None), Source.CCTLD, country, None, consented)
    if tenant_default is not None:
        return Verdict(tenant_default, Source.TENANT_DEFAULT, "", None, consented)
    return Verdict(table.default.decide(None), Source.TABLE_DEFAULT, "", None, consented)
