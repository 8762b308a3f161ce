"""Copies the gateway accepted but has not delivered; the message is sealed by the vault.

Issue 3 turns these rows into the delivery queue (retries and delivery reports).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.schema import pending_copies
from gateway.vault.envelope import Vault


@dataclass(frozen=True, slots=True)
class PendingCopy:
    queue_id: str
    tenant_id: int
    mailbox_id: int
    envelope_from: str
    recipient: str
    state: str  # deferred | refused
    reply_code: int
    reply_status: str
    reply_text: str
    smtputf8: bool


def seal_context(tenant_id: int, queue_id: str, recipient: str) -> bytes:
    return f"pending_copies|{tenant_id}|{queue_id}|{recipient}".encode()


class PendingStore:
    def __init__(self, engine: AsyncEngine, vault: Vault) -> None:
        self._engine = engine
        self._vault = vault

    async def add(self, copies: Sequence[PendingCopy], message: bytes) -> None:
        rows = []
        for c in copies:
            sealed, key_id = self._vault.seal(message, seal_context(c.tenant_id, c.queue_id,
                                                                    c.recipient))
            rows.append({
                "queue_id": c.queue_id, "tenant_id": c.tenant_id, "mailbox_id": c.mailbox_id,
                "envelope_from": c.envelope_from, "recipient": c.recipient, "state": c.state,
                "reply_code": c.reply_code, "reply_status": c.reply_status,
                "reply_text": c.reply_text[:500], "smtputf8": c.smtputf8,
                "sealed_message": sealed, "key_id": key_id, "created_at": datetime.now(UTC),
            })
        async with self._engine.begin() as conn:
            await conn.execute(pending_copies.insert(), rows)

    async def list_all(self) -> list[PendingCopy]:
        async with self._engine.connect() as conn:
            result = await conn.execute(sa.select(pending_copies))
            return [PendingCopy(r.queue_id, r.tenant_id, r.mailbox_id, r.envelope_from,
                                r.recipient, r.state, r.reply_code, r.reply_status,
                                r.reply_text, r.smtputf8) for r in result]

    async def raw_rows(self, queue_id: str) -> list[bytes]:
        """The sealed bytes as stored (to show they are not readable at rest)."""
        async with self._engine.connect() as conn:
            result = await conn.execute(sa.select(pending_copies.c.sealed_message).where(
                pending_copies.c.queue_id == queue_id))
            return [bytes(r[0]) for r in result]

    async def list(self, queue_id: str) -> list[tuple[PendingCopy, bytes]]:
        async with self._engine.connect() as conn:
            result = await conn.execute(
                sa.select(pending_copies).where(pending_copies.c.queue_id == queue_id))
            out = []
            for r in result:
                copy = PendingCopy(r.queue_id, r.tenant_id, r.mailbox_id, r.envelope_from,
                                   r.recipient, r.state, r.reply_code, r.reply_status,
                                   r.reply_text, r.smtputf8)
                message = self._vault.open(r.sealed_message, r.key_id,
                                           seal_context(r.tenant_id, r.queue_id, r.recipient))
                out.append((copy, message))
            return out
