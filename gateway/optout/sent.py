"""The index of sent Message-IDs: which tenant, mailbox and recipient a message was for.

Feedback is forgeable: anyone can mail a fake bounce, complaint or "remove me" into a
connected mailbox. It acts only on a copy found here, for that copy's tenant. Rows are
written with the audit rows of the message (one group commit) and kept
`[retention] sent_index_days`.

No address is kept. The recipient is named as the audit trail names it (keyed digest) and
as a suppression entry would be (suppression digest), so a complaint whose report hides the
address can still suppress its recipient, digest-only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.engine import aware
from gateway.store.schema import sent_messages


def message_id_hash(message_id: str) -> str:
    """How the index names a Message-ID: the value with its angle brackets, hashed."""
    value = message_id.strip()
    if not value.startswith("<"):
        value = f"<{value}>"
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True, slots=True)
class SentCopy:
    tenant_id: int
    mailbox_id: int
    queue_id: str
    recipient_digest: str
    suppression_digest: bytes | None
    sent_at: datetime


def sent_rows(message_id: str | None, tenant_id: int, mailbox_id: int, queue_id: str,
              recipients: Iterable[tuple[str, str]], at: datetime,
              suppression_digest: Callable[[str], bytes | None]) -> list[dict[str, Any]]:
    """The rows one accepted message adds, a row per (recipient, its audit digest) — the
    caller has that digest already for its audit rows. None without a Message-ID: then
    nothing can refer to the message."""
    if not message_id:
        return []
    hashed = message_id_hash(message_id)
    return [{"message_id_hash": hashed, "tenant_id": tenant_id, "mailbox_id": mailbox_id,
             "queue_id": queue_id, "recipient_digest": digest,
             "suppression_digest": suppression_digest(r), "sent_at": at}
            for r, digest in recipients]


class SentIndex:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def find(self, message_ids: Sequence[str]) -> list[SentCopy]:
        """Every copy sent with one of these Message-IDs, oldest first."""
        if not message_ids:
            return []
        t = sent_messages
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(t).where(t.c.message_id_hash.in_(
                {message_id_hash(m) for m in message_ids})).order_by(t.c.id))).all()
        return [SentCopy(r.tenant_id, r.mailbox_id, r.queue_id, r.recipient_digest,
                         r.suppression_digest, aware(r.sent_at) or r.sent_at) for r in rows]
