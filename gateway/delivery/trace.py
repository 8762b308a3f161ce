"""`gateway trace`: everything known about one message, in order.

The audit trail names recipients by keyed digest; trace turns digests back into addresses
only where the address is known anyway (a queued copy) or given by the operator.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit.trail import recipient_digest
from gateway.delivery.queue import QueuedCopy, QueueStore
from gateway.errors import NotFound
from gateway.store.schema import audit_events


@dataclass(frozen=True, slots=True)
class TraceLine:
    at: datetime
    event: str
    who: str  # recipient address, digest prefix, or "" for message-level events
    text: str


@dataclass(frozen=True, slots=True)
class Trace:
    queue_id: str
    lines: tuple[TraceLine, ...]
    copies: tuple[QueuedCopy, ...]


async def queue_ids_for(engine: AsyncEngine, reference: str,
                        tenant_id: int | None = None) -> list[str]:
    """A queue id, or a Message-ID (with or without angle brackets); with `tenant_id`, only
    that tenant's messages."""
    bare = reference.strip().strip("<>")
    own = [audit_events.c.tenant_id == tenant_id] if tenant_id is not None else []
    async with engine.connect() as conn:
        found = (await conn.execute(
            sa.select(audit_events.c.queue_id).where(audit_events.c.queue_id == reference, *own)
            .limit(1))).first()
        if found:
            return [reference]
        rows = await conn.execute(
            sa.select(audit_events.c.queue_id).distinct()
            .where(audit_events.c.message_id.in_([bare, f"<{bare}>"]), *own)
            .where(audit_events.c.queue_id.is_not(None)))
        ids = sorted(r[0] for r in rows)
    if not ids:
        raise NotFound(f"No message with queue id or Message-ID '{reference}'.")
    return ids


def _describe(row: Any) -> str:
    detail = dict(row.detail or {})
    parts = []
    if row.check_name:
        parts.append(f"{row.check_name}: {row.action}")
    if row.reason:
        parts.append(row.reason)
    if "verdicts" in detail:
        parts.append("checks " + ", ".join(f"{c}={a}" for c, a, *_ in detail.pop("verdicts")))
    for key in ("attempt", "reply", "size", "recipients"):
        if key in detail and not isinstance(detail[key], list):
            parts.append(f"{key} {detail[key]}")
    return "; ".join(parts)


async def trace(engine: AsyncEngine, queue: QueueStore, queue_id: str, digest_key: bytes,
                recipients: Iterable[str] = ()) -> Trace:
    copies = await queue.for_queue_id(queue_id)
    names = {recipient_digest(digest_key, r): r
             for r in [*recipients, *(c.recipient for c in copies)]}
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(audit_events).where(
            audit_events.c.queue_id == queue_id).order_by(audit_events.c.id))).all()
    lines = []
    for row in rows:
        who = ""
        if row.recipient_digest:
            who = names.get(row.recipient_digest, f"#{row.recipient_digest[:10]}")
        lines.append(TraceLine(row.at, row.event, who, _describe(row)))
    return Trace(queue_id, tuple(lines), tuple(copies))
