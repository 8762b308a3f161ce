"""Versions of the lawful-basis table: each table published is a new version, audited, and
in force on every node within `refresh_seconds` — read from the shared database, no restart.

The first start publishes the table the gateway ships (deploy/lawful-basis.toml) as
version 1; the operator publishes counsel's with `gateway policy load FILE`. Publishing the
same document again makes no new version. Old versions are kept: each copy's audit row
names the version it was decided under, and `gateway policy show --version N` shows it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import background
from gateway.audit import trail as audit
from gateway.errors import Conflict, NotFound
from gateway.lawful.table import Table, parse
from gateway.store.schema import lawful_policies as t

log = logging.getLogger("gateway.lawful")

# in the package, so every installation has it; deploy/lawful-basis.toml points at it
SHIPPED = Path(__file__).resolve().parent / "shipped-table.toml"


@dataclass(frozen=True, slots=True)
class Version:
    version: int
    table: Table
    created_at: datetime
    created_by: str

    @property
    def name(self) -> str:
        """How a refusal names it: the table's id and its version."""
        return f"{self.table.policy_id} v{self.version}"


def _version(row: sa.Row[tuple[object, ...]]) -> Version:
    at = row.created_at
    assert isinstance(at, datetime)
    return Version(int(str(row.version)), parse(str(row.document), f"version {row.version}"),
                   at if at.tzinfo else at.replace(tzinfo=UTC), str(row.created_by))


class Policies:
    """The version in force, kept in memory and re-read every `refresh_seconds`."""

    def __init__(self, engine: AsyncEngine, refresh_seconds: float = 2.0) -> None:
        self._engine = engine
        self._current: Version | None = None
        # a failed read keeps deciding with the version in force (and is logged)
        self._poller = background.Poller(self._reread, full=1, interval=refresh_seconds,
                                         log=log, name="lawful-policies")

    @property
    def current(self) -> Version:
        if self._current is None:
            raise NotFound("No lawful-basis table is loaded yet.")
        return self._current

    async def publish(self, text: str, actor: str, source: str = "") -> tuple[Version, bool]:
        """Make `text` the table in force (InvalidValue if it is not a valid table). Returns
        the version and whether it is new (the same document as the newest is not)."""
        table = parse(text, source or "the table")
        for _ in range(10):  # another node publishing at the same moment: look again
            try:
                async with self._engine.begin() as conn:
                    newest = (await conn.execute(sa.select(t).order_by(
                        t.c.version.desc()).limit(1))).first()
                    if newest is not None and newest.digest == table.digest:
                        found = _version(newest)  # already in force (perhaps just now,
                        self._current = found  # by a node that started with this one)
                        return found, False
                    now = datetime.now(UTC)
                    # numbered here, not by a sequence: a loser's insert would use up a
                    # number, and the versions would skip one (v1, v3)
                    follows = int(newest.version) if newest is not None else 0
                    version = follows + 1
                    await conn.execute(t.insert().values(
                        version=version, policy_id=table.policy_id, digest=table.digest,
                        document=text, created_at=now, created_by=actor[:200],
                        follows=follows))
                    await audit.write(conn, [audit.row(
                        "policy.published", actor=actor, policy_id=table.policy_id,
                        version=version, digest=table.digest, source=source[:200],
                        unverified=sorted(c for c, r in table.countries.items()
                                          if not r.verified))])
                break
            except sa.exc.IntegrityError:
                continue
        else:
            raise Conflict("The lawful-basis table could not be published: other "
                           "publishers kept getting there first; try again.")
        published = Version(version, table, now, actor)
        self._current = published
        log.info("lawful-basis table published", extra={
            "policy_id": table.policy_id, "version": version})
        return published, True

    async def get(self, version: int | None = None) -> Version:
        query = sa.select(t).order_by(t.c.version.desc()).limit(1) if version is None \
            else sa.select(t).where(t.c.version == version)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            raise NotFound("No such version of the lawful-basis table." if version
                           else "No lawful-basis table is published yet.")
        return _version(row)

    async def versions(self) -> list[Version]:
        async with self._engine.connect() as conn:
            return [_version(r) for r in await conn.execute(sa.select(t).order_by(t.c.version))]

    async def refresh(self) -> None:
        """Read the newest version (a table another node published takes effect here)."""
        async with self._engine.connect() as conn:
            newest = (await conn.execute(sa.select(t.c.version).order_by(
                t.c.version.desc()).limit(1))).scalar()
        if newest is not None and (self._current is None or self._current.version != newest):
            self._current = await self.get(int(newest))

    async def start(self) -> None:
        """The newest version; on a first start, the shipped table becomes version 1."""
        await self.refresh()
        if self._current is None:
            await self.publish(SHIPPED.read_text(), "gateway:shipped", str(SHIPPED.name))
        self._poller.start()

    async def stop(self) -> None:
        await self._poller.stop()

    async def _reread(self) -> int:
        await self.refresh()
        return 0
