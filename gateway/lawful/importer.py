"""Importing a tenant's recipient and consent records from CSV, as suppressions are: the
address is digested as each row is read and never stored; a bad row is reported with its
line number and the rest go in; all rows of a file commit together.

    address,country,kind                           (attribute records)
    anna.schmidt@firma.de,DE,named

    address,basis,given_at,source,method,evidence,scope,expires_at      (consent records)
    bob@company.ca,casl-inquiry,2026-11-02,webform,inquiry form,form 17,,
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import InvalidValue
from gateway.lawful import records
from gateway.lawful.index import RecordIndex
from gateway.lawful.records import Basis, Consent
from gateway.lawful.signals import Attributes
from gateway.lawful.table import Kind
from suppression.canonical import InvalidAddress, canonical

MAX_ROWS = 1_000_000
MAX_REPORTED = 100  # refused rows named in the report


@dataclass
class Imported:
    imported: int = 0
    refused: int = 0
    problems: list[str] = field(default_factory=list)  # "line 7: ..." (first MAX_REPORTED)

    def refuse(self, line: int, why: str) -> None:
        self.refused += 1
        if len(self.problems) < MAX_REPORTED:
            self.problems.append(f"line {line}: {why}")


def _when(text: str, name: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidValue(f"{name} is a date or ISO time, not {text[:30]!r}") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _rows(text: str, needed: tuple[str, ...]) -> Iterable[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    # an export names people by digest: it goes back into an installation with the same key
    missing = [n for n in needed if n not in header and not (n == "address"
                                                             and "digest" in header)]
    if missing:
        raise InvalidValue(f"The CSV needs the columns {', '.join(needed)} "
                           f"(missing: {', '.join(missing)}).")
    reader.fieldnames = header
    for n, row in enumerate(reader, 2):
        if n > MAX_ROWS + 1:
            raise InvalidValue(f"At most {MAX_ROWS} rows a file.")
        yield n, {k: (v or "").strip() for k, v in row.items() if k is not None}


def _person(row: dict[str, str], digest: Callable[[str], str]) -> str:
    """The person's digest: of the row's address, or the row's own (an export's)."""
    if row.get("address"):
        return digest(_address(row))
    given = row.get("digest", "").lower()
    if len(given) != 64 or any(ch not in "0123456789abcdef" for ch in given):
        raise InvalidValue("give an address (or an export's 64-hex digest)")
    return given


def _address(row: dict[str, str]) -> str:
    """The address as RCPT will carry it (the digest folds case); refused if not one."""
    try:
        canonical(row["address"])
    except InvalidAddress:
        raise InvalidValue("not an address") from None
    return row["address"]


async def import_attributes(engine: AsyncEngine, index: RecordIndex, tenant_id: int,
                            text: str, digest: Callable[[str], str], actor: str) -> Imported:
    report = Imported()
    touched: list[str] = []
    async with engine.begin() as conn:
        for line, row in _rows(text, ("address", "country", "kind")):
            try:
                person = _person(row, digest)
                kind = Kind.parse(row["kind"]) if row["kind"] else None
                if not row["country"] and kind is None:
                    raise InvalidValue("give a country, a kind or both")
                await records.put_attributes(conn, tenant_id, person,
                                             Attributes(row["country"] or None, kind),
                                             "import", actor, touched)
            except (InvalidValue, ValueError) as exc:
                report.refuse(line, exc.message if isinstance(exc, InvalidValue) else str(exc))
                continue
            report.imported += 1
        if touched:
            await records.note_change(conn, tenant_id, touched)
    await index.refresh()  # this node decides on them at once; the others within seconds
    return report


async def import_consents(engine: AsyncEngine, index: RecordIndex, tenant_id: int,
                          text: str, digest: Callable[[str], str], actor: str) -> Imported:
    report = Imported()
    touched: list[str] = []
    async with engine.begin() as conn:
        for line, row in _rows(text, ("address", "basis", "given_at", "source")):
            try:
                person = _person(row, digest)
                try:
                    basis = Basis(row["basis"].lower())
                except ValueError:
                    raise InvalidValue("basis is one of " + ", ".join(b.value for b in Basis)
                                       ) from None
                given = _when(row["given_at"], "given_at")
                if given is None:
                    raise InvalidValue("given_at is needed")
                await records.add_consent(conn, Consent(
                    tenant_id, person, basis, given, row["source"], row.get("method", ""),
                    row.get("evidence", ""), row.get("scope", ""),
                    _when(row.get("expires_at", ""), "expires_at"),
                    _when(row.get("withdrawn_at", ""), "withdrawn_at")), actor, touched)
            except InvalidValue as exc:
                report.refuse(line, exc.message)
                continue
            report.imported += 1
        if touched:
            await records.note_change(conn, tenant_id, touched)
    await index.refresh()  # this node decides on them at once; the others within seconds
    return report
