"""Held and refused messages: kept durably (the body sealed by the vault), then released,
discarded or left to expire by a reviewer.

A HOLD verdict answers the client `250 ... held for review`, so a held message must never
vanish silently: discarding one sends the envelope sender a delivery report (no body, the
reason category) and a tenant event. Releasing one is a request that the running gateway
carries out (`ReviewWorker`): it builds each recipient's compliant copy, as at DATA time, and
hands them to the delivery queue, where suppression is checked again before each attempt.
Every read of a body and every decision is an audit row.

The review queue's metadata is in clear except what names people: the subject and the
recipient list are sealed together under the tenant's key (`sealed_names`), opened for a
reviewer with one audit row per page view. A keyed hash of the normalised subject serves
the review search, and the recipients' digests serve export and erasure.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.audit import trail as audit
from gateway.directory.store import audit_change
from gateway.errors import Conflict, InvalidValue, NotFound, VaultError
from gateway.events.names import EventNames
from gateway.feedback.sent import subject_hash
from gateway.review.redact import without_address
from gateway.store.schema import held_messages as t
from gateway.vault.envelope import Vault
from gateway.vault.tenant_keys import TenantSealer

log = logging.getLogger("gateway.review")

HELD, REFUSED = "held", "refused"
RELEASE_REQUESTED, RELEASED, DISCARDED = "release-requested", "released", "discarded"
EXPIRED = "expired"


def seal_context(tenant_id: int, queue_id: str) -> bytes:
    return f"held_messages|{tenant_id}|{queue_id}".encode()


def _names_label(queue_id: str) -> str:
    return f"held-names|{queue_id}"


def body_label(queue_id: str) -> str:
    return f"held-message|{queue_id}"


@dataclass(frozen=True, slots=True)
class HeldMessage:
    id: int
    queue_id: str
    tenant_id: int
    login: str
    mailbox_id: int
    envelope_from: str
    recipients: list[str]
    subject: str
    size: int
    smtputf8: bool
    check_name: str
    reason: str
    verdicts: list[Any]
    status: str
    notes: list[Any]
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _held(row: Any, recipients: list[str], subject: str) -> HeldMessage:
    created = _aware(row.created_at)
    assert created is not None
    return HeldMessage(row.id, row.queue_id, row.tenant_id, row.login, row.mailbox_id,
                       row.envelope_from, recipients, subject, row.size,
                       row.smtputf8, row.check_name, row.reason, list(row.verdicts),
                       row.status, list(row.notes), created, _aware(row.decided_at),
                       row.decided_by)


_META = [c for c in t.c if c.name != "sealed_message"]


def _filters(tenant_id: int | None, status: str | None, since: datetime | None,
             until: datetime | None) -> list[sa.ColumnElement[bool]]:
    where = []
    if tenant_id is not None:
        where.append(t.c.tenant_id == tenant_id)
    if status:
        where.append(t.c.status == status)
    if since is not None:
        where.append(t.c.created_at >= since)
    if until is not None:
        where.append(t.c.created_at < until)
    return where


class HeldStore:
    def __init__(self, engine: AsyncEngine, vault: Vault, sealer: TenantSealer,
                 names: EventNames, digest: Callable[[str], str]) -> None:
        self._engine = engine
        self._vault = vault
        self._sealer = sealer  # the subject and recipients, under the tenant's key
        self._names = names  # events name recipients as events/names.py says
        self._digest = digest  # the audit trail's keyed digest (subjects)

    def subject_hash(self, subject: str) -> str | None:
        """What review search matches: the keyed hash of the normalised subject."""
        return subject_hash(subject, self._digest)

    async def sealed_names(self, tenant_id: int, queue_id: str, recipients: Sequence[str],
                           subject: str, conn: AsyncConnection | None = None
                           ) -> dict[str, Any]:
        """The columns that name people, as stored (`conn`: the caller's transaction)."""
        plain = json.dumps({"recipients": list(recipients), "subject": subject[:998]})
        return {"sealed_names": await self._sealer.seal(tenant_id, plain.encode(),
                                                        _names_label(queue_id), conn),
                "subject_hash": self.subject_hash(subject),
                "recipient_digests": [self._names.person_digest(r) for r in recipients],
                "recipients": [], "subject": ""}

    async def names(self, row: Any) -> tuple[list[str], str]:
        """A stored row's recipients and subject: ([], "") once the tenant key is gone."""
        if row.sealed_names is None:  # written before 0020 and not yet sealed
            return list(row.recipients), row.subject
        plain = await self._sealer.open(row.tenant_id, row.sealed_names,
                                        _names_label(row.queue_id))
        if plain is None:
            return [], ""
        opened = json.loads(plain)
        return list(opened["recipients"]), str(opened["subject"])

    async def _opened(self, row: Any) -> HeldMessage:
        return _held(row, *await self.names(row))

    async def _viewed(self, actor: str | None, rows: Sequence[HeldMessage]) -> None:
        """One audit row per page view that showed subjects and recipients."""
        if actor is None or not rows:
            return
        async with self._engine.begin() as conn:
            await audit_change(conn, actor, "held.viewed",
                               rows[0].tenant_id if len(rows) == 1 else None,
                               held=[h.id for h in rows][:200])

    async def add(self, *, queue_id: str, tenant_id: int, login: str, mailbox_id: int,
                  envelope_from: str, recipients: Sequence[str], subject: str,
                  message: bytes, smtputf8: bool, check_name: str, reason: str,
                  verdicts: list[Any], status: str) -> None:
        sealed, key_id = self._vault.seal(
            await self._sealer.wrap(tenant_id, message, body_label(queue_id)),
            seal_context(tenant_id, queue_id))
        named = await self.sealed_names(tenant_id, queue_id, recipients, subject)
        async with self._engine.begin() as conn:
            await conn.execute(t.insert().values(
                queue_id=queue_id, tenant_id=tenant_id, login=login, mailbox_id=mailbox_id,
                envelope_from=envelope_from, **named, size=len(message), smtputf8=smtputf8,
                check_name=check_name, reason=reason[:1000], verdicts=verdicts,
                status=status, notes=[], sealed_message=sealed, key_id=key_id,
                created_at=datetime.now(UTC)))

    async def seal_legacy(self) -> int:
        """Seal the subject and recipients of rows written before 0020 (a starting gateway
        runs this). Returns how many it sealed."""
        done = 0
        while True:
            async with self._engine.begin() as conn:
                rows = (await conn.execute(sa.select(*_META).where(
                    t.c.sealed_names.is_(None)).limit(200))).all()
                for r in rows:
                    named = await self.sealed_names(r.tenant_id, r.queue_id,
                                                    list(r.recipients), r.subject, conn)
                    await conn.execute(t.update().where(t.c.id == r.id).values(**named))
            done += len(rows)
            if len(rows) < 200:
                return done

    async def listing(self, tenant_id: int | None = None, status: str | None = None,
                      check_name: str | None = None, limit: int = 100,
                      after: int = 0, viewer: str | None = None) -> list[HeldMessage]:
        query = sa.select(*_META).where(t.c.id > after).order_by(t.c.id).limit(limit)
        if tenant_id is not None:
            query = query.where(t.c.tenant_id == tenant_id)
        if status:
            query = query.where(t.c.status == status)
        if check_name:
            query = query.where(t.c.check_name == check_name)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        found = [await self._opened(r) for r in rows]
        await self._viewed(viewer, found)
        return found

    async def page(self, *, tenant_id: int | None, status: str | None, check_name: str | None,
                   since: datetime | None, until: datetime | None, before: int | None,
                   limit: int, subject: str = "", viewer: str | None = None
                   ) -> tuple[list[HeldMessage], dict[str, int]]:
        """The review queue's page: newest first, before id `before`, with the count of
        every check under the same filters (a reviewer sees what is left by reason).
        `subject`: only messages with this subject (reply prefixes, case and spacing
        aside) — an exact match on its keyed hash, since subjects are sealed."""
        where = _filters(tenant_id, status, since, until)
        if subject.strip():
            where.append(t.c.subject_hash == (self.subject_hash(subject) or "-"))
        query = sa.select(*_META).where(*where).order_by(t.c.id.desc()).limit(limit)
        if check_name:
            query = query.where(t.c.check_name == check_name)
        if before is not None:
            query = query.where(t.c.id < before)
        counts = sa.select(t.c.check_name, sa.func.count()).where(*where).group_by(
            t.c.check_name)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            by_check = {name: n for name, n in await conn.execute(counts)}
        found = [await self._opened(r) for r in rows]
        await self._viewed(viewer, found)
        return found, by_check

    async def get(self, held_id: int, viewer: str | None = None) -> HeldMessage:
        """One message's metadata; `viewer` (a person's page view) is audited."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(*_META).where(t.c.id == held_id))).first()
        if row is None:
            raise NotFound(f"Held message {held_id} does not exist.")
        found = await self._opened(row)
        await self._viewed(viewer, [found])
        return found

    async def reseal_without(self, conn: AsyncConnection, held_id: int, recipients: list[str],
                             is_person: Callable[[str], bool]) -> None:
        """An erasure: keep the message for its other `recipients`, sealed again without
        the person in any address field (review/redact.py)."""
        row = (await conn.execute(sa.select(t).where(t.c.id == held_id))).one()
        message = without_address(await self._body(row), is_person)
        sealed, key_id = self._vault.seal(
            await self._sealer.wrap(row.tenant_id, message, body_label(row.queue_id), conn),
            seal_context(row.tenant_id, row.queue_id))
        _, subject = await self.names(row)
        named = await self.sealed_names(row.tenant_id, row.queue_id, recipients, subject,
                                        conn)
        await conn.execute(t.update().where(t.c.id == held_id).values(
            **named, sealed_message=sealed, key_id=key_id, size=len(message)))

    async def body(self, held_id: int, actor: str) -> bytes:
        """The message itself: personal data, so the read is audited."""
        async with self._engine.begin() as conn:
            row = (await conn.execute(sa.select(t).where(t.c.id == held_id))).first()
            if row is None:
                raise NotFound(f"Held message {held_id} does not exist.")
            await audit_change(conn, actor, "held.read", row.tenant_id, held=held_id,
                               queue_id=row.queue_id)
        return await self._body(row)

    async def _body(self, row: Any) -> bytes:
        """A stored row's message: the vault's seal, then (since issue 21) the tenant's."""
        inner = self._vault.open(row.sealed_message, row.key_id,
                                 seal_context(row.tenant_id, row.queue_id))
        return await self._sealer.unwrap(row.tenant_id, inner, body_label(row.queue_id))

    async def _decide(self, held_id: int, actor: str, reason: str, new: str,
                      event: str) -> HeldMessage:
        if not reason.strip():
            raise InvalidValue("Say why (--reason).")
        now = datetime.now(UTC)
        async with self._engine.begin() as conn:
            row = (await conn.execute(sa.select(*_META).where(t.c.id == held_id))).first()
            if row is None:
                raise NotFound(f"Held message {held_id} does not exist.")
            if row.status != HELD:
                raise Conflict(f"Held message {held_id} is {row.status}; only held messages "
                               "can be released or discarded.")
            await conn.execute(t.update().where(t.c.id == held_id, t.c.status == HELD)
                               .values(status=new, decided_at=now, decided_by=actor))
            await audit_change(conn, actor, event, row.tenant_id, reason, held=held_id,
                               queue_id=row.queue_id, check=row.check_name)
        return await self.get(held_id)

    async def request_release(self, held_id: int, actor: str, reason: str) -> HeldMessage:
        return await self._decide(held_id, actor, reason, RELEASE_REQUESTED,
                                  "held.release-requested")

    async def discard(self, held_id: int, actor: str, reason: str) -> HeldMessage:
        """Discarded: the sender gets a report (queued by the caller) and the tenant an
        event."""
        held = await self._decide(held_id, actor, reason, DISCARDED, "held.discarded")
        rows = [audit.event("discarded", tenant_id=held.tenant_id, queue_id=held.queue_id,
                            recipient=r, check=held.check_name) for r in held.recipients]
        await self._names.seal(rows)
        async with self._engine.begin() as conn:
            await audit.write(conn, (), rows)
        return held

    async def note(self, held_id: int, actor: str, text: str) -> HeldMessage:
        if not text.strip() or len(text) > 2000:
            raise InvalidValue("A note of 1 to 2000 characters.")
        async with self._engine.begin() as conn:
            row = (await conn.execute(sa.select(*_META).where(t.c.id == held_id))).first()
            if row is None:
                raise NotFound(f"Held message {held_id} does not exist.")
            notes = [*row.notes, {"by": actor, "at": datetime.now(UTC).isoformat(),
                                  "text": text}]
            await conn.execute(t.update().where(t.c.id == held_id).values(notes=notes))
            await audit_change(conn, actor, "held.noted", row.tenant_id, held=held_id)
        return await self.get(held_id)

    async def expire(self, before: datetime, limit: int = 100
                     ) -> list[tuple[HeldMessage, bytes | None]]:
        """Held messages older than `before`, marked expired (the caller reports them)."""
        async with self._engine.begin() as conn:
            rows = (await conn.execute(sa.select(t).where(
                t.c.status == HELD, t.c.created_at < before).order_by(t.c.id).limit(limit)
                .with_for_update(skip_locked=True))).all()
            taken = []
            for row in rows:
                done = await conn.execute(t.update().where(t.c.id == row.id,
                                                           t.c.status == HELD).values(
                    status=EXPIRED, decided_at=datetime.now(UTC), decided_by="retention"))
                if done.rowcount == 1:
                    taken.append(row)
                    await audit_change(conn, "retention", "held.expired", row.tenant_id,
                                       held=row.id, queue_id=row.queue_id)
            opened = [await self._opened(r) for r in taken]
            expired = [audit.event("expired", tenant_id=h.tenant_id, queue_id=h.queue_id,
                                   recipient=rcpt, check=h.check_name, held=True)
                       for h in opened for rcpt in h.recipients]
            await self._names.seal(expired, conn)
            await audit.write(conn, (), expired)
        return [(h, await self._body_unless_shredded(r))
                for h, r in zip(opened, taken, strict=True)]

    async def _body_unless_shredded(self, row: Any) -> bytes | None:
        """The body, or None once its tenant's key is gone (a deleted tenant's message kept
        under legal hold): shredded, which is not an error."""
        try:
            return await self._body(row)
        except VaultError:
            return None

    async def purge(self, refused_before: datetime, decided_before: datetime,
                    limit: int = 1000, keep_tenants: Collection[int] = ()) -> int:
        """Delete refused copies, and decided (released, discarded, expired) messages, past
        their retention, except those of `keep_tenants` (legal hold). Held ones are never
        purged: they expire first."""
        async with self._engine.begin() as conn:
            ids = [r[0] for r in await conn.execute(sa.select(t.c.id).where(sa.or_(
                sa.and_(t.c.status == REFUSED, t.c.created_at < refused_before),
                sa.and_(t.c.status.in_([RELEASED, DISCARDED, EXPIRED]),
                        t.c.decided_at < decided_before)),
                *([t.c.tenant_id.not_in(list(keep_tenants))] if keep_tenants else []))
                .limit(limit))]
            if ids:
                await conn.execute(t.delete().where(t.c.id.in_(ids)))
                await audit_change(conn, "retention", "held.purged", None, count=len(ids))
        return len(ids)

    async def take_release_requests(self, limit: int = 50) -> list[tuple[HeldMessage, bytes]]:
        """Claim messages whose release was requested (one worker each)."""
        async with self._engine.begin() as conn:
            rows = (await conn.execute(sa.select(t).where(t.c.status == RELEASE_REQUESTED)
                                       .order_by(t.c.id).limit(limit)
                                       .with_for_update(skip_locked=True))).all()
            taken = []
            for row in rows:
                done = await conn.execute(t.update().where(
                    t.c.id == row.id, t.c.status == RELEASE_REQUESTED).values(status=RELEASED))
                if done.rowcount == 1:
                    taken.append(row)
        return [(await self._opened(r), await self._body(r)) for r in taken]
