"""What an open's user agent tells: its family (never the full string), and whether a
machine rather than a person opened.

Machine-open signals (each a name in the open's `signals`):
- `google-proxy`: Gmail's image proxy fetched it (UA "... GoogleImageProxy"); Gmail fetches
  when the reader opens, so it is an open, but not from the reader's device;
- `yahoo-proxy`: Yahoo Mail's image proxy (UA "YahooMailProxy");
- `apple-mpp`: Apple Mail Privacy Protection prefetches every image on delivery; its fetches
  carry the bare UA "Mozilla/5.0" (or come from Apple's 17.0.0.0/8);
- `scanner`: a security scanner or a script (Barracuda, Mimecast, Proofpoint, Symantec,
  Cisco, Microsoft's link protection, curl, python-requests, Go, Java, headless browsers,
  bots, no UA at all), or a HEAD request;
- `fast`: within `pixels.machine_open_seconds` of the copy being sent: no person reads that
  fast; gateways and scanners do.
`machine` is true if any signal except the two proxies is present (a proxy open is still the
reader opening the mail).
"""

from __future__ import annotations

import ipaddress
import re

_FAMILIES = (
    ("GoogleImageProxy", "Gmail image proxy"), ("YahooMailProxy", "Yahoo Mail proxy"),
    ("Thunderbird", "Thunderbird"), ("Microsoft Outlook", "Outlook"),
    ("ms-office", "Outlook"), ("Outlook", "Outlook"), ("Edg/", "Edge"), ("OPR/", "Opera"),
    ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("CriOS", "Chrome"),
    ("AppleWebKit", "Apple Mail / Safari"),
)
_SCANNERS = re.compile(
    r"barracuda|mimecast|proofpoint|symantec|messagelabs|cisco|ironport|trend ?micro|"
    r"forcepoint|fortinet|sophos|safelinks|microsoft office protocol|curl/|wget/|"
    r"python-|aiohttp|go-http-client|java/|okhttp|headless|phantomjs|bot\b|bot/|spider|"
    r"crawler|scanner|preview", re.IGNORECASE)
_APPLE = ipaddress.ip_network("17.0.0.0/8")
PROXIES = frozenset({"google-proxy", "yahoo-proxy"})


def family(user_agent: str) -> str:
    if not user_agent:
        return "unknown"
    if _SCANNERS.search(user_agent):
        return "bot or scanner"
    for marker, name in _FAMILIES:
        if marker in user_agent:
            return name
    if user_agent.strip() == "Mozilla/5.0":
        return "Apple Mail (privacy proxy)"
    return "other"


def signals(user_agent: str, method: str, network: str, sent_at: int, now: float,
            fast_seconds: float) -> tuple[str, ...]:
    found = []
    if "GoogleImageProxy" in user_agent:
        found.append("google-proxy")
    if "YahooMailProxy" in user_agent:
        found.append("yahoo-proxy")
    try:
        apple_net = ipaddress.ip_network(network, strict=False).subnet_of(_APPLE)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        apple_net = False
    if user_agent.strip() == "Mozilla/5.0" or apple_net:
        found.append("apple-mpp")
    if method == "HEAD" or not user_agent.strip() or _SCANNERS.search(user_agent):
        found.append("scanner")
    if sent_at and 0 <= now - sent_at < fast_seconds:
        found.append("fast")
    return tuple(found)


def is_machine(found: tuple[str, ...]) -> bool:
    return any(s not in PROXIES for s in found)
