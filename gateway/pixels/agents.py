"""What an open's user agent tells: its family (never the full string), and the signals
of a fetch by something other than the reader's own mail client (verdict.py weighs them).

Signals from the fetch itself (the range file adds network signals, verdict.py `fast`'s
reading and `head-then-get`):
- `google-proxy`: Gmail's image proxy fetched it (UA "... GoogleImageProxy"); Gmail fetches
  when the reader opens, so it is an open, but not from the reader's device;
- `yahoo-proxy`: Yahoo Mail's image proxy (UA "YahooMailProxy");
- `apple-mpp`: Apple Mail Privacy Protection prefetches every image on delivery; its fetches
  carry the bare UA "Mozilla/5.0" (or come from Apple's own 17.0.0.0/8);
- `scanner`: a security scanner or a script by its user agent (the families below), no UA
  at all, or a HEAD request;
- `fast`: within `pixels.machine_open_seconds` of the copy being sent: no person reads that
  fast; gateways, scanners and prefetchers do.
"""

from __future__ import annotations

import ipaddress
import re

_FAMILIES = (
    ("GoogleImageProxy", "Gmail image proxy"), ("YahooMailProxy", "Yahoo Mail proxy"),
    ("Thunderbird", "Thunderbird"), ("Microsoft Outlook", "Outlook"),
    ("ms-office", "Outlook"), ("Outlook", "Outlook"), ("SamsungBrowser", "Samsung Internet"),
    ("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
    ("CriOS", "Chrome"), ("FxiOS", "Firefox"),
)
# Scanners and scripts by name, as their vendors document them or as they announce
# themselves; the family keeps the vendor, never the string.
_SCANNER_FAMILIES = (
    ("barracuda", "Barracuda"), ("mimecast", "Mimecast"), ("proofpoint", "Proofpoint"),
    ("symantec", "Symantec"), ("messagelabs", "Symantec"), ("ironport", "Cisco"),
    ("cisco", "Cisco"), ("trend micro", "Trend Micro"), ("trendmicro", "Trend Micro"),
    ("forcepoint", "Forcepoint"), ("fortinet", "Fortinet"), ("sophos", "Sophos"),
    ("safelinks", "Microsoft link protection"),
    ("microsoft office protocol", "Microsoft link protection"),
    ("headless", "headless browser"), ("phantomjs", "headless browser"),
    ("curl/", "script"), ("wget/", "script"), ("python-", "script"), ("aiohttp", "script"),
    ("go-http-client", "script"), ("java/", "script"), ("okhttp", "script"),
    ("libwww-perl", "script"), ("node-fetch", "script"), ("axios/", "script"),
)
_SCANNERS = re.compile(
    "|".join(re.escape(marker) for marker, _ in _SCANNER_FAMILIES)
    + r"|trend ?micro|bot\b|bot/|spider|crawler|scanner|preview", re.IGNORECASE)
_APPLE = ipaddress.ip_network("17.0.0.0/8")


def family(user_agent: str) -> str:
    if not user_agent.strip():
        return "unknown"
    lowered = user_agent.lower()
    for marker, name in _SCANNER_FAMILIES:
        if marker in lowered:
            return name
    if _SCANNERS.search(user_agent):
        return "bot or scanner"
    for marker, name in _FAMILIES:
        if marker in user_agent:
            return name
    if user_agent.strip() == "Mozilla/5.0":
        return "Apple Mail (privacy proxy)"
    if "AppleWebKit" in user_agent:  # Safari's says "Safari/"; Mail's does not
        if "Safari/" in user_agent:
            return "Safari"
        return "iOS Mail" if "iPhone" in user_agent or "iPad" in user_agent else "Apple Mail"
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

