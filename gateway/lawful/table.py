"""The lawful-basis table: data, not code (deploy/lawful-basis.toml). For a recipient's
country and kind it gives one decision — `allow`, `allow-with-notice`, `require-consent`,
`deny` — with the source it rests on and whether that source was verified.

A country the table does not list, and a recipient with no country, take the `[default]`
row. A recipient whose kind is not known takes the strictest of its country's three
decisions: a named person and a sole trader are not told apart by their address.
"""

from __future__ import annotations

import enum
import hashlib
import tomllib
from dataclasses import dataclass
from typing import Any

from gateway.errors import InvalidValue

ALIASES = {"UK": "GB", "EL": "GR"}  # the names people (and the EU) use for two ISO codes


class Decision(enum.StrEnum):
    ALLOW = "allow"
    ALLOW_WITH_NOTICE = "allow-with-notice"
    REQUIRE_CONSENT = "require-consent"
    DENY = "deny"

    @property
    def strictness(self) -> int:
        return _STRICTNESS[self]


_STRICTNESS = {Decision.ALLOW: 0, Decision.ALLOW_WITH_NOTICE: 1,
               Decision.REQUIRE_CONSENT: 2, Decision.DENY: 3}


class Kind(enum.StrEnum):
    NAMED = "named"
    GENERIC = "generic"
    SOLE_TRADER = "sole_trader"

    @classmethod
    def parse(cls, text: str) -> Kind:
        """`named`, `generic`, `sole_trader` (or `sole-trader`, as a header writes it)."""
        try:
            return cls(text.strip().lower().replace("-", "_"))
        except ValueError:
            raise ValueError(f"kind is one of named, generic, sole-trader, not {text[:30]!r}") \
                from None


@dataclass(frozen=True, slots=True)
class Row:
    country: str  # ISO 3166-1 alpha-2, or "" for the default row
    decisions: dict[Kind, Decision]
    source: str
    verified: bool
    note: str = ""

    def decide(self, kind: Kind | None) -> Decision:
        if kind is None:
            return max(self.decisions.values(), key=lambda d: d.strictness)
        return self.decisions[kind]


@dataclass(frozen=True, slots=True)
class Table:
    policy_id: str
    title: str
    default: Row
    countries: dict[str, Row]
    digest: str  # of the document: a version names exactly this content

    def row(self, country: str | None) -> Row:
        if not country:
            return self.default
        return self.countries.get(country_code(country), self.default)

    def decide(self, country: str | None, kind: Kind | None) -> Decision:
        return self.row(country).decide(kind)


def country_code(text: str) -> str:
    code = text.strip().upper()
    return ALIASES.get(code, code)


def _row(country: str, raw: Any, where: str) -> Row:
    if not isinstance(raw, dict):
        raise InvalidValue(f"{where}: a table of named, generic, sole_trader, source.")
    decisions = {}
    for kind in Kind:
        value = raw.get(kind.value)
        try:
            decisions[kind] = Decision(str(value))
        except ValueError:
            raise InvalidValue(f"{where}.{kind.value}: one of allow, allow-with-notice, "
                              f"require-consent, deny (not {value!r}).") from None
    unknown = set(raw) - {k.value for k in Kind} - {"source", "verified", "note"}
    if unknown:
        raise InvalidValue(f"{where}: unknown keys {', '.join(sorted(unknown))}.")
    source = raw.get("source")
    if not isinstance(source, str) or not source.strip():
        raise InvalidValue(f"{where}.source: say what the row rests on.")
    verified = raw.get("verified")
    if not isinstance(verified, bool):
        raise InvalidValue(f"{where}.verified: true or false.")
    return Row(country, decisions, source.strip(), verified, str(raw.get("note", "")).strip())


def parse(text: str, name: str = "lawful-basis table") -> Table:
    """The table of a TOML document; InvalidValue naming the place of the first mistake."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidValue(f"{name}: not TOML ({exc}).") from None
    policy_id = doc.get("id")
    if not isinstance(policy_id, str) or not policy_id.strip() or len(policy_id) > 60:
        raise InvalidValue(f"{name}: `id` names the table (at most 60 characters).")
    if "default" not in doc:
        raise InvalidValue(f"{name}: a [default] row is needed (no country signal).")
    countries = {}
    for code, raw in (doc.get("countries") or {}).items():
        iso = country_code(code)
        if len(iso) != 2 or not iso.isalpha() or not iso.isascii():
            raise InvalidValue(f"{name}: [countries.{code}] is not an ISO 3166-1 alpha-2 code.")
        if iso in countries:
            raise InvalidValue(f"{name}: [countries.{code}] twice.")
        countries[iso] = _row(iso, raw, f"{name} [countries.{code}]")
    unknown = set(doc) - {"id", "title", "default", "countries"}
    if unknown:
        raise InvalidValue(f"{name}: unknown keys {', '.join(sorted(unknown))}.")
    return Table(policy_id.strip(), str(doc.get("title", "")).strip(),
                 _row("", doc["default"], f"{name} [default]"), countries,
                 hashlib.sha256(text.encode()).hexdigest())
