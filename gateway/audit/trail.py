"""The audit trail, written in group commits: many messages' rows in one transaction.

`record()` returns only when the batch holding its rows is committed, so a message is
answered 250 only once its audit rows are durable.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Iterable, MutableMapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway import background
from gateway.audit import chain as audit_chain
from gateway.errors import StoreError
from gateway.store.health import WriteHealth
from gateway.store.schema import audit_events, events, sent_messages


class EventSealer(Protocol):
    """What seals event rows' recipients in place before they are written (EventNames)."""

    async def seal(self, rows: Iterable[MutableMapping[str, Any]],
                   conn: AsyncConnection | None = None) -> None: ...

log = logging.getLogger("gateway.audit")


DIGEST_PURPOSE = "audit-digest"
# HKDF info of the key issue 2 derived; it seeds the stored key so old digests still match.
LEGACY_DIGEST_INFO = "audit-recipient-digest"


def keyed_digest(key: bytes, value: str) -> str:
    """HMAC-SHA256 hex digest: lets rows name a person without storing who they are."""
    return hmac.new(key, value.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


def recipient_digest(key: bytes, recipient: str) -> str:
    """How the audit trail names a recipient: a keyed digest of the case-folded address."""
    return keyed_digest(key, recipient.casefold())


def row(event: str, *, actor: str, tenant_id: int | None = None, queue_id: str | None = None,
        check_name: str | None = None, action: str | None = None, reason: str = "",
        recipient_digest: str | None = None, message_id: str | None = None,
        **detail: Any) -> dict[str, Any]:
    """One audit row. Never put a message body, a secret or a plain recipient in it."""
    return {
        "at": datetime.now(UTC), "tenant_id": tenant_id, "queue_id": queue_id, "actor": actor,
        "event": event, "check_name": check_name, "action": action, "reason": reason[:1000],
        "recipient_digest": recipient_digest, "detail": detail,
        "message_id": message_id[:998] if message_id else None,
    }


def event(kind: str, *, tenant_id: int, queue_id: str | None = None,
          recipient: str | None = None, erased: bool = False, **detail: Any
          ) -> dict[str, Any]:
    """One tenant event (delivered, deferred, bounced, refused...). It is the tenant's own
    record of its mail, so it names the recipient — sealed before it is written
    (events/names.py; `erased`: by digest only); retention applies (issue 8)."""
    return {"tenant_id": tenant_id, "at": datetime.now(UTC), "kind": kind,
            "queue_id": queue_id, "recipient": recipient, "erased": erased, "detail": detail}


async def write(conn: AsyncConnection, rows: Sequence[dict[str, Any]],
                event_rows: Sequence[dict[str, Any]] = (),
                sent_rows: Sequence[dict[str, Any]] = (),
                known: audit_chain.KnownHead | None = None) -> str:
    """Audit rows (one batch of this node's hash chain), tenant events and the index rows
    of sent Message-IDs (feedback/sent.py), in the caller's transaction. Every audit row is
    written through here. Returns the chain's head after the rows ("" for none): an opt-out
    receipt names it.

    Webhook outbox rows are not made here: the dispatcher fans new events out by cursor, so
    the commit a message waits for holds no webhook lookup. Event rows arrive sealed
    (events/names.py): one naming its recipient in clear is our bug, and refused here.
    """
    if any(e.get("recipient") or "erased" in e for e in event_rows):
        raise ValueError("an event row names its recipient in clear: seal it first")
    head = ""
    if rows:
        sealed = await audit_chain.chain_rows(conn, rows, known)
        await conn.execute(audit_events.insert(), sealed)
        head = str(sealed[-1]["row_hash"])
    if event_rows:
        await conn.execute(events.insert(), list(event_rows))
    if sent_rows:
        await conn.execute(sent_messages.insert(), list(sent_rows))
    return head


class AuditTrail:
    def __init__(self, engine: AsyncEngine, max_rows: int = 1000, max_delay: float = 0.0,
                 health: WriteHealth | None = None, names: EventSealer | None = None):
        self._engine = engine
        self._names = names  # seals the recipients of event rows (events/names.py)
        self._health = health  # told each group commit's outcome (store/health.py)
        self._max_rows = max_rows
        self._max_delay = max_delay
        self._rows: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] = []
        self._sent: list[dict[str, Any]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # committed group commits, for the benchmark's report
        self.head = audit_chain.KnownHead()  # the group commits' chain head (chain.py)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._flush_forever(), name="audit-group-commit")

    async def stop(self) -> None:
        """Commit what is waiting, then stop."""
        if self._task is None:
            return
        await background.stop(self._task)
        self._task = None
        if self._rows or self._events or self._sent:
            await self._flush()

    async def record(self, rows: Sequence[dict[str, Any]],
                     event_rows: Sequence[dict[str, Any]] = (),
                     sent_rows: Sequence[dict[str, Any]] = ()) -> None:
        if not rows and not event_rows and not sent_rows:
            return
        if event_rows and self._names is not None:
            await self._names.seal(event_rows)  # in place: rows are made per call
        if self._task is None:  # not started (CLI use): write directly
            async with self._engine.begin() as conn:
                await write(conn, rows, event_rows, sent_rows)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._rows.extend(rows)
        self._events.extend(event_rows)
        self._sent.extend(sent_rows)
        self._waiters.append(waiter)
        self._wake.set()
        await waiter

    async def _flush_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            # Classic group commit: no fixed wait. Rows that arrive while a commit is in
            # flight form the next batch. A positive max_delay trades latency for batch size.
            if self._max_delay and len(self._rows) < self._max_rows:
                await asyncio.sleep(self._max_delay)
            await self._flush()

    async def _commit(self, rows: list[dict[str, Any]], event_rows: list[dict[str, Any]],
                      sent_rows: list[dict[str, Any]]) -> None:
        """One transaction; once more on a fresh connection if the pooled one had been
        closed by the server (no ping before each commit: parts.commit_engine)."""
        try:
            async with self._engine.begin() as conn:
                await write(conn, rows, event_rows, sent_rows, self.head)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            self.head.forget()
            log.warning("audit group commit: a pooled connection had been closed; trying "
                        "a new one", extra={"rows": len(rows)})
            async with self._engine.begin() as conn:
                await write(conn, rows, event_rows, sent_rows, self.head)

    async def _flush(self) -> None:
        rows, event_rows, sent_rows, waiters = (self._rows, self._events, self._sent,
                                                self._waiters)
        self._rows, self._events, self._sent, self._waiters = [], [], [], []  # one transaction
        if not rows and not event_rows and not sent_rows:
            return
        try:
            await self._commit(rows, event_rows, sent_rows)
        except Exception as exc:
            self.head.forget()
            if isinstance(exc, SQLAlchemyError | OSError):  # the store's trouble, not our bug
                log.error("audit group commit failed", extra={
                    "rows": len(rows), "error": type(getattr(exc, "orig", None) or exc).__name__})
            else:
                log.exception("audit group commit failed", extra={"rows": len(rows)})
            if self._health is not None:
                self._health.commit_failed()
            error = StoreError("The audit trail could not be written.")
            error.__cause__ = exc
            for w in waiters:
                if not w.done():
                    w.set_exception(error)
            return
        self.head.committed()
        self.batches += 1
        if self._health is not None:
            self._health.commit_succeeded()
        for w in waiters:
            if not w.done():
                w.set_result(None)
