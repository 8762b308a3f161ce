"""The slow, obviously-right finder the fast one (gateway/policy/sensitive.py) is tested
against: the implementation before issue 25 (its scanning; the card, Luhn and IBAN rules it
shares with the finder did not change), kept as the oracle of the differential tests.

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

from gateway.policy.sensitive import _iban_ok, card_brand, luhn  # unchanged by issue 25

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
