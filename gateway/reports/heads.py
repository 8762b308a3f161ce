"""The audit chain heads a report is computed against, and the rows they bound.

Audit rows are written in batches, each with its sequence number in its chain (one chain
per node and process, audit/chain.py). A report names, for every chain, the newest batch
it read; only rows of those batches or earlier count. Rows written later — a late
`optout.effective`, a bounce report about the period arriving next week — never change it,
so the same heads give the same figures, and anyone holding the trail can recompute them.

For a closed period the heads are chosen from the period itself: each chain's newest batch
written before the period's end plus `SETTLE` (time for rows about the period to land).
Generated again later, the same period then reads the same rows and gives the same hash.
A period that has not settled yet is read up to each chain's current head, and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.schema import audit_batches

SETTLE = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class ChainHead:
    chain: str
    seq: int
    head: str

    def to_json(self) -> dict[str, Any]:
        return {"chain": self.chain, "seq": self.seq, "head": self.head}


async def heads_for(conn: AsyncConnection, end: datetime, now: datetime
                    ) -> tuple[list[ChainHead], bool]:
    """Every chain's head for a period ending at `end`, and whether the period has settled
    (`now` is past end + SETTLE: the heads are then fixed for good)."""
    settled = now >= end + SETTLE
    b = audit_batches.c
    newest = sa.select(b.chain, sa.func.max(b.seq).label("seq")).group_by(b.chain)
    if settled:
        newest = newest.where(b.at < end + SETTLE)
    picked = newest.subquery()
    rows = await conn.execute(sa.select(b.chain, b.seq, b.head).join(
        picked, sa.and_(b.chain == picked.c.chain, b.seq == picked.c.seq)).order_by(b.chain))
    return [ChainHead(r.chain, int(r.seq), r.head) for r in rows], settled


def heads_from(document: Sequence[Any]) -> list[ChainHead]:
    """The heads a report recorded (ValueError if they are not heads)."""
    try:
        return [ChainHead(str(h["chain"]), int(h["seq"]), str(h["head"])) for h in document]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a list of chain heads ({type(exc).__name__})") from None


def up_to(columns: Any, heads: Sequence[ChainHead]) -> sa.ColumnElement[bool]:
    """Rows of `columns` (audit_events' or an alias's) in a batch at or before its chain's
    head. A chain the heads do not name had written nothing then; rows from before the
    trail was chained (no chain) never change, so they count."""
    return sa.or_(columns.chain.is_(None),
                  *(sa.and_(columns.chain == h.chain, columns.batch_seq <= h.seq)
                    for h in heads))


async def heads_hold(conn: AsyncConnection, heads: Sequence[ChainHead]) -> list[str]:
    """The recorded heads the trail no longer has as written: each one a problem (a batch
    rewritten, or pruned by retention)."""
    b = audit_batches.c
    problems = []
    for h in heads:
        found = (await conn.execute(sa.select(b.head).where(
            b.chain == h.chain, b.seq == h.seq))).scalar()
        if found is None:
            problems.append(f"chain {h.chain!r} has no batch {h.seq} (pruned or deleted)")
        elif found != h.head:
            problems.append(f"chain {h.chain!r} batch {h.seq} has another head")
    return problems
