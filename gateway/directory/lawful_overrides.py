"""A tenant's own lawful-basis rules (tenant setting `lawful_overrides`), read when set:

    GB=require-consent FR.generic=deny US.sole-trader=allow-with-notice

Each entry is a country (ISO 3166-1 alpha-2, `UK` read as `GB`), optionally one kind
(`named`, `generic`, `sole-trader`), and a decision. The operator's table is a floor: an
entry makes the tenant stricter than the table, never laxer (lawful/decider.py takes the
stricter of the two), so a tenant cannot send where the operator's counsel said no.
"""

from __future__ import annotations

import functools
import hashlib

from gateway.errors import InvalidValue

DECISIONS = ("allow", "allow-with-notice", "require-consent", "deny")
KINDS = ("named", "generic", "sole_trader")
MAX_ENTRIES = 300


@functools.lru_cache(maxsize=256)
def parse(text: str) -> dict[tuple[str, str], str]:
    """{(country, kind or ""): decision}; InvalidValue names the entry that is wrong."""
    rules: dict[tuple[str, str], str] = {}
    entries = text.replace(",", " ").replace(";", " ").split()
    if len(entries) > MAX_ENTRIES:
        raise InvalidValue(f"At most {MAX_ENTRIES} entries.")
    for entry in entries:
        where, eq, decision = entry.partition("=")
        country, _, kind = where.partition(".")
        country = {"UK": "GB", "EL": "GR"}.get(country.upper(), country.upper())
        kind = kind.lower().replace("-", "_")
        if not eq or len(country) != 2 or not country.isascii() or not country.isalpha():
            raise InvalidValue(f"{entry[:40]!r}: an entry is COUNTRY[.kind]=decision, the "
                               "country an ISO 3166-1 alpha-2 code (GB=require-consent).")
        if kind and kind not in KINDS:
            raise InvalidValue(f"{entry[:40]!r}: the kind is named, generic or sole-trader.")
        if decision not in DECISIONS:
            raise InvalidValue(f"{entry[:40]!r}: the decision is one of "
                               f"{', '.join(DECISIONS)}.")
        rules[(country, kind)] = decision
    return rules


@functools.lru_cache(maxsize=256)
def revision(text: str) -> str:
    """Which rules these are, short: a refusal and a copy's audit row name it, and the same
    rules (however written) always give the same name. Computed once per text."""
    rules = " ".join(f"{c}{'.' + k if k else ''}={d}" for (c, k), d in sorted(parse(text).items()))
    return hashlib.sha256(rules.encode()).hexdigest()[:8]
