"""The index of sent Message-IDs: which tenant, mailbox and recipient a message was for.

Feedback is forgeable: anyone can mail a fake bounce, complaint or "remove me" into a
connected mailbox. It acts only on a copy found here, for that copy's tenant. Rows are
written with the audit rows of the message (one group commit) and kept
`[retention] sent_index_days`.

No address is kept. The recipient is named as the audit trail names it (keyed digest) and
as a suppression entry would be (suppression digest), so a complaint whose report hides the
address can still suppress its recipient, digest-only. The subject is kept as a keyed
digest, for replies whose mail program dropped In-Reply-To and References.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.engine import aware
from gateway.store.schema import sent_messages

# Reply and forward prefixes mail programs put before a subject, in the seven languages
_PREFIXES = re.compile(r"^\s*((re|aw|antw|r|rif|ref|sv|vs|fw|fwd|wg|tr|rv|enc|doorst|i)"
                       r"\s?(\[\d+\])?\s?:\s*)+", re.IGNORECASE)


def subject_hash(subject: str | None, digest: Callable[[str], str]) -> str | None:
    """How a subject is named at rest (the sent index's threads, review search): the subject
    (RFC 2047 words decoded) without reply prefixes, spaces collapsed, case folded, under
    the keyed `digest` (the audit trail's: a plain hash of a guessable subject would hide
    nothing). None for an empty subject."""
    try:
        decoded = str(make_header(decode_header(subject or "")))
    except (UnicodeError, LookupError, ValueError, HeaderParseError):
        decoded = subject or ""
    text = " ".join(_PREFIXES.sub("", decoded).split()).casefold()
    return digest(f"subject|{text}") if text else None


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
              suppression_digest: Callable[[str], bytes | None],
              thread: str | None = None) -> list[dict[str, Any]]:
    """The rows one accepted message adds, a row per (recipient, its audit digest) — the
    caller has that digest already for its audit rows — with `thread`, the subject's
    `subject_hash`. None without a Message-ID: then nothing can refer to the message."""
    if not message_id:
        return []
    hashed = message_id_hash(message_id)
    return [{"message_id_hash": hashed, "tenant_id": tenant_id, "mailbox_id": mailbox_id,
             "queue_id": queue_id, "recipient_digest": digest,
             "suppression_digest": suppression_digest(r), "sent_at": at,
             "subject_hash": thread}
            for r, digest in recipients]


class SentIndex:
    def __init__(self, engine: AsyncEngine, digest: Callable[[str], str]) -> None:
        self._engine = engine
        self._digest = digest  # the audit trail's keyed digest, for subjects

    async def find(self, message_ids: Sequence[str]) -> list[SentCopy]:
        """Every copy sent with one of these Message-IDs, oldest first."""
        if not message_ids:
            return []
        t = sent_messages
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(t).where(t.c.message_id_hash.in_(
                {message_id_hash(m) for m in message_ids})).order_by(t.c.id))).all()
        return [_copy(r) for r in rows]

    async def of_queue_id(self, tenant_id: int, queue_id: str) -> list[SentCopy]:
        """The copies of one accepted message (a complaint reference names one of them)."""
        t = sent_messages
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(t).where(
                t.c.queue_id == queue_id, t.c.tenant_id == tenant_id).order_by(t.c.id))).all()
        return [_copy(r) for r in rows]

    async def in_thread(self, mailbox_id: int, suppression_digest: bytes, subject: str | None
                        ) -> list[SentCopy]:
        """Copies sent through `mailbox_id` to this person with this subject: how a reply
        that lost its In-Reply-To and References is matched (its writer and its subject
        must both be the copy's)."""
        thread = subject_hash(subject, self._digest)
        if thread is None:
            return []
        t = sent_messages
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(t).where(
                t.c.suppression_digest == suppression_digest, t.c.mailbox_id == mailbox_id,
                t.c.subject_hash == thread).order_by(t.c.id))).all()
        return [_copy(r) for r in rows]


def _copy(r: Any) -> SentCopy:
    return SentCopy(r.tenant_id, r.mailbox_id, r.queue_id, r.recipient_digest,
                    r.suppression_digest, aware(r.sent_at) or r.sent_at)
