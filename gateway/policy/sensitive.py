"""Finding sensitive data in text: payment cards, US SSNs, IBANs, secret and API-key shapes.

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
from collections.abc import Callable

from gateway.policy.secret_detector import find_secrets

# Each pattern starts with a character class or a literal, so the regex engine skips ahead
# to where a match can begin instead of trying every position (a leading `\b` or an
# alternation defeats that; they are checked after the fast part). Digits are ASCII: card
# issuers' prefixes and Luhn, SSNs and IBAN check digits are defined over them.
_URL = re.compile(r"(?:https?|ftp)://\S+|www\.\S+", re.IGNORECASE)
_RUN = re.compile(rb"0[0 -]{7,}0")  # in the shapes: where a card or an SSN can be
_CARD = re.compile(r"(?<![0-9-])[0-9](?:[ -]?[0-9]){12,18}(?![0-9-])")
_SSN = re.compile(r"(?<![0-9-])([0-9]{3})([- ])([0-9]{2})\2([0-9]{4})(?![0-9-])")
_IBAN = re.compile(r"([A-Z]{2})([0-9]{2})((?: ?[A-Z0-9]){11,30})\b")
# name -> (a necessary condition on the raw bytes and shapes, the pattern)
_SECRETS: dict[str, tuple[Callable[[bytes, bytes], bool], re.Pattern[str]]] = {
    "aws-access-key": (lambda raw, shape: b"AAAA" in shape and (b"AKIA" in raw
                                                              or b"ASIA" in raw),
                       re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    "github-token": (lambda raw, shape: b"_" in raw and any(
        literal in raw for literal in (b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_",
                                       b"github_pat_")),
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{60,})\b")),
    "slack-token": (lambda raw, shape: b"xox" in raw,
                    re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}\b")),
    "stripe-live-key": (lambda raw, shape: b"_live_" in raw,
                        re.compile(r"\b(?:sk|rk)_live_[0-9a-zA-Z]{24,}\b")),
    "google-api-key": (lambda raw, shape: b"AIza" in raw,
                       re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    "private-key": (lambda raw, shape: b"-----BEGIN" in raw, re.compile(
        r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----")),
}
# Each character's shape: a digit is 0, a capital A, a small letter a; the rest stays.
_SHAPE = bytes.maketrans(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                         b"0" * 10 + b"A" * 26 + b"a" * 26)

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


def _without_urls(text: str, raw: bytes) -> str:
    """`text` with each URL replaced by a space, as `_URL.sub` would, the regex tried only
    where a URL starts: the scheme before a `://`, and a `www.`."""
    low = raw.lower()
    starts: list[int] = []
    at = low.find(b"://")
    while at != -1:
        if b"?" in raw[max(0, at - 5):at]:  # a non-ASCII letter may case-fold into a scheme
            starts.extend(range(max(0, at - 5), at))
        else:
            starts.extend(at - len(scheme) for scheme in (b"https", b"http", b"ftp")
                          if low[max(0, at - len(scheme)):at] == scheme)
        at = low.find(b"://", at + 3)
    at = low.find(b"www.")
    while at != -1:
        starts.append(at)
        at = low.find(b"www.", at + 1)
    if not starts:
        return text
    pieces, end = [], 0
    for start in sorted(starts):
        if start >= end and (m := _URL.match(text, start)) is not None:
            pieces += [text[end:start], " "]
            end = m.end()
    return "".join([*pieces, text[end:]]) if pieces else text


def _word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _ibans(text: str) -> bool:
    """The matches `\\b` + `_IBAN` would give, one after another: a match not at a word's
    start is tried again a character on; a checked one is passed over whole."""
    pos = 0
    while (m := _IBAN.search(text, pos)) is not None:
        start = m.start()
        if start and _word_char(text[start - 1]):  # not at a word's start: look again
            pos = start + 1
            continue
        if _iban_ok(m.group(1), m.group(2), m.group(3)):
            return True
        pos = m.end()
    return False


def find(text: str) -> list[str]:
    """The kinds of sensitive data in `text` (each kind once).

    The text is looked at once as bytes, one per character (`?` for any non-ASCII one), and
    once as shapes (digits, capitals, small letters): literal searches in those select the
    few places a pattern can match, and only there do the patterns run on the text.
    """
    return _kinds(*_looked_at(text))


def _looked_at(text: str) -> tuple[str, bytes, bytes]:
    """(the text without URLs, its bytes, its shapes): made once per text."""
    raw = text.encode("ascii", "replace")
    stripped = _without_urls(text, raw)
    if stripped is not text:
        text, raw = stripped, stripped.encode("ascii", "replace")
    return text, raw, raw.translate(_SHAPE)


def _kinds(text: str, raw: bytes, shape: bytes) -> list[str]:
    kinds: list[str] = []
    runs = [(m.start(), m.end() + 1) for m in _RUN.finditer(shape)]
    if any(card_brand(d) and luhn(d) for d in _digits(_CARD, text, runs)):
        kinds.append("payment card number")
    if any(_ssn_ok(m) for start, end in runs for m in _SSN.finditer(text, start, end)):
        kinds.append("US social security number")
    if b"AA00" in shape and _ibans(text):
        kinds.append("IBAN")
    kinds.extend(name for name, (hinted, pattern) in _SECRETS.items()
                 if hinted(raw, shape) and pattern.search(text))
    return kinds


def _digits(pattern: re.Pattern[str], text: str, runs: list[tuple[int, int]]
            ) -> list[str]:
    """The digits of each match of `pattern` inside the runs (the character after a run is
    included, so a lookahead sees what really follows)."""
    return [m.group(0).replace(" ", "").replace("-", "")
            for start, end in runs for m in pattern.finditer(text, start, end)]


def _ssn_ok(m: re.Match[str]) -> bool:
    area, group, serial = int(m.group(1)), int(m.group(3)), int(m.group(4))
    return area not in (0, 666) and area < 900 and group != 0 and serial != 0


def find_all(text: str) -> list[str]:
    """`find`, and the secrets detect-secrets finds on the lines that can hold one
    (secret_detector.py): AWS secret access keys, provider tokens, keyed secrets."""
    looked_at = _looked_at(text)
    kinds = _kinds(*looked_at)
    for kind in find_secrets(*looked_at):
        if kind not in kinds:
            kinds.append(kind)
    return kinds
