"""The durable delivery queue: copies not yet delivered, and the DSNs owed to senders.

Rows live in `pending_copies`; the message of each row is sealed under its tenant's key, then
by the vault (so deleting the tenant shreds every copy, backups included). Claiming is
`SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL (several nodes share the queue) and a
conditional UPDATE everywhere, so a row is only ever claimed by one worker.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import NotFound, VaultError
from gateway.store.schema import PENDING_OPEN_STATES
from gateway.store.schema import pending_copies as t
from gateway.vault.envelope import Vault
from gateway.vault.tenant_keys import TenantSealer, unwrap_unavailable

log = logging.getLogger("gateway.queue")


class State(enum.StrEnum):
    DEFERRED = "deferred"  # waits for next_attempt_at
    REFUSED = "refused"  # refused upstream; a DSN is owed
    SENDING = "sending"  # claimed by a worker until lease_until
    DELIVERED = "delivered"
    BOUNCED = "bounced"  # refused, and the DSN is queued
    EXPIRED = "expired"  # lifetime over, and the DSN is queued
    DELETED = "deleted"  # by an operator, and the DSN is queued
    FAILED = "failed"  # a DSN that could not be delivered (never reported again)


class CopyKind(enum.StrEnum):
    COPY = "copy"
    DSN = "dsn"


DUE_STATES = (State.DEFERRED, State.REFUSED)
OPEN_STATES = tuple(State(s) for s in PENDING_OPEN_STATES)  # the table's definition


@dataclass(frozen=True, slots=True)
class NewCopy:
    queue_id: str
    tenant_id: int
    mailbox_id: int
    envelope_from: str
    recipient: str
    state: State
    reply_code: int
    reply_status: str
    reply_text: str
    smtputf8: bool = False
    kind: CopyKind = CopyKind.COPY
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Finish:
    """The end of one attempt: the copy's new state, for `finish_many`."""

    copy_id: int
    state: State
    reply: tuple[int, str, str] | None = None
    next_attempt_at: datetime | None = None
    attempted: bool = True


@dataclass(frozen=True, slots=True)
class QueuedCopy:
    id: int
    queue_id: str
    tenant_id: int
    mailbox_id: int
    kind: CopyKind
    state: State
    envelope_from: str
    recipient: str
    attempts: int
    reply_code: int
    reply_status: str
    reply_text: str
    smtputf8: bool
    created_at: datetime
    next_attempt_at: datetime | None
    expires_at: datetime | None
    message_id: str | None

    @property
    def reply(self) -> str:
        return f"{self.reply_code} {self.reply_status} {self.reply_text}"


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:  # SQLite returns naive UTC
        return value.replace(tzinfo=UTC)
    return value


def _copy(row: Any) -> QueuedCopy:
    return QueuedCopy(
        row.id, row.queue_id, row.tenant_id, row.mailbox_id, CopyKind(row.kind), State(row.state),
        row.envelope_from, row.recipient, row.attempts, row.reply_code, row.reply_status,
        row.reply_text, row.smtputf8, _aware(row.created_at) or datetime.now(UTC),
        _aware(row.next_attempt_at), _aware(row.expires_at), row.message_id,
    )


def copy_label(queue_id: str, recipient: str) -> str:
    return f"pending-copy|{queue_id}|{recipient}"


def seal_context(tenant_id: int, queue_id: str, recipient: str) -> bytes:
    return f"pending_copies|{tenant_id}|{queue_id}|{recipient}".encode()


_COLUMNS = [c for c in t.c if c.name != "sealed_message"]


class QueueStore:
    def __init__(self, engine: AsyncEngine, vault: Vault, lifetime: float,
                 sealer: TenantSealer | None = None) -> None:
        self._engine = engine
        self._vault = vault
        self._lifetime = timedelta(seconds=lifetime)
        self._sealer = sealer  # each copy is sealed under its tenant's key first (issue 21)

    async def _wrap(self, c: NewCopy, message: bytes) -> bytes:
        if self._sealer is None:
            return message
        return await self._sealer.wrap(c.tenant_id, message, copy_label(c.queue_id, c.recipient))

    async def _open(self, row: Any) -> bytes:
        inner = self._vault.open(row.sealed_message, row.key_id,
                                 seal_context(row.tenant_id, row.queue_id, row.recipient))
        if self._sealer is None:
            return unwrap_unavailable(inner)
        return await self._sealer.unwrap(row.tenant_id, inner,
                                         copy_label(row.queue_id, row.recipient))

    async def add(self, copies: Sequence[NewCopy], message: bytes | Sequence[bytes], *,
                  first_attempt: datetime | None = None) -> None:
        """Queue copies: with one message for all, or (a sequence) each copy's own bytes."""
        rows = await self._rows(copies, message, first_attempt)
        async with self._engine.begin() as conn:
            await conn.execute(t.insert(), rows)

    async def report(self, dsn: NewCopy, report: bytes, closing: Sequence[Finish]) -> None:
        """Queue a delivery report and close the copies it reports on, in one transaction:
        a copy is reported once, however many workers or nodes look at it (a report
        queued apart from the close left the copy due again for another worker, which
        reported it a second time)."""
        rows = await self._rows([dsn], report, None)
        async with self._engine.begin() as conn:
            await conn.execute(t.insert(), rows)
            if closing:
                await conn.execute(_FINISH, _finish_params(closing))

    async def _rows(self, copies: Sequence[NewCopy], message: bytes | Sequence[bytes],
                    first_attempt: datetime | None) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        rows = []
        own = [message] * len(copies) if isinstance(message, bytes) else list(message)
        assert len(own) == len(copies)
        for c, message in zip(copies, own, strict=True):
            sealed, key_id = self._vault.seal(
                await self._wrap(c, message), seal_context(c.tenant_id, c.queue_id, c.recipient))
            rows.append({
                "queue_id": c.queue_id, "tenant_id": c.tenant_id, "mailbox_id": c.mailbox_id,
                "kind": c.kind.value, "envelope_from": c.envelope_from,
                "recipient": c.recipient, "state": c.state.value,
                "reply_code": c.reply_code, "reply_status": c.reply_status,
                "reply_text": c.reply_text[:500], "smtputf8": c.smtputf8,
                "sealed_message": sealed, "key_id": key_id, "created_at": now,
                "updated_at": now, "attempts": 0, "message_id": c.message_id,
                "next_attempt_at": now if c.state is State.REFUSED else (first_attempt or now),
                "expires_at": now + self._lifetime,
            })
        return rows

    async def claim(self, limit: int, lease: float, now: datetime | None = None
                    ) -> list[tuple[QueuedCopy, bytes]]:
        """Take up to `limit` due copies (or ones whose worker died) for one worker."""
        now = now or datetime.now(UTC)
        due = sa.or_(
            sa.and_(t.c.state.in_([s.value for s in DUE_STATES]),
                    sa.or_(t.c.next_attempt_at <= now, t.c.next_attempt_at.is_(None))),
            sa.and_(t.c.state == State.SENDING.value, t.c.lease_until < now),
        )
        query = (sa.select(t).where(due).order_by(t.c.next_attempt_at).limit(limit)
                 .with_for_update(skip_locked=True))
        claimed = []
        async with self._engine.begin() as conn:
            for row in (await conn.execute(query)).all():
                taken = await conn.execute(
                    t.update().where(t.c.id == row.id, t.c.state == row.state,
                                     t.c.updated_at.is_not_distinct_from(row.updated_at))
                    .values(state=State.SENDING.value,
                            lease_until=now + timedelta(seconds=lease), updated_at=now))
                if taken.rowcount == 1:
                    claimed.append(row)
        out = []
        for row in claimed:
            try:
                message = await self._open(row)
            except VaultError as exc:  # its tenant's key is missing: retried later
                log.error("a queued copy cannot be opened; retried later", extra={
                    "queue_id": row.queue_id, "tenant_id": row.tenant_id,
                    "error": exc.message, "alert": "ops"})
                await self.finish(row.id, State(row.state) if row.state != State.SENDING.value
                                  else State.DEFERRED, attempted=False,
                                  next_attempt_at=now + timedelta(minutes=5))
                continue
            out.append((_copy(row), message))
        return out

    async def claim_one(self, copy_id: int, lease: float) -> tuple[QueuedCopy, bytes] | None:
        """Claim one waiting copy by id (operator actions), or None if a worker has it."""
        now = datetime.now(UTC)
        async with self._engine.begin() as conn:
            row = (await conn.execute(sa.select(t).where(t.c.id == copy_id)
                                      .with_for_update(skip_locked=True))).first()
            if row is None or row.state not in [s.value for s in DUE_STATES]:
                return None
            await conn.execute(t.update().where(t.c.id == copy_id).values(
                state=State.SENDING.value, lease_until=now + timedelta(seconds=lease),
                updated_at=now))
        return _copy(row), await self._open(row)

    async def finish(self, copy_id: int, state: State, *, reply: tuple[int, str, str] | None =
                     None, next_attempt_at: datetime | None = None,
                     attempted: bool = True) -> None:
        values: dict[str, Any] = {"state": state.value, "lease_until": None,
                                  "updated_at": datetime.now(UTC)}
        if attempted:
            values["attempts"] = t.c.attempts + 1
        if reply is not None:
            values.update(reply_code=reply[0], reply_status=reply[1], reply_text=reply[2][:500])
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        async with self._engine.begin() as conn:
            await conn.execute(t.update().where(t.c.id == copy_id).values(**values))

    async def finish_many(self, updates: Sequence[Finish]) -> None:
        """A round's outcomes in one transaction (one executemany)."""
        if not updates:
            return
        async with self._engine.begin() as conn:
            await conn.execute(_FINISH, _finish_params(updates))

    async def deferred_since(self, before: datetime) -> int:
        """Copies still deferred that arrived before `before` (a stuck queue, for alerts)."""
        async with self._engine.connect() as conn:
            return int((await conn.execute(sa.select(sa.func.count()).where(
                t.c.state == State.DEFERRED.value, t.c.created_at < before))).scalar_one())

    # --- operators -------------------------------------------------------------------------
    async def listing(self, states: Sequence[State] = OPEN_STATES, tenant_id: int | None = None,
                   limit: int = 1000) -> list[QueuedCopy]:
        query = (sa.select(*_COLUMNS).where(t.c.state.in_([s.value for s in states]))
                 .order_by(t.c.id).limit(limit))
        if tenant_id is not None:
            query = query.where(t.c.tenant_id == tenant_id)
        async with self._engine.connect() as conn:
            return [_copy(r) for r in await conn.execute(query)]

    async def get(self, copy_id: int) -> QueuedCopy:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(*_COLUMNS).where(t.c.id == copy_id))).first()
        if row is None:
            raise NotFound(f"Queued copy {copy_id} does not exist.")
        return _copy(row)

    async def for_queue_id(self, queue_id: str) -> list[QueuedCopy]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(sa.select(*_COLUMNS).where(t.c.queue_id == queue_id)
                                      .order_by(t.c.id))
            return [_copy(r) for r in rows]

    async def retry_now(self, copy_id: int | None = None, tenant_id: int | None = None) -> int:
        """Make deferred copies due now (one, or all, or all of a tenant's)."""
        query = t.update().where(t.c.state == State.DEFERRED.value)
        if copy_id is not None:
            query = query.where(t.c.id == copy_id)
        if tenant_id is not None:
            query = query.where(t.c.tenant_id == tenant_id)
        async with self._engine.begin() as conn:
            result = await conn.execute(query.values(next_attempt_at=datetime.now(UTC)))
            return int(result.rowcount)

    async def sealed_bytes(self, queue_id: str) -> list[bytes]:
        """The sealed messages as stored (to show they are not readable at rest)."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(sa.select(t.c.sealed_message).where(
                t.c.queue_id == queue_id))
            return [bytes(r[0]) for r in rows]


# One attempt's end (`Finish`), as one executemany statement.
_FINISH = t.update().where(t.c.id == sa.bindparam("b_id")).values(
    state=sa.bindparam("b_state"), lease_until=None, updated_at=sa.bindparam("b_now"),
    attempts=t.c.attempts + sa.bindparam("b_inc"),
    reply_code=sa.func.coalesce(sa.bindparam("b_code", type_=sa.Integer), t.c.reply_code),
    reply_status=sa.func.coalesce(sa.bindparam("b_status", type_=sa.String), t.c.reply_status),
    reply_text=sa.func.coalesce(sa.bindparam("b_text", type_=sa.String), t.c.reply_text),
    next_attempt_at=sa.func.coalesce(sa.bindparam("b_next", type_=t.c.next_attempt_at.type),
                                     t.c.next_attempt_at),
)


def _finish_params(updates: Sequence[Finish]) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [{
        "b_id": u.copy_id, "b_state": u.state.value, "b_inc": 1 if u.attempted else 0,
        "b_code": u.reply[0] if u.reply else None,
        "b_status": u.reply[1] if u.reply else None,
        "b_text": u.reply[2][:500] if u.reply else None,
        "b_next": u.next_attempt_at, "b_now": now,
    } for u in updates]
