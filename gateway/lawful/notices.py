"""Who has had the notice `allow-with-notice` promises (controller, source, purpose and
basis, the right to object) from which tenant: it goes in the first message from the tenant
to the person, and in no later one.

A person is marked once a copy carrying the notice is accepted upstream (or kept in the
queue, which sends those very bytes), so a copy that failed leaves the next one owing it.
Two messages to the same person in flight at once both carry it: "first" is at most the
copies sent in the same moment, never none. Each node remembers whom it has seen marked, so
a person told long ago costs no query.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.schema import lawful_notices

# what only the tenant knows, and every notice says (outbound/notice.py renders it)
NEEDED = ("notice_source", "notice_purpose", "notice_url")
_REMEMBERED = 200_000  # (tenant, person) pairs a node keeps knowing were told


def missing(settings: Mapping[str, Any]) -> list[str]:
    """The settings a tenant must give before any notice can be sent."""
    return [name for name in NEEDED if not str(settings.get(name) or "").strip()]


class Notices:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._told: set[tuple[int, str]] = set()

    async def owed(self, tenant_id: int, digests: Sequence[str]) -> set[str]:
        """Those of these people who have not had the tenant's notice."""
        unknown = [d for d in digests if (tenant_id, d) not in self._told]
        if not unknown:
            return set()
        n = lawful_notices.c
        async with self._engine.connect() as conn:
            told = set((await conn.execute(sa.select(n.digest).where(
                n.tenant_id == tenant_id, n.digest.in_(unknown)))).scalars())
        self._remember(tenant_id, told)
        return set(unknown) - told

    async def told(self, tenant_id: int, digests: Iterable[str], queue_id: str,
                   policy: str) -> None:
        """Mark these people as told (by this message); one already marked stays as was."""
        people = list(digests)
        rows = [{"tenant_id": tenant_id, "digest": d, "queue_id": queue_id,
                 "policy": policy[:80], "noticed_at": datetime.now(UTC)} for d in people]
        if not rows:
            return
        insert = postgresql.insert if self._engine.dialect.name == "postgresql" \
            else sqlite.insert
        async with self._engine.begin() as conn:
            await conn.execute(insert(lawful_notices).values(rows).on_conflict_do_nothing(
                index_elements=["tenant_id", "digest"]))
        self._remember(tenant_id, people)

    def _remember(self, tenant_id: int, digests: Iterable[str]) -> None:
        if len(self._told) > _REMEMBERED:
            self._told.clear()
        self._told.update((tenant_id, d) for d in digests)
