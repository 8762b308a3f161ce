"""Entries in the database: add (idempotent, merging), remove, read, page, stream.

Every method takes the caller's `AsyncConnection`, so the caller's own rows (an audit
entry, an event) commit in the same transaction. Bulk writes go to the driver directly
(SQLite `executemany`, PostgreSQL `COPY`), since an ORM round trip per row would cost more
than everything else an import does.

Adding an entry that exists merges the two: the first created-at is kept, a permanent entry
is never weakened into an expiring one, and the stronger reason wins (see
`entries.STRENGTH`), so re-adding never turns an opt-out into something ops may remove. An
erasure entry keeps no address, and erases the address from every other scope's entry for
the same target too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from suppression.digest import Digester
from suppression.entries import STRENGTH, Entry, Kind, NewEntry, Reason, Target
from suppression.schema import COLUMNS, suppressions

_T = suppressions.c


def _rank(column: str) -> str:
    cases = " ".join(f"WHEN '{r.value}' THEN {s}" for r, s in STRENGTH.items())
    return f"(CASE {column} {cases} ELSE 0 END)"


def _upsert_sql(placeholders: str) -> str:
    stronger = f"{_rank('excluded.reason')} > {_rank('suppressions.reason')}"
    keep_stronger = ", ".join(
        f"{c} = CASE WHEN {stronger} THEN excluded.{c} ELSE suppressions.{c} END"
        for c in ("source", "note", "created_by"))
    return (
        f"INSERT INTO suppressions ({', '.join(COLUMNS)}) VALUES ({placeholders}) "
        "ON CONFLICT (digest, scope) DO UPDATE SET "
        "expires_at = CASE WHEN suppressions.expires_at IS NULL OR excluded.expires_at IS NULL "
        "THEN NULL WHEN excluded.expires_at > suppressions.expires_at "
        "THEN excluded.expires_at ELSE suppressions.expires_at END, "
        f"reason = CASE WHEN {stronger} THEN excluded.reason ELSE suppressions.reason END, "
        f"{keep_stronger}, "
        "target = CASE WHEN excluded.reason = 'erasure' OR suppressions.reason = 'erasure' "
        "THEN NULL ELSE suppressions.target END, "
        "created_at = CASE WHEN excluded.created_at < suppressions.created_at "
        "THEN excluded.created_at ELSE suppressions.created_at END, "
        "updated_at = excluded.updated_at")


_SQLITE_UPSERT = _upsert_sql(", ".join("?" * len(COLUMNS)))
_PG_UPSERT_FROM_LOAD = _upsert_sql("").replace(
    "VALUES () ", "SELECT * FROM suppressions_load "
    "ORDER BY digest, scope ")  # ORDER BY: a stable lock order between concurrent imports
_PG_LOAD_TABLE = (
    "CREATE TEMP TABLE IF NOT EXISTS suppressions_load ("
    "scope integer, digest bytea, kind varchar(12), target varchar(320), reason varchar(20), "
    "source varchar(40), created_at bigint, expires_at bigint, note varchar(500), "
    "created_by varchar(200), updated_at bigint) ON COMMIT DELETE ROWS")

Row = tuple[Any, ...]  # in COLUMNS order
_by_digest = itemgetter(1)
# an enum's text without the `.value` descriptor (a bulk import asks millions of times)
_TEXT: dict[Kind | Reason, str] = {m: m.value for m in (*Kind, *Reason)}


def _merge(old: Row, new: Row) -> Row:
    """The SQL upsert's rule, for two rows of one batch with the same digest and scope."""
    o, n = dict(zip(COLUMNS, old, strict=True)), dict(zip(COLUMNS, new, strict=True))
    winner = n if STRENGTH[Reason(n["reason"])] > STRENGTH[Reason(o["reason"])] else o
    merged = dict(o, reason=winner["reason"], source=winner["source"], note=winner["note"],
                  created_by=winner["created_by"], updated_at=n["updated_at"],
                  created_at=min(o["created_at"], n["created_at"]))
    if o["expires_at"] is None or n["expires_at"] is None:
        merged["expires_at"] = None
    else:
        merged["expires_at"] = max(o["expires_at"], n["expires_at"])
    if Reason.ERASURE in (o["reason"], n["reason"]):
        merged["target"] = None
    return tuple(merged[c] for c in COLUMNS)


def entry_from_row(r: Any) -> Entry:
    return Entry(id=r.id, scope=r.scope, kind=Kind(r.kind), digest=bytes(r.digest),
                 target=r.target, reason=Reason(r.reason), source=r.source,
                 created_at=r.created_at, expires_at=r.expires_at, note=r.note,
                 created_by=r.created_by)


@dataclass(frozen=True, slots=True)
class Filters:
    reason: Reason | None = None
    kind: Kind | None = None
    source: str | None = None
    contains: str | None = None  # part of the target (case-insensitive)
    active_at: int | None = None  # only entries not expired at this time
    # the start of the target, or of an address's domain (`bob`, `example.`): a person
    # browsing a list types the beginning of what they look for
    prefix: str | None = None
    created_from: int | None = None  # unix seconds, inclusive
    created_until: int | None = None  # unix seconds, exclusive

    def where(self, scopes: Sequence[int]) -> list[sa.ColumnElement[bool]]:
        clauses: list[sa.ColumnElement[bool]] = [_T.scope.in_(scopes)]
        if self.reason is not None:
            clauses.append(_T.reason == self.reason.value)
        if self.kind is not None:
            clauses.append(_T.kind == self.kind.value)
        if self.source is not None:
            clauses.append(_T.source == self.source)
        if self.contains:
            clauses.append(_T.target.contains(self.contains.lower(), autoescape=True))
        if self.active_at is not None:
            clauses.append(sa.or_(_T.expires_at.is_(None), _T.expires_at > self.active_at))
        if self.prefix:
            start = self.prefix.lower()
            clauses.append(sa.or_(_T.target.startswith(start, autoescape=True),
                                  _T.target.contains("@" + start, autoescape=True)))
        if self.created_from is not None:
            clauses.append(_T.created_at >= self.created_from)
        if self.created_until is not None:
            clauses.append(_T.created_at < self.created_until)
        return clauses


class SuppressionStore:
    def __init__(self, digester: Digester) -> None:
        self.digester = digester

    def row_for(self, target: Target, scope: int, now: int) -> Row:
        """A manual entry's row (bulk loads of plain lists)."""
        return (scope, self.digester.target(target), target.kind.value, target.value,
                Reason.MANUAL.value, "import", now, None, "", "", now)

    def row(self, entry: NewEntry, now: int) -> Row:
        target = entry.target
        reason = entry.reason
        return (entry.scope, self.digester.target(target), _TEXT[target.kind],
                None if reason is Reason.ERASURE else target.value, _TEXT[reason],
                entry.source, entry.created_at, entry.expires_at, entry.note, entry.created_by,
                now)

    async def add(self, conn: AsyncConnection, entries: Iterable[NewEntry], now: int,
                  keep_scopes: Collection[int] = ()) -> int:
        """Write entries (merging with existing ones); returns how many distinct rows.
        An erasure leaves the entries of `keep_scopes` (under legal hold) as they are."""
        return await self.add_rows(conn, [self.row(e, now) for e in entries], keep_scopes)

    async def add_rows(self, conn: AsyncConnection, rows: Iterable[Row],
                       keep_scopes: Collection[int] = ()) -> int:
        batch: dict[tuple[bytes, int], Row] = {}
        for row in rows:
            key = (row[1], row[0])
            batch[key] = _merge(batch[key], row) if key in batch else row
        if not batch:
            return 0
        values = sorted(batch.values(), key=_by_digest)  # index order: each page once
        await conn.execute(sa.text("SELECT 1"))  # the transaction is open on the driver too
        raw: Any = (await conn.get_raw_connection()).driver_connection
        if conn.dialect.name == "sqlite":
            await raw.executemany(_SQLITE_UPSERT, values)
        else:
            await raw.execute(_PG_LOAD_TABLE)
            await raw.copy_records_to_table("suppressions_load", records=values,
                                            columns=list(COLUMNS))
            await raw.execute(_PG_UPSERT_FROM_LOAD)
            await raw.execute("DELETE FROM suppressions_load")
        erased = [digest for (digest, _), row in batch.items()
                  if row[COLUMNS.index("reason")] == Reason.ERASURE.value]
        for start in range(0, len(erased), 500):
            await conn.execute(suppressions.update().where(
                _T.digest.in_(erased[start:start + 500]), _T.target.is_not(None),
                *([_T.scope.not_in(list(keep_scopes))] if keep_scopes else [])
            ).values(target=None))
        return len(values)

    async def find(self, conn: AsyncConnection, scope: int, target: Target) -> Entry | None:
        row = (await conn.execute(sa.select(suppressions).where(
            _T.scope == scope, _T.digest == self.digester.target(target)))).first()
        return entry_from_row(row) if row is not None else None

    async def get(self, conn: AsyncConnection, entry_id: int) -> Entry | None:
        row = (await conn.execute(sa.select(suppressions).where(_T.id == entry_id))).first()
        return entry_from_row(row) if row is not None else None

    async def delete(self, conn: AsyncConnection, entry_id: int) -> None:
        await conn.execute(suppressions.delete().where(_T.id == entry_id))

    async def matches(self, conn: AsyncConnection, scopes: Sequence[int],
                      canonical_address: str) -> list[Entry]:
        """Every entry (active or not) of `scopes` that matches the address."""
        rows = (await conn.execute(sa.select(suppressions).where(
            _T.scope.in_(scopes), _T.digest.in_(self.digester.lookups(canonical_address))
        ))).all()
        return [entry_from_row(r) for r in rows]

    async def page(self, conn: AsyncConnection, scopes: Sequence[int], filters: Filters,
                   after: int = 0, limit: int = 100) -> list[Entry]:
        rows = (await conn.execute(sa.select(suppressions).where(
            *filters.where(scopes), _T.id > after).order_by(_T.id).limit(limit))).all()
        return [entry_from_row(r) for r in rows]

    async def stream(self, conn: AsyncConnection, scopes: Sequence[int], filters: Filters,
                     chunk: int = 5000) -> AsyncIterator[Entry]:
        """Every matching entry in id order, read a chunk at a time (flat memory)."""
        after = 0
        while True:
            entries = await self.page(conn, scopes, filters, after, chunk)
            for entry in entries:
                yield entry
            if len(entries) < chunk:
                return
            after = entries[-1].id

    async def purge_expired(self, conn: AsyncConnection, before: int, limit: int,
                            keep_scopes: Collection[int] = ()) -> int:
        """Delete up to `limit` entries that expired at or before `before`, except in the
        lists of `keep_scopes`; how many."""
        expired = sa.select(_T.id).where(
            _T.expires_at.is_not(None), _T.expires_at <= before,
            *([_T.scope.not_in(list(keep_scopes))] if keep_scopes else [])).limit(limit)
        result = await conn.execute(suppressions.delete().where(_T.id.in_(expired)))
        return result.rowcount or 0
