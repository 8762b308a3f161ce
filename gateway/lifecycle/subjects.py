"""Data subjects' rights: everything the gateway holds about one person (export), and its
deletion (erase), each one call from the CLI or the admin API.

A person is found by their address where a store keeps it (suppression entries, tenant
events, queued copies, held messages) and by the keyed digest where it keeps only that
(pixel opens, audit rows). An export holds that person's rows only: a held message sent to
several people shows this recipient, never the others.

Erasure deletes the rows and leaves one digest-only suppression entry (reason `erasure`), so
the person is never mailed again although no store can say who they were. Audit rows stay:
they hold only the digest, and the trail that proves what happened is append-only. A tenant
under legal hold keeps its held messages and suppression entries; the receipt says so.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.audit import trail as audit
from gateway.delivery import dsn
from gateway.delivery.queue import CopyKind, NewCopy, QueueStore, State
from gateway.errors import InvalidValue
from gateway.lawful.records import keep_proof_only
from gateway.lifecycle.retention import legal_holds
from gateway.lifecycle.scrub import scrub
from gateway.optout.suppressions import Suppressions
from gateway.review.held import HELD, HeldStore
from gateway.store.engine import aware
from gateway.store.schema import (
    audit_events,
    consent_records,
    events,
    feedback_marks,
    held_messages,
    opens,
    optout_receipts,
    optout_reviews,
    pending_copies,
    recipient_records,
    sent_messages,
    tenants,
)
from suppression.canonical import GMAIL_DOMAINS, InvalidAddress, canonical
from suppression.entries import GLOBAL, Entry, Kind, NewEntry, Reason, Target
from suppression.schema import suppressions
from suppression.store import entry_from_row


def _when(value: datetime | None) -> str | None:
    value = aware(value)
    return value.isoformat() if value is not None else None


def _unix(value: int | None) -> str | None:
    return datetime.fromtimestamp(value, UTC).isoformat() if value is not None else None


@dataclass(frozen=True, slots=True)
class Subject:
    """One person, as each store names them."""

    address: str  # canonical (what suppression entries hold)
    digest: str  # the keyed digest of the audit trail and pixel opens

    def domains(self) -> set[str]:
        """Every spelling of the person's domain a stored address may use."""
        domain = self.address.rpartition("@")[2]
        found = {domain}
        if domain in GMAIL_DOMAINS:
            found |= GMAIL_DOMAINS
        try:
            found.add(domain.encode("ascii").decode("idna"))  # xn-- as it was written
        except UnicodeError:
            pass
        return found

    def is_them(self, address: str | None) -> bool:
        """Is `address` one of the person's spellings (case, dots, +tags, as canonical())?"""
        if not address:
            return False
        try:
            return canonical(address) == self.address
        except InvalidAddress:
            return False

    def candidates(self, column: Any) -> sa.ColumnElement[bool]:
        """A cheap SQL pre-filter (same domain) for rows `is_them` then decides on."""
        def like(domain: str) -> str:
            return "%@" + domain.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return sa.or_(*[sa.func.lower(column).like(like(d), escape="\\")
                        for d in sorted(self.domains())])


class Subjects:
    def __init__(self, engine: AsyncEngine, suppressions: Suppressions,
                 digest: Any, held: HeldStore, queue: QueueStore | None = None,
                 reporting_mta: str = "") -> None:
        self._engine = engine
        self._queue = queue  # where reports to senders owed one after an erasure go
        self._reporting_mta = reporting_mta
        self._suppressions = suppressions
        self._digest = digest  # recipient -> keyed digest (the audit trail's)
        self._held_store = held  # opens and re-seals kept messages (an erasure rewrites them)

    def subject(self, address: str) -> Subject:
        try:
            canon = canonical(address.strip())
        except InvalidAddress as exc:
            raise InvalidValue(f"Not an address: {exc}") from None
        return Subject(canon, self._digest(canon))

    # --- export ------------------------------------------------------------------------
    async def export(self, address: str, actor: str, tenant_id: int | None = None,
                     requested_at: datetime | None = None) -> dict[str, Any]:
        """One JSON-ready document. `tenant_id`: only that tenant's data (a tenant-bound
        caller); None: every tenant's (the operator). Audited (a read of personal data),
        with when the person asked (`requested_at`, default: now) for the evidence pack's
        completion times."""
        asked = _asked(requested_at)
        person = self.subject(address)
        async with self._engine.connect() as conn:
            names = {r.id: r.name for r in await conn.execute(sa.select(tenants.c.id,
                                                                         tenants.c.name))}
            doc: dict[str, Any] = {
                "subject": person.address,
                "generated_at": datetime.now(UTC).isoformat(),
                "scope": names.get(tenant_id, "?") if tenant_id is not None else "all tenants",
                "suppression_entries": await self._suppression_entries(conn, person,
                                                                       tenant_id, names),
                **await _traces(conn, person, tenant_id, names),
                **await self._copies(conn, person, tenant_id, names),
                # the signed proof of each opt-out (optout/receipts.py), as handed out
                "optout_receipts": [r.receipt for r in await conn.execute(
                    sa.select(optout_receipts.c.receipt).where(
                        optout_receipts.c.recipient_digest == person.digest,
                        optout_receipts.c.receipt != "",  # a pending one is signed soon
                        *_tenant(optout_receipts, tenant_id)).order_by(optout_receipts.c.id))],
                # what the tenant recorded of them and their consents (lawful/records.py)
                "recipient_records": [{
                    "tenant": names.get(r.tenant_id), "country": r.country, "kind": r.kind,
                    "source": r.source, "updated_at": _when(r.updated_at),
                } for r in await conn.execute(sa.select(recipient_records).where(
                    recipient_records.c.digest == person.digest,
                    *_tenant(recipient_records, tenant_id)))],
                "consent_records": [{
                    "tenant": names.get(r.tenant_id), "basis": r.basis,
                    "given_at": _when(r.given_at), "source": r.source, "method": r.method,
                    "evidence": r.evidence, "scope": r.scope,
                    "expires_at": _when(r.expires_at), "withdrawn_at": _when(r.withdrawn_at),
                } for r in await conn.execute(sa.select(consent_records).where(
                    consent_records.c.digest == person.digest,
                    *_tenant(consent_records, tenant_id)).order_by(consent_records.c.id))],
            }
        counts = {k: len(v) for k, v in doc.items() if isinstance(v, list)}
        async with self._engine.begin() as conn:
            await audit.write(conn, [audit.row("subject.exported", actor=actor,
                                               tenant_id=tenant_id,
                                               recipient_digest=person.digest,
                                               counts=counts, requested_at=asked)])
        return doc

    async def _copies(self, conn: AsyncConnection, person: Subject, tenant_id: int | None,
                      names: dict[int, str]) -> dict[str, list[dict[str, Any]]]:
        """Copies kept of mail to or from the person, and the audit rows naming them."""
        return {
            "queued_copies": [{
                "tenant": names.get(r.tenant_id), "queue_id": r.queue_id,
                "kind": r.kind, "state": r.state, "sender": r.envelope_from,
                "message_id": r.message_id, "created_at": _when(r.created_at),
                "updated_at": _when(r.updated_at),
                "last_reply": f"{r.reply_code} {r.reply_status} {r.reply_text}".strip(),
            } for r in await conn.execute(sa.select(pending_copies).where(
                person.candidates(pending_copies.c.recipient),
                *_tenant(pending_copies, tenant_id)).order_by(pending_copies.c.id))
                if person.is_them(r.recipient)],
            "held_messages": [{
                "tenant": names.get(r.tenant_id), "queue_id": r.queue_id,
                "role": role, "status": r.status, "sender": r.envelope_from,
                "subject": subject, "check": r.check_name, "reason": r.reason,
                "created_at": _when(r.created_at), "decided_at": _when(r.decided_at),
            } for r, role, _, subject in await self._held(conn, person, tenant_id)],
            "audit": [{
                "at": _when(r.at), "event": r.event, "actor": r.actor,
                "check": r.check_name, "action": r.action, "reason": r.reason,
                "queue_id": r.queue_id, "tenant": names.get(r.tenant_id),
            } for r in await conn.execute(sa.select(audit_events).where(
                audit_events.c.recipient_digest == person.digest,
                *_tenant(audit_events, tenant_id)).order_by(audit_events.c.id))],
        }

    async def _suppression_entries(self, conn: AsyncConnection, person: Subject,
                                   tenant_id: int | None, names: dict[int, str]
                                   ) -> list[dict[str, Any]]:
        return [{
            "list": "global" if e.scope == GLOBAL else names.get(e.scope),
            "reason": e.reason.value, "source": e.source, "created_at": _unix(e.created_at),
            "expires_at": _unix(e.expires_at), "note": e.note,
        } for e in await self._address_entries(conn, person, tenant_id)]

    async def _address_entries(self, conn: AsyncConnection, person: Subject,
                               tenant_id: int | None) -> list[Entry]:
        """Entries for this very address (not the domain entries it also falls under)."""
        digest = self._suppressions.store.digester.target(Target(Kind.ADDRESS, person.address))
        rows = await conn.execute(sa.select(suppressions).where(
            suppressions.c.digest == digest, suppressions.c.kind == Kind.ADDRESS.value,
            *([suppressions.c.scope == tenant_id] if tenant_id is not None else []))
            .order_by(suppressions.c.id))
        return [entry_from_row(r) for r in rows]

    async def _held(self, conn: AsyncConnection, person: Subject, tenant_id: int | None
                    ) -> list[tuple[Any, str, list[str], str]]:
        """Held messages sent to the person (`recipient`) or by them (`sender`), each with
        its opened recipients and subject. Recipients are found by their digests (legacy
        rows, not sealed yet, by their plain list)."""
        h = held_messages.c
        rows = (await conn.execute(sa.select(held_messages).where(
            sa.or_(person.candidates(h.envelope_from),
                   sa.cast(h.recipient_digests, sa.String).contains(person.digest),
                   *[sa.func.lower(sa.cast(h.recipients, sa.String)).contains("@" + d)
                     for d in sorted(person.domains())]),
            *_tenant(held_messages, tenant_id)).order_by(h.id))).all()
        found = []
        for r in rows:
            recipients, subject = await self._held_store.names(r)
            if person.is_them(r.envelope_from):
                found.append((r, "sender", recipients, subject))
            elif any(person.is_them(x) for x in recipients):
                found.append((r, "recipient", recipients, subject))
        return found

    # --- erasure -----------------------------------------------------------------------
    async def erase(self, address: str, actor: str, evidence: str,
                    tenant_id: int | None = None, requested_at: datetime | None = None
                    ) -> dict[str, Any]:
        """Delete what the gateway holds about the person (within `tenant_id` if given) and
        suppress them for good with a digest-only entry. Returns the receipt. The audit
        row says when the person asked (`requested_at`, default: now)."""
        asked = _asked(requested_at)
        if not evidence.strip():
            raise InvalidValue("Say what the request is (--evidence: e.g. the ticket).")
        person = self.subject(address)
        now = datetime.now(UTC)
        deleted: dict[str, int] = {}
        kept: dict[str, int] = {}
        async with self._engine.begin() as conn:
            hold = await legal_holds(conn)
            if tenant_id is not None:
                hold &= {tenant_id}
            entries = await self._address_entries(conn, person, tenant_id)
            removable = [e for e in entries if e.scope not in hold]
            for entry in removable:
                await self._suppressions.store.delete(conn, entry.id)
            deleted["suppression_entries"] = len(removable)
            kept["suppression_entries_under_legal_hold"] = len(entries) - len(removable)
            deleted.update(await _erase_traces(conn, person, tenant_id))
            owed: list[_Owed] = []  # accepted mail to them that now never leaves
            deleted["queued_copies"] = await self._erase_queued(conn, person, tenant_id, owed)
            deleted["held_messages"], kept["held_messages_under_legal_hold"], \
                deleted["held_recipients"] = await self._erase_held(conn, person, tenant_id,
                                                                   hold, owed)
            if owed:
                await audit.write(conn, [audit.row(
                    "copy.erased", actor=actor, tenant_id=o.tenant_id, queue_id=o.queue_id,
                    recipient_digest=person.digest) for o in owed])
            # their consents stay as proof, evidence reduced to a hash (lawful/records.py)
            deleted["recipient_records"], kept["consent_records_as_proof"] = \
                await keep_proof_only(conn, person.digest, tenant_id)
            kept["audit_rows"] = (await conn.execute(sa.select(sa.func.count()).where(
                audit_events.c.recipient_digest == person.digest))).scalar_one()
            await self._suppress_for_good(conn, person, tenant_id, hold, actor)
            await audit.write(conn, [audit.row(
                "subject.erased", actor=actor, tenant_id=tenant_id, reason=evidence[:500],
                recipient_digest=person.digest, deleted=deleted, kept=kept,
                requested_at=asked)])
        deleted["reports_to_senders"] = await self._report(owed, person)
        await scrub(self._engine, ERASED_TABLES)  # out of the WAL and free pages too
        return {
            "erased_at": now.isoformat(), "subject_digest": person.digest,
            "scope": "all tenants" if tenant_id is None else f"tenant {tenant_id}",
            "deleted": deleted, "kept": kept,
            "suppressed": "a digest-only erasure entry: the address is never mailed again "
                          "and no longer stored",
            "audit_rows": "kept: they name the person by keyed digest only, and the audit "
                          "trail is append-only",
        }

    async def _suppress_for_good(self, conn: AsyncConnection, person: Subject,
                                 tenant_id: int | None, hold: set[int], actor: str) -> None:
        """A digest-only erasure entry: the address is never mailed again, nor stored."""
        scope = GLOBAL if tenant_id is None else tenant_id
        target = Target(Kind.ADDRESS, person.address)
        untouched = set(hold)
        if tenant_id is not None:  # a tenant's erasure leaves other lists as they are
            untouched |= set((await conn.execute(sa.select(suppressions.c.scope).where(
                suppressions.c.digest == self._suppressions.store.digester.target(target),
                suppressions.c.scope != tenant_id))).scalars())
        epoch = int(time.time())
        await self._suppressions.store.add(conn, [NewEntry(
            scope, target, Reason.ERASURE, "erasure", epoch, None, "", actor)], epoch,
            keep_scopes=untouched)

    async def _erase_queued(self, conn: AsyncConnection, person: Subject,
                            tenant_id: int | None, owed: list[_Owed]) -> int:
        """Queued copies to the person: deleted; a waiting one is owed a report."""
        c = pending_copies.c
        rows = await _theirs(conn, pending_copies, c.recipient, person, tenant_id,
                             c.queue_id, c.tenant_id, c.mailbox_id, c.envelope_from, c.kind,
                             c.state, c.created_at, c.message_id)
        for r in rows:
            if r.kind == CopyKind.COPY.value and r.envelope_from and r.state in _WAITING:
                owed.append(_Owed(r.queue_id, r.tenant_id, r.mailbox_id, r.envelope_from,
                                  aware(r.created_at) or datetime.now(UTC), r.message_id))
        return await _delete(conn, pending_copies, [r.id for r in rows])

    async def _report(self, owed: list[_Owed], person: Subject) -> int:
        """One RFC 3464 report per message to its sender, naming the erased recipient by
        `erased-<digest>@invalid`, with no part of the original (it names them)."""
        if self._queue is None:
            return 0
        by_message = {o.queue_id: o for o in owed}
        for o in by_message.values():
            report = dsn.build(
                reporting_mta=self._reporting_mta or "localhost", queue_id=o.queue_id,
                sender=o.sender, arrival=o.arrival, original=None,
                recipients=[dsn.RecipientStatus(
                    dsn.erased_recipient(person.digest), "failed", "5.7.1",
                    "550 5.7.1 Not sent: the recipient's data was erased at their request")])
            await self._queue.add([NewCopy(
                o.queue_id, o.tenant_id, o.mailbox_id, "", o.sender, State.DEFERRED, 0,
                "2.0.0", "report queued", kind=CopyKind.DSN, message_id=o.message_id)], report)
        if by_message:
            async with self._engine.begin() as conn:
                await audit.write(conn, [audit.row(
                    "dsn.queued", actor="erasure", tenant_id=o.tenant_id, queue_id=o.queue_id,
                    recipients=[person.digest]) for o in by_message.values()])
        return len(by_message)

    async def _erase_held(self, conn: AsyncConnection, person: Subject,
                          tenant_id: int | None, hold: Collection[int],
                          owed: list[_Owed]) -> tuple[int, int, int]:
        """Messages to or from the person: deleted, or (sent to others too) the person taken
        off the recipients. Under legal hold: kept. Returns (deleted, kept, taken off).
        A message still held (accepted, undecided) owes its sender a report for them."""
        deleted = kept = taken_off = 0
        for row, role, recipients, _ in await self._held(conn, person, tenant_id):
            if row.tenant_id in hold:
                kept += 1
                continue
            if role == "recipient" and row.status == HELD and row.envelope_from:
                owed.append(_Owed(row.queue_id, row.tenant_id, row.mailbox_id,
                                  row.envelope_from,
                                  aware(row.created_at) or datetime.now(UTC), None))
            others = [r for r in recipients if not person.is_them(r)]
            if role == "sender" or not others:
                await conn.execute(held_messages.delete().where(held_messages.c.id == row.id))
                deleted += 1
            else:  # re-sealed without them in any header, and off the sealed list
                await self._held_store.reseal_without(conn, row.id, others, person.is_them)
                taken_off += 1
        return deleted, kept, taken_off


@dataclass(frozen=True, slots=True)
class _Owed:
    """Accepted mail to an erased person that will never leave: its sender gets a report."""

    queue_id: str
    tenant_id: int
    mailbox_id: int
    sender: str
    arrival: datetime
    message_id: str | None


_WAITING = (State.DEFERRED.value, State.REFUSED.value)


async def _theirs(conn: AsyncConnection, table: sa.Table, column: Any, person: Subject,
                 tenant_id: int | None, *more: Any) -> list[Any]:
    """The rows (id, `column`, `more`...) whose `column` is one of the person's spellings."""
    rows = await conn.execute(sa.select(table.c.id, column, *more).where(
        person.candidates(column), *_tenant(table, tenant_id)))
    return [r for r in rows if person.is_them(r[1])]


async def _events(conn: AsyncConnection, person: Subject, tenant_id: int | None
                  ) -> list[Any]:
    """The person's events: by digest (events/names.py), and rows written before 0020
    and not sealed yet by any spelling of their plain address."""
    e = events.c
    by_digest = (await conn.execute(sa.select(events).where(
        e.recipient_digest == person.digest, *_tenant(events, tenant_id)))).all()
    legacy = await conn.execute(sa.select(events).where(
        e.recipient.is_not(None), person.candidates(e.recipient), *_tenant(events, tenant_id)))
    found = {r.id: r for r in by_digest}
    found.update({r.id: r for r in legacy if person.is_them(r.recipient)})
    return [found[i] for i in sorted(found)]


async def _delete(conn: AsyncConnection, table: sa.Table, ids: list[int]) -> int:
    for start in range(0, len(ids), 500):
        await conn.execute(table.delete().where(table.c.id.in_(ids[start:start + 500])))
    return len(ids)


# Where an erasure deletes or rewrites rows (the tables vacuumed after it on PostgreSQL).
ERASED_TABLES = ("suppressions", "events", "opens", "sent_messages", "feedback_marks",
                 "optout_reviews", "pending_copies", "held_messages", "recipient_records",
                 "consent_records")


def _tenant(table: sa.Table, tenant_id: int | None) -> list[sa.ColumnElement[bool]]:
    return [] if tenant_id is None else [table.c.tenant_id == tenant_id]


async def _traces(conn: AsyncConnection, person: Subject, tenant_id: int | None,
                  names: dict[int, str]) -> dict[str, list[dict[str, Any]]]:
    """What the gateway noted about the person: events, opens, sent copies, counted bounces,
    possible opt-outs."""
    return {
        "events": [{
            "tenant": names.get(r.tenant_id), "at": _when(r.at), "kind": r.kind,
            "queue_id": r.queue_id, "detail": r.detail,
        } for r in await _events(conn, person, tenant_id)],
        "opens": [{
            "tenant": names.get(r.tenant_id), "at": _when(r.at), "campaign": r.campaign,
            "network": r.network, "user_agent_family": r.ua_family,
            "machine": r.machine,
        } for r in await conn.execute(sa.select(opens).where(
            opens.c.recipient_digest == person.digest,
            *_tenant(opens, tenant_id)).order_by(opens.c.id))],
        "sent_copies": [{
            "tenant": names.get(r.tenant_id), "queue_id": r.queue_id,
            "sent_at": _when(r.sent_at),
        } for r in await conn.execute(sa.select(sent_messages).where(
            sent_messages.c.recipient_digest == person.digest,
            *_tenant(sent_messages, tenant_id)).order_by(sent_messages.c.id))],
        "counted_bounces": [{
            "tenant": names.get(r.tenant_id), "kind": r.kind, "status": r.status,
            "at": _when(r.at),
        } for r in await conn.execute(sa.select(feedback_marks).where(
            feedback_marks.c.recipient_digest == person.digest,
            *_tenant(feedback_marks, tenant_id)).order_by(feedback_marks.c.id))],
        "possible_opt_outs": [{
            "tenant": names.get(r.tenant_id), "queue_id": r.queue_id, "rule": r.rule,
            "status": r.status, "created_at": _when(r.created_at),
            "decided_at": _when(r.decided_at),
        } for r in await conn.execute(sa.select(
            *[c for c in optout_reviews.c if c.name != "sealed_reply"]).where(
            optout_reviews.c.recipient_digest == person.digest,
            *_tenant(optout_reviews, tenant_id)).order_by(optout_reviews.c.id))],
    }


async def _erase_traces(conn: AsyncConnection, person: Subject, tenant_id: int | None
                        ) -> dict[str, int]:
    """Delete what the gateway noted about the person; the count of each kind."""
    deleted = {"events": await _delete(conn, events, [
        r.id for r in await _events(conn, person, tenant_id)])}
    for name, table in (("opens", opens), ("sent_copies", sent_messages),
                        ("counted_bounces", feedback_marks),
                        ("possible_opt_outs", optout_reviews)):
        deleted[name] = (await conn.execute(table.delete().where(
            table.c.recipient_digest == person.digest,
            *_tenant(table, tenant_id)))).rowcount
    return deleted


def _asked(requested_at: datetime | None) -> str:
    """When the person asked, as the audit row records it; never in the future."""
    now = datetime.now(UTC)
    if requested_at is None:
        return now.isoformat()
    if requested_at.tzinfo is None:
        requested_at = requested_at.replace(tzinfo=UTC)
    if requested_at > now:
        raise InvalidValue("The request cannot have been made in the future (--requested).")
    return requested_at.astimezone(UTC).isoformat()
