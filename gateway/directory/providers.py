"""Which mailbox provider a recipient's address is at, as far as its domain tells: the class
a copy's audit row records at send time, so a report of bounce and complaint rates by
provider (issue 31) is computed from the audit trail alone, the same way every time.

Only the consumer domains each provider runs are known. A business domain hosted at Google
or Microsoft is `other`: telling it apart takes an MX lookup, and the gateway looks nothing
up in DNS to send a copy.
"""

from __future__ import annotations

from functools import lru_cache

GOOGLE, MICROSOFT, YAHOO, APPLE, OTHER = "google", "microsoft", "yahoo", "apple", "other"
CLASSES = (GOOGLE, MICROSOFT, YAHOO, APPLE, OTHER)

_DOMAINS = {
    GOOGLE: ("gmail.com", "googlemail.com"),
    MICROSOFT: ("outlook.com", "hotmail.com", "live.com", "msn.com", "passport.com"),
    YAHOO: ("yahoo.com", "ymail.com", "rocketmail.com", "aol.com", "aim.com"),
    APPLE: ("icloud.com", "me.com", "mac.com"),
}
# the same providers' country domains: hotmail.co.uk, outlook.fr, yahoo.co.jp, aol.de ...
_PREFIXES = {MICROSOFT: ("hotmail.", "outlook.", "live.", "windowslive."),
             YAHOO: ("yahoo.", "aol.")}
_BY_DOMAIN = {domain: name for name, domains in _DOMAINS.items() for domain in domains}


@lru_cache(maxsize=65536)
def provider_class(address: str) -> str:
    """`google`, `microsoft`, `yahoo`, `apple` or `other`, from the address's domain."""
    domain = address.rpartition("@")[2].rstrip(".").lower()
    found = _BY_DOMAIN.get(domain)
    if found is not None:
        return found
    for name, prefixes in _PREFIXES.items():
        if domain.startswith(prefixes) and _country_suffix(domain.partition(".")[2]):
            return name
    return OTHER


def _country_suffix(rest: str) -> bool:
    """`fr`, `co.uk`, `com.au`: a country code, alone or after a second-level label."""
    labels = rest.split(".")
    return (len(labels) == 1 and len(labels[0]) == 2) or (
        len(labels) == 2 and labels[0] in ("co", "com") and len(labels[1]) == 2)
