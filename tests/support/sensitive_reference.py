"""The slow, obviously-right finder the fast one (gateway/policy/sensitive.py) is tested
against: the implementation before issue 25, kept as the oracle of the differential tests.

Finding sensitive data in text: payment cards, US SSNs, IBANs, secret and API-key shapes.

Pure functions over text a reader sees (the caller strips HTML tags, so digits inside
attributes are gone, and URLs are removed here: campaign HTML is full of long ids, and one
random digit string in ten passes Luhn). Findings name the kind, never the value.

- Cards: 13 to 19 digits, single spaces or dashes allowed between them, an issuer prefix
  whose length rule fits (Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay), and Luhn.
- SSNs: `AAA-GG-SSSS` (dashes or spaces), area not 000, 666 or 900-999, group not 00,
  serial not 0000.
- IBANs: a country's exact length and mod-97 = 1.
- Secrets: AWS access key ids, GitHub and Slack tokens, Stripe live keys, Google API keys,
  PEM private keys.
"""

from __future__ import annotations

import re

_URL = re.compile(r"(?:https?|ftp)://\S+|www\.\S+", re.IGNORECASE)
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_SSN = re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])")
_IBAN = re.compile(r"\b([A-Z]{2})(\d{2})((?: ?[A-Z0-9]){11,30})\b")
_SECRETS = {
    "aws-access-key": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "github-token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{60,})\b"),
    "slack-token": re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}\b"),
    "stripe-live-key": re.compile(r"\b(?:sk|rk)_live_[0-9a-zA-Z]{24,}\b"),
    "google-api-key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "private-key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"),
}
# ISO 13616 registry lengths
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_brand(digits: str) -> str | None:
    n = len(digits)
    two, three, four = int(digits[:2]), int(digits[:3]), int(digits[:4])
    if digits[0] == "4" and n in (13, 16, 19):
        return "visa"
    if (51 <= two <= 55 or 2221 <= four <= 2720) and n == 16:
        return "mastercard"
    if two in (34, 37) and n == 15:
        return "amex"
    if (four == 6011 or 644 <= three <= 649 or two == 65) and 16 <= n <= 19:
        return "discover"
    if (300 <= three <= 305 or two in (36, 38, 39)) and 14 <= n <= 19:
        return "diners"
    if 3528 <= four <= 3589 and 16 <= n <= 19:
        return "jcb"
    if two == 62 and 16 <= n <= 19:
        return "unionpay"
    return None


def _iban_ok(country: str, check: str, rest: str) -> bool:
    body = rest.replace(" ", "")
    iban = country + check + body
    if IBAN_LENGTHS.get(country) != len(iban):
        return False
    moved = body + country + check
    number = "".join(str(int(c, 36)) for c in moved)
    return int(number) % 97 == 1


def find(text: str) -> list[str]:
    """The kinds of sensitive data in `text` (each kind once)."""
    text = _URL.sub(" ", text)
    kinds: list[str] = []
    for m in _CARD.finditer(text):
        digits = re.sub(r"[ -]", "", m.group(0))
        if card_brand(digits) and luhn(digits):
            kinds.append("payment card number")
            break
    for m in _SSN.finditer(text):
        area, group, serial = int(m.group(1)), int(m.group(3)), int(m.group(4))
        if area not in (0, 666) and area < 900 and group != 0 and serial != 0:
            kinds.append("US social security number")
            break
    for m in _IBAN.finditer(text):
        if _iban_ok(m.group(1), m.group(2), m.group(3)):
            kinds.append("IBAN")
            break
    kinds.extend(name for name, pattern in _SECRETS.items() if pattern.search(text))
    return kinds
