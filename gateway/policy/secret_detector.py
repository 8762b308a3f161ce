"""Secrets in mail content: detect-secrets (Yelp's maintained detector) on the few lines that
can hold one, and a random-looking value right after a word that names a secret.

Run on every line, detect-secrets costs tens of milliseconds per 10 KB; most outreach has
no line it needs to see. A line is read only when it holds a provider's literal prefix (a
cloud key id, a token prefix, `-----BEGIN`) or a word that names a secret (`secret`,
`password`, `api key`, `token`, ...). There, detect-secrets' provider detectors (each knows
its own format) and its keyword detector run; and a value of 16 or more characters that
follows such a word (`aws_secret_access_key = ...`, `Secret access key: ...`,
`password: ...`) counts if it looks random (Shannon entropy, letters and digits mixed) and
detect-secrets' heuristics do not call it an id (a UUID, a sequence, a template). No
entropy rule runs without the word: tracking ids, UUIDs and Message-IDs pass. URLs are
gone before (the caller removes them). Findings name the kind of secret, never the value.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.core.scan import scan_line
from detect_secrets.filters.heuristic import (
    is_potential_uuid,
    is_sequential_string,
    is_templated_secret,
)
from detect_secrets.settings import get_settings

# detect-secrets' provider detectors and its keyword detector; not its entropy detectors
# (they would flag every tracking id), nor IP addresses or URLs (the caller removed URLs)
_DETECTORS = ("AWSKeyDetector", "ArtifactoryDetector", "AzureStorageKeyDetector",
              "CloudantDetector", "DiscordBotTokenDetector", "GitHubTokenDetector",
              "GitLabTokenDetector", "IbmCloudIamDetector", "IbmCosHmacDetector",
              "JwtTokenDetector", "MailchimpDetector", "NpmDetector", "OpenAIDetector",
              "PrivateKeyDetector", "PypiTokenDetector", "SendGridDetector", "SlackDetector",
              "SoftlayerDetector", "SquareOAuthDetector", "StripeDetector",
              "TelegramBotTokenDetector", "TwilioKeyDetector", "KeywordDetector")
# the names the regex finders (sensitive.py) give the same kinds
_KINDS = {"GitHub Token": "github-token", "Slack Token": "slack-token",
          "Stripe Access Key": "stripe-live-key", "Private Key": "private-key",
          "AWS Access Key": "aws-key", "Secret Keyword": "secret-assignment"}
# formats detect-secrets does not know yet
_OURS = {"npm-token": re.compile(r"\bnpm_[A-Za-z0-9]{36}\b")}

# words that name a secret (lower case): a line with one is read
_WORDS = ("secret", "password", "passwd", "passphrase", "api_key", "apikey", "api-key",
          "api key", "access_key", "access key", "accesskey", "private_key", "private key",
          "token", "credential", "auth_key", "bearer")
# literal prefixes of provider formats (as written): a line with one is read
_PREFIXES = ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "-----BEGIN",
             "xox", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-",
             "sk_live_", "rk_live_", "T3BlbkFJ", "SG.", "npm_", "pypi-", "AIza", "eyJ",
             "AccountKey=", "sq0csp-")
# a word naming a secret (inside an identifier too: AWS_SECRET_ACCESS_KEY), up to three
# more words ("secret access key"), a separator, and the value
_ASSIGNED = re.compile(
    r"[\w-]*(?:secret|passw(?:or)?d|passphrase|api[ _-]?key|access[ _-]?key|"
    r"private[ _-]?key|credential|auth[ _-]?key|bearer|token)[\w-]*"
    r"(?:[ \t]+[A-Za-z]+){0,3}[\"']?[ \t]*(?:=>|[:=]|\bis\b)?[ \t]*[\"']?"
    r"(?P<value>[^\s\"'<>,;()]{16,})", re.IGNORECASE)
# bits per character a value needs to look random: hex digits carry at most 4, so a hex
# value needs less (detect-secrets' own limit for hex strings is 3.0)
_RANDOM_BITS, _RANDOM_HEX_BITS = 3.5, 3.0
_HEX = frozenset("0123456789abcdefABCDEF")


def _configure() -> None:
    """Our detector set, once per process (detect-secrets keeps its settings globally; the
    gateway is its only user here)."""
    detectors: dict[str, type] = get_mapping_from_secret_type_to_class()
    known = {detector.__name__ for detector in detectors.values()}
    get_settings().configure_plugins([{"name": n} for n in _DETECTORS if n in known])


_configure()


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def _looks_random(value: str) -> bool:
    limit = _RANDOM_HEX_BITS if _HEX.issuperset(value) else _RANDOM_BITS
    return (_entropy(value) >= limit and any(c.isdigit() for c in value)
            and any(c.isalpha() for c in value) and not is_potential_uuid(value)
            and not is_sequential_string(value) and not is_templated_secret(value))


# Cheap gates before the lines are looked at: a few literal searches in the text's bytes
# (one per character, `?` for non-ASCII) and in its shapes (digits 0, capitals A, small
# letters a; sensitive.py makes both). Each word and prefix above passes one of them.
_WORD_ANCHORS = (b"secret", b"pass", b"api", b"access", b"private", b"token", b"credential",
                 b"auth", b"bearer")
_PREFIX_ANCHORS = (b"-----BEGIN", b"xox", b"T3BlbkFJ", b"SG.", b"eyJ", b"AccountKey=",
                   b"glpat-", b"pypi-", b"sq0csp-")
_AWS_IDS = (b"AKIA", b"ASIA", b"AGPA", b"AIDA", b"AROA", b"AIPA", b"ANPA", b"ANVA")
_UNDERSCORED = (b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_", b"github_pat_", b"sk_live_",
                b"rk_live_", b"npm_")


def _worth_reading(raw: bytes, shape: bytes) -> bool:
    low = raw.lower()
    return (any(w in low for w in _WORD_ANCHORS)
            or (b"AAAA" in shape and any(p in raw for p in _AWS_IDS)) or b"AIza" in raw
            or any(p in raw for p in _PREFIX_ANCHORS)
            or (b"_" in raw and any(p in raw for p in _UNDERSCORED)))


def _candidate_lines(text: str) -> list[str]:
    """The lines holding a prefix or a word; each line is tried only for the ones the
    whole text holds."""
    lowered = text.lower()
    prefixes = [p for p in _PREFIXES if p in text]
    words = [w for w in _WORDS if w in lowered]
    return [line for line in text.splitlines()
            if any(p in line for p in prefixes)
            or (words and any(w in line.lower() for w in words))]


def find_secrets(text: str, raw: bytes, shape: bytes) -> list[str]:
    """The kinds of secret in `text` (each kind once); `raw` and `shape` are its bytes and
    shapes as sensitive.py makes them."""
    kinds: list[str] = []
    if not _worth_reading(raw, shape):
        return kinds
    for line in _candidate_lines(text):
        found = [_KINDS.get(s.type, s.type.lower().replace(" ", "-")) for s in scan_line(line)]
        found += [name for name, pattern in _OURS.items() if pattern.search(line)]
        if any(_looks_random(m.group("value")) for m in _ASSIGNED.finditer(line)):
            found.append("secret-after-a-keyword")
        kinds.extend(k for k in found if k not in kinds)
    return kinds
