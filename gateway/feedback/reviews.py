"""Possible opt-outs: replies that may ask to stop, waiting for a person.

The classifier suppresses at once only when it is sure (optout/replies.py) and the writer
is the copy's own recipient (feedback/apply.py). Anything less lands here: a reviewer reads
the reply's own words (an audited read of personal data) and confirms, which suppresses the
copy's recipient for the tenant (reason `unsubscribe`, source `reply`), or dismisses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit.trail import EventSealer
from gateway.directory.store import audit_change
from gateway.errors import Conflict, InvalidValue, NotFound
from gateway.feedback.apply import (
    CONFIRMED,
    DISMISSED,
    PENDING,
    reply_label,
    review_context,
    sender_of,
    suppress_copy,
)
from gateway.feedback.reply_classifier import body_text, own_words
from gateway.feedback.sent import SentCopy
from gateway.optout.receipts import ReceiptSigner
from gateway.optout.suppressions import Suppressions
from gateway.store.engine import aware
from gateway.store.schema import optout_reviews as t
from gateway.vault.envelope import Vault
from gateway.vault.tenant_keys import TenantSealer
from suppression.entries import Reason

STATUSES = (PENDING, CONFIRMED, DISMISSED)


@dataclass(frozen=True, slots=True)
class PossibleOptOut:
    id: int
    tenant_id: int
    mailbox_id: int
    queue_id: str
    rule: str
    status: str
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None


@dataclass(frozen=True, slots=True)
class ReplyText:
    """What a reviewer reads: who wrote, the subject, and the reply's own words (the quoted
    history and signature cut, as the classifier saw them), never rendered as HTML."""

    sender: str
    subject: str
    words: str


def _item(row: Any) -> PossibleOptOut:
    return PossibleOptOut(row.id, row.tenant_id, row.mailbox_id, row.queue_id, row.rule,
                          row.status, aware(row.created_at) or row.created_at,
                          aware(row.decided_at), row.decided_by)


_META = [c for c in t.c if c.name != "sealed_reply"]


class OptOutReviews:
    def __init__(self, engine: AsyncEngine, vault: Vault, suppressions: Suppressions,
                 names: EventSealer, tenant: TenantSealer,
                 receipts: ReceiptSigner | None = None) -> None:
        self._engine = engine
        self._receipts = receipts  # signs the receipt of a confirmed opt-out
        self._names = names  # seals the recipient of the events it writes
        self._tenant = tenant  # opens the replies sealed under their tenant's key
        self._vault = vault
        self._suppressions = suppressions

    async def listing(self, tenant_id: int | None = None, status: str | None = PENDING,
                      limit: int = 100) -> list[PossibleOptOut]:
        clauses = [t.c.tenant_id == tenant_id] if tenant_id is not None else []
        if status:
            clauses.append(t.c.status == status)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(*_META).where(*clauses).order_by(
                t.c.id.desc()).limit(limit))).all()
        return [_item(r) for r in rows]

    async def get(self, review_id: int) -> PossibleOptOut:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(*_META).where(t.c.id == review_id))).first()
        if row is None:
            raise NotFound(f"Possible opt-out {review_id} does not exist.")
        return _item(row)

    async def _raw(self, review_id: int) -> tuple[Any, bytes]:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(t).where(t.c.id == review_id))).first()
        if row is None:
            raise NotFound(f"Possible opt-out {review_id} does not exist.")
        return row, await self._tenant.unwrap(row.tenant_id, self._vault.open(
            row.sealed_reply, row.key_id, review_context(row.tenant_id, row.queue_id)),
            reply_label(row.queue_id))

    async def reply(self, review_id: int, actor: str) -> ReplyText:
        """The reply, for a person to judge. The read is an audit row."""
        row, raw = await self._raw(review_id)
        msg = message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        async with self._engine.begin() as conn:
            await audit_change(conn, actor, "optout.review_read", row.tenant_id,
                               review=review_id, queue_id=row.queue_id)
        return ReplyText(sender_of(msg) or "", str(msg.get("subject", ""))[:300],
                         own_words(body_text(msg))[:5000])

    async def confirm(self, review_id: int, actor: str, why: str) -> bool:
        """Suppress the copy's recipient; True if an entry was made (False: already was).
        The entry comes first: a confirmation that could not suppress stays pending."""
        _check_why(why)
        row, raw = await self._raw(review_id)
        if row.status != PENDING:
            raise Conflict(f"Possible opt-out {review_id} was decided already.")
        copy = SentCopy(row.tenant_id, row.mailbox_id, row.queue_id, row.recipient_digest,
                        row.suppression_digest, aware(row.created_at) or row.created_at)
        msg = message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        sender = sender_of(msg)
        address = sender if sender is not None and row.suppression_digest is not None and \
            self._suppressions.digest_of(sender) == row.suppression_digest else None
        made = await suppress_copy(self._engine, self._suppressions, copy, address,
                                   Reason.UNSUBSCRIBE, "reply", actor,
                                   f"{row.rule}:confirmed", event="unsubscribed",
                                   names=self._names, receipts=self._receipts,
                                   received_at=aware(row.created_at))  # the reply came
        await self._decide(row, actor, why, CONFIRMED)
        return made

    async def dismiss(self, review_id: int, actor: str, why: str) -> None:
        _check_why(why)
        row, _ = await self._raw(review_id)
        await self._decide(row, actor, why, DISMISSED)

    async def _decide(self, row: Any, actor: str, why: str, status: str) -> None:
        async with self._engine.begin() as conn:
            done = await conn.execute(t.update().where(
                t.c.id == row.id, t.c.status == PENDING).values(
                status=status, decided_at=datetime.now(UTC), decided_by=actor[:200]))
            if done.rowcount == 0:
                raise Conflict(f"Possible opt-out {row.id} was decided already.")
            await audit_change(conn, actor, f"optout.review_{status}", row.tenant_id,
                               why.strip(), review=row.id, queue_id=row.queue_id,
                               rule=row.rule, recipient_digest=row.recipient_digest)


def _check_why(why: str) -> None:
    if not why.strip() or len(why) > 500:
        raise InvalidValue("Say why, in 1 to 500 characters.")
