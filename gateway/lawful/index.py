"""A tenant's recipient and consent records, held in memory on every node: a recipient is
decided with no database query, with records or without (most have none).

Every write to the records ends its transaction with one row in `lawful_record_changes`
(the tenant, and the digests it touched — or none, meaning "re-read the tenant"). Each node
reads the rows written since it last looked, every `refresh_seconds`, and re-reads just those
people; the writing node does so at once. A look reaches back `OVERLAP` seconds, so a change
that committed late is read all the same (re-reading a person twice changes nothing). Until a
node has read a change, that person is decided on what it held — for a new consent that can
only refuse, never send; a withdrawal or an erasure is as late as `refresh_seconds`.

Past `max_held` people a node keeps only a mark (8 bytes of the digest mixed with the
tenant) for the rest, and reads their records from the database when they are mailed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway import background
from gateway.lawful import records
from gateway.lawful.records import Consent
from gateway.lawful.signals import Attributes
from gateway.store.schema import lawful_record_changes

log = logging.getLogger("gateway.lawful")
OVERLAP = timedelta(seconds=60)  # how far back each look reaches: a late commit is not lost
KEEP_CHANGES = timedelta(days=1)  # a node away longer reads everything again

Held = tuple[Attributes | None, tuple[Consent, ...]]


def _key(tenant_id: int, digest: str) -> int:
    return int(digest[:16], 16) ^ (tenant_id * 0x9E3779B97F4A7C15 & 0xFFFFFFFFFFFFFFFF)


class RecordIndex:
    def __init__(self, engine: AsyncEngine, refresh_seconds: float = 2.0,
                 max_held: int = 2_000_000) -> None:
        self._engine = engine
        self._max_held = max_held
        self._held: dict[tuple[int, str], Held] = {}
        self._marks: set[int] = set()  # people past max_held: read from the database
        self._seen: dict[int, datetime] = {}  # change ids read, while inside OVERLAP
        self._since: datetime | None = None  # None: read everything
        self._pruned = 0.0
        # a failed read keeps what is held (and is logged); changes then wait a round
        self._poller = background.Poller(self.refresh, full=1_000_000,
                                         interval=refresh_seconds, log=log,
                                         name="lawful-records")

    def held(self, tenant_id: int, digest: str) -> Held | None:
        """What is held of this person, or None: nothing known here (see `may_have`)."""
        return self._held.get((tenant_id, digest))

    def may_have(self, tenant_id: int, digest: str) -> bool:
        """A person past `max_held` whose records must be read from the database."""
        return bool(self._marks) and _key(tenant_id, digest) in self._marks

    @property
    def size(self) -> int:
        return len(self._held) + len(self._marks)

    async def refresh(self) -> int:
        """Read the changes since the last look; how many people were re-read."""
        async with self._engine.connect() as conn:
            if self._since is None or datetime.now(UTC) - self._since > KEEP_CHANGES - OVERLAP:
                return await self._load_all(conn)  # first, or away longer than changes last
            c = lawful_record_changes.c
            rows = (await conn.execute(sa.select(c.id, c.tenant_id, c.digests, c.changed_at)
                                       .where(c.changed_at >= self._since - OVERLAP)
                                       .order_by(c.id))).all()
            fresh = [r for r in rows if r.id not in self._seen]
            people: dict[int, set[str]] = {}
            whole: set[int] = set()
            for row in fresh:
                if row.digests is None:
                    whole.add(row.tenant_id)
                else:
                    people.setdefault(row.tenant_id, set()).update(row.digests)
            for tenant_id in whole:
                people.pop(tenant_id, None)
                await self._load(conn, tenant_id, None)
            for tenant_id, digests in people.items():
                await self._load(conn, tenant_id, sorted(digests))
            now = datetime.now(UTC)
            for row in fresh:
                self._seen[row.id] = now
            self._since = now
            cutoff = now - 2 * OVERLAP
            self._seen = {i: at for i, at in self._seen.items() if at >= cutoff}
        await self._prune()
        return sum(len(d) for d in people.values()) + len(whole)

    async def _load_all(self, conn: AsyncConnection) -> int:
        started = datetime.now(UTC)
        self._held.clear()
        self._marks.clear()
        await self._load(conn, None, None)
        self._since = started  # what changed while loading is read again next round
        return self.size

    async def _load(self, conn: AsyncConnection, tenant_id: int | None,
                    digests: Sequence[str] | None) -> None:
        """Re-read these people (a tenant's, or everyone's, when None): what they have
        replaces what was held, and who has nothing any more is dropped."""
        found: dict[tuple[int, str], tuple[Attributes | None, list[Consent]]] = {}
        for chunk in _chunks(digests):
            for (t, d), said in (await records.all_attributes(
                    conn, tenant_id, chunk)).items():
                found[(t, d)] = (said, [])
            for consent in await records.all_consents(conn, tenant_id, chunk):
                found.setdefault((consent.tenant_id, consent.digest), (None, []))[1].append(
                    consent)
        if digests is not None:
            assert tenant_id is not None
            for d in digests:
                self._held.pop((tenant_id, d), None)
        elif tenant_id is not None:
            for k in [k for k in self._held if k[0] == tenant_id]:
                del self._held[k]
        for k, (held, consents) in found.items():
            if len(self._held) < self._max_held or k in self._held:
                self._held[k] = (held, tuple(consents))
            else:
                self._marks.add(_key(*k))

    async def _prune(self) -> None:
        """Once an hour: change rows older than a day go (by any node; a node away longer
        reads everything again when it starts)."""
        if time.monotonic() - self._pruned < 3600:
            return
        self._pruned = time.monotonic()
        async with self._engine.begin() as conn:
            await conn.execute(lawful_record_changes.delete().where(
                lawful_record_changes.c.changed_at < datetime.now(UTC) - KEEP_CHANGES))

    async def start(self) -> None:
        await self.refresh()
        self._poller.start()

    async def stop(self) -> None:
        await self._poller.stop()


def _chunks(digests: Sequence[str] | None, size: int = 500) -> Iterable[Sequence[str] | None]:
    if digests is None:
        yield None
        return
    for at in range(0, len(digests), size):
        yield digests[at:at + size]
