"""Feedback becomes suppression: one received message (a bounce, a complaint report or a
reply) is matched to the copy the gateway sent, and what it says is recorded.

Feedback is forgeable, so it acts only on a copy the gateway sent (feedback/sent.py), for
that copy's tenant:
- a message read from a mailbox's inbox names its copy by the Message-ID it refers to
  (a DSN's returned headers, an ARF report's original message, a reply's In-Reply-To and
  References), and only copies sent through that same mailbox count;
- a VERP bounce names its copy by the handle in its envelope recipient (feedback/verp.py).
A bounce or complaint counts only for a recipient of that copy: the address it names must
have the copy's suppression digest (a report that hides the address falls back to the copy
itself, digest-only). A reply opts out only the copy's own recipient writing from that
address; anything less certain goes to a person (`optout_reviews`).

What each says:
- `5.1.x` hard bounce: tenant entry, reason `bounce`;
- `4.x.x` soft bounce: counted; `[feedback] soft_bounces` within `soft_bounce_days` make a
  tenant entry, reason `bounce`, that expires after `soft_bounce_hold_days`;
- `5.7.x` policy block: about the sender; counted per mailbox, nobody suppressed;
- ARF complaint: tenant entry, reason `complaint`; a global one once complaints about the
  same person came from `global_complaint_tenants` tenants;
- confident opt-out reply: tenant entry, reason `unsubscribe`, source `reply`.
Each entry's audit row carries the evidence (rule, status, the copy's queue id, the hash of
the feedback's Message-ID), never the message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.audit import trail as audit
from gateway.audit.trail import EventSealer
from gateway.config import FeedbackConfig
from gateway.directory.store import audit_change
from gateway.errors import VaultError
from gateway.feedback.reply_classifier import Classification, ReplyVerdict, classify
from gateway.feedback.reports import Bounce, BounceKind, Complaint, Feedback, parse
from gateway.feedback.sent import SentCopy, SentIndex, message_id_hash
from gateway.limits.breakers import AUTH_FAILURES, BLOCKS, BOUNCES, COMPLAINTS, Breakers
from gateway.observability import metrics
from gateway.optout.receipts import ReceiptSigner
from gateway.optout.suppressions import Suppressions
from gateway.store.schema import feedback_marks, optout_reviews, tenants
from gateway.vault.envelope import Vault
from gateway.vault.tenant_keys import TenantSealer
from suppression.canonical import InvalidAddress, canonical
from suppression.entries import GLOBAL, STRENGTH, Kind, NewEntry, Reason, Target
from suppression.schema import suppressions as suppression_rows

log = logging.getLogger("gateway.optout")

PENDING, CONFIRMED, DISMISSED = "pending", "confirmed", "dismissed"


def reply_label(queue_id: str) -> str:
    return f"optout-reply|{queue_id}"


def review_context(tenant_id: int, queue_id: str) -> bytes:
    return f"optout_reviews|{tenant_id}|{queue_id}".encode()


@dataclass(frozen=True, slots=True)
class Arrival:
    """How a feedback message reached the gateway: read from one mailbox's inbox, or sent
    to a VERP return path that names the copy."""

    source: str  # "inbox", "verp" or "cfbl"
    tenant_id: int
    mailbox_id: int
    copy: SentCopy | None = None  # VERP: the copy the handle names
    # cfbl: the breaker scopes the reference names besides the mailbox's (From domain,
    # campaign)
    scopes: tuple[str, ...] = ()
    # when the gateway had it: an opt-out it carries was requested then (its receipt's
    # received-at)
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def inbox(cls, tenant_id: int, mailbox_id: int) -> Arrival:
        return cls("inbox", tenant_id, mailbox_id)

    @classmethod
    def verp(cls, copy: SentCopy) -> Arrival:
        return cls("verp", copy.tenant_id, copy.mailbox_id, copy)

    @classmethod
    def cfbl(cls, copy: SentCopy, scopes: tuple[str, ...] = ()) -> Arrival:
        """A complaint report whose sealed CFBL-Feedback-ID names the copy: the reference,
        not the report's words, says whom it is about (feedback/complaints.py)."""
        return cls("cfbl", copy.tenant_id, copy.mailbox_id, copy, scopes)


@dataclass(slots=True)
class Applied:
    """What one message did: entries made, marks counted, a review opened, or why not."""

    suppressed: list[str] = field(default_factory=list)  # reasons of the entries made
    marked: list[str] = field(default_factory=list)  # soft | policy
    review_id: int | None = None
    ignored: str = ""  # why nothing was done: "not-ours", "auto-reply", "no-request", ...

    @property
    def kind(self) -> str:
        if self.suppressed:
            return "suppressed"
        if self.review_id is not None:
            return "review"
        if self.marked:
            return "counted"
        return "ignored"


class FeedbackApplier:
    def __init__(self, engine: AsyncEngine, suppressions: Suppressions, sent: SentIndex,
                 vault: Vault, config: FeedbackConfig, names: EventSealer,
                 tenant: TenantSealer, breakers: Breakers | None = None,
                 receipts: ReceiptSigner | None = None) -> None:
        self._engine = engine
        self._receipts = receipts  # signs each opt-out's receipt
        self._breakers = breakers  # complaints, bounces and blocks feed the breakers
        self._names = names  # seals the recipient of the events it writes
        self._tenant = tenant  # a reply kept for review goes with its tenant's key
        self._suppressions = suppressions
        self._sent = sent
        self._vault = vault
        self._config = config

    async def apply(self, raw: bytes, arrival: Arrival) -> Applied:
        """Record what `raw` says. Raises StoreError or VaultError when it cannot be recorded
        now (the caller keeps the message and tries again); never for bad input."""
        feedback = parse(raw)
        evidence = _evidence(raw)
        if not feedback.empty:
            applied = await self._feedback(feedback, arrival, evidence)
        else:
            verdict = classify(raw)
            if verdict.verdict in (ReplyVerdict.OPT_OUT, ReplyVerdict.POSSIBLE):
                applied = await self._reply(raw, verdict, arrival, evidence)
            else:
                applied = Applied(ignored=verdict.verdict.value)
        metrics.FEEDBACK.labels(arrival.source, applied.kind).inc()
        log.info("feedback read", extra={
            "tenant_id": arrival.tenant_id, "mailbox_id": arrival.mailbox_id,
            "source": arrival.source, "outcome": applied.kind, "ignored": applied.ignored,
            "suppressed": ",".join(applied.suppressed), "counted": ",".join(applied.marked)})
        return applied

    # --- which copies --------------------------------------------------------------------
    async def _copies(self, message_ids: Sequence[str], arrival: Arrival) -> list[SentCopy]:
        if arrival.copy is not None:
            return [arrival.copy]
        return [c for c in await self._sent.find(message_ids)
                if c.tenant_id == arrival.tenant_id and c.mailbox_id == arrival.mailbox_id]

    def _digest(self, address: str | None) -> bytes | None:
        return self._suppressions.digest_of(address) if address else None

    # --- bounces and complaints ----------------------------------------------------------
    async def _feedback(self, feedback: Feedback, arrival: Arrival, evidence: str) -> Applied:
        copies = await self._copies(feedback.message_ids, arrival)
        applied = Applied()
        if not copies:
            applied.ignored = "not-ours"
            return applied
        for bounce in feedback.bounces:
            copy, address = self._match(bounce.recipient, copies, arrival, bounce.original)
            if copy is None:
                applied.ignored = "recipient-not-ours"
                continue
            await self._bounce(bounce, copy, address, arrival, evidence, applied)
        if feedback.complaint is not None:
            await self._complaint(feedback.complaint, copies, arrival, evidence, applied)
        return applied

    def _match(self, recipient: str | None, copies: Sequence[SentCopy], arrival: Arrival,
               original: str = "") -> tuple[SentCopy | None, str | None]:
        """The copy a report's recipient names, and the address if it is that copy's.

        A VERP return path names its copy, but the report's own words decide whom it is
        about: a report that names another address (a forged one, or a forwarding target
        with no Original-Recipient for the copy) suppresses nobody; only a report that
        hides the address (redacted, or not an address) falls back to the copy, digest-only.
        """
        for named in (recipient, original):
            digest = self._digest(named)
            for copy in copies:
                if digest is not None and copy.suppression_digest == digest:
                    return copy, named
        if arrival.copy is not None and self._digest(recipient) is None \
                and self._digest(original) is None:
            return arrival.copy, None
        return None, None

    async def _bounce(self, bounce: Bounce, copy: SentCopy, address: str | None,
                      arrival: Arrival, evidence: str, applied: Applied) -> None:
        rule = f"{bounce.source}:{bounce.status}"
        if bounce.kind is BounceKind.HARD:
            self._count(copy, BOUNCES)
            if await self._suppress(copy, address, Reason.BOUNCE, arrival.source, rule,
                                    evidence, event="bounced",
                                    received_at=arrival.received_at):
                applied.suppressed.append(Reason.BOUNCE.value)
        elif bounce.kind is BounceKind.SOFT:
            applied.marked.append("soft")
            if await self._soft(copy, address, bounce.status, arrival, rule, evidence):
                applied.suppressed.append(Reason.BOUNCE.value)
        elif bounce.kind is BounceKind.POLICY:
            applied.marked.append("policy")
            await self._mark("policy", copy, bounce.status)
            await self._blocked(copy, bounce.status)
            log.warning("policy block of a sending mailbox", extra={
                "tenant_id": copy.tenant_id, "mailbox_id": copy.mailbox_id,
                "status": bounce.status, "queue_id": copy.queue_id})

    def _count(self, copy: SentCopy, metric: str, scopes: tuple[str, ...] = ()) -> None:
        if self._breakers is not None:
            self._breakers.feedback(copy.tenant_id, copy.mailbox_id, metric, scopes)

    async def _blocked(self, copy: SentCopy, status: str) -> None:
        """A provider's policy refusal reported by DSN: an authentication failure pauses
        the sending domain at once; any other counts towards the block rate."""
        if self._breakers is None:
            return
        if status in AUTH_FAILURES:
            mailbox = self._breakers.mailbox(copy.mailbox_id)
            if mailbox is not None:
                await self._breakers.authentication_failed(copy.tenant_id, mailbox, status)
        else:
            self._count(copy, BLOCKS)

    async def _first_complaint(self, copy: SentCopy) -> bool:
        """Whether this is the first complaint about this person to this tenant's mail (a
        `complaint` mark, written now): one complaint counts once, however often the
        report is replayed."""
        m = feedback_marks.c
        async with self._engine.begin() as conn:
            seen = (await conn.execute(sa.select(m.id).where(
                m.tenant_id == copy.tenant_id, m.kind == "complaint",
                m.recipient_digest == copy.recipient_digest).limit(1))).first()
            if seen is None:
                await self._mark("complaint", copy, "", conn)
        return seen is None

    async def _mark(self, kind: str, copy: SentCopy, status: str,
                    conn: AsyncConnection | None = None) -> None:
        row = {"tenant_id": copy.tenant_id, "mailbox_id": copy.mailbox_id, "kind": kind,
               "status": status[:12], "suppression_digest": copy.suppression_digest,
               "recipient_digest": copy.recipient_digest, "at": datetime.now(UTC)}
        if conn is not None:
            await conn.execute(feedback_marks.insert(), row)
            return
        async with self._engine.begin() as own:
            await own.execute(feedback_marks.insert(), row)

    async def _soft(self, copy: SentCopy, address: str | None, status: str, arrival: Arrival,
                    rule: str, evidence: str) -> bool:
        """Count a soft bounce; True if it was the one that made the entry."""
        cfg = self._config
        since = datetime.now(UTC) - timedelta(days=cfg.soft_bounce_days)
        m = feedback_marks.c
        async with self._engine.begin() as conn:
            await self._mark("soft", copy, status, conn)
            if copy.suppression_digest is None:
                return False
            count = (await conn.execute(sa.select(sa.func.count()).where(
                m.tenant_id == copy.tenant_id, m.kind == "soft",
                m.suppression_digest == copy.suppression_digest, m.at > since))).scalar_one()
        if count < cfg.soft_bounces:
            return False
        expires = int(time.time() + cfg.soft_bounce_hold_days * 86400)
        return await self._suppress(copy, address, Reason.BOUNCE, arrival.source,
                                    f"{rule}:soft-{count}", evidence, event="bounced",
                                    expires_at=expires, received_at=arrival.received_at)

    async def _complaint(self, complaint: Complaint, copies: Sequence[SentCopy],
                         arrival: Arrival, evidence: str, applied: Applied) -> None:
        rule = f"arf:{complaint.feedback_type or 'abuse'}"
        copy: SentCopy | None
        if arrival.source == "cfbl" and arrival.copy is not None:
            # the sealed reference names the copy; a redacted or rewritten address only
            # adds the address when it is that copy's recipient's
            copy = arrival.copy
            named = self._digest(complaint.recipient)
            address = complaint.recipient if named is not None \
                and named == copy.suppression_digest else None
            rule = f"cfbl:{complaint.feedback_type or 'abuse'}"
        elif complaint.recipient:
            copy, address = self._match(complaint.recipient, copies, arrival)
        else:  # redacted: only the copy itself can say who it was
            people = {c.suppression_digest for c in copies}
            copy, address = (copies[0], None) if len(people) == 1 else (None, None)
        if copy is None:
            applied.ignored = "recipient-not-ours"
            return
        if await self._first_complaint(copy):  # a replayed report counts once
            self._count(copy, COMPLAINTS, arrival.scopes)
        if await self._suppress(copy, address, Reason.COMPLAINT, arrival.source, rule,
                                evidence, event="complained",
                                received_at=arrival.received_at):
            applied.suppressed.append(Reason.COMPLAINT.value)
        if await self._global_complaint(copy, address, rule, evidence):
            applied.suppressed.append("global-complaint")

    async def _global_complaint(self, copy: SentCopy, address: str | None, rule: str,
                                evidence: str) -> bool:
        needed = self._config.global_complaint_tenants
        if not needed or copy.suppression_digest is None:
            return False
        s = suppression_rows.c
        async with self._engine.connect() as conn:
            scopes = (await conn.execute(sa.select(sa.func.count(sa.distinct(s.scope))).where(
                s.digest == copy.suppression_digest, s.reason == Reason.COMPLAINT.value,
                s.scope != GLOBAL))).scalar_one()
        if scopes < needed:
            return False
        return await self._suppress(copy, address, Reason.COMPLAINT, "complaints",
                                    f"{rule}:tenants-{scopes}", evidence, scope=GLOBAL)

    # --- replies -------------------------------------------------------------------------
    async def _reply(self, raw: bytes, verdict: Classification, arrival: Arrival,
                     evidence: str) -> Applied:
        msg = message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        referred = [*_ids(msg.get("in-reply-to")), *_ids(msg.get("references"))]
        copies = await self._copies(referred, arrival)
        sender = sender_of(msg)
        if not copies and not referred and arrival.copy is None:
            # a mail program that dropped In-Reply-To and References: the thread is the
            # writer and the subject, among copies sent through this mailbox
            digest = self._digest(sender)
            if digest is not None:
                copies = [c for c in await self._sent.in_thread(
                    arrival.mailbox_id, digest, str(msg.get("subject", "")))
                    if c.tenant_id == arrival.tenant_id]
        if not copies:
            return Applied(ignored="not-ours")
        copy, address = self._match(sender, copies, arrival)
        if copy is not None and address is not None and verdict.verdict is ReplyVerdict.OPT_OUT:
            made = await self._suppress(copy, address, Reason.UNSUBSCRIBE, "reply",
                                        verdict.rule, evidence, event="unsubscribed",
                                        received_at=arrival.received_at)
            return Applied(suppressed=[Reason.UNSUBSCRIBE.value] if made else [],
                           ignored="" if made else "already-suppressed")
        if copy is None:
            # written from another address: a person decides, if the thread names one person
            people = {c.suppression_digest for c in copies}
            if len(people) != 1:
                return Applied(ignored="sender-not-recipient")
            copy = copies[0]
            rule = f"{verdict.rule}:other-sender"
        else:
            rule = verdict.rule if verdict.verdict is ReplyVerdict.POSSIBLE \
                else f"{verdict.rule}:unconfirmed"
        return Applied(review_id=await self._open_review(copy, raw, rule))

    async def _open_review(self, copy: SentCopy, raw: bytes, rule: str) -> int:
        sealed, key_id = self._vault.seal(
            await self._tenant.wrap(copy.tenant_id, raw, reply_label(copy.queue_id)),
            review_context(copy.tenant_id, copy.queue_id))
        async with self._engine.begin() as conn:
            review_id = (await conn.execute(optout_reviews.insert().values(
                tenant_id=copy.tenant_id, mailbox_id=copy.mailbox_id, queue_id=copy.queue_id,
                recipient_digest=copy.recipient_digest,
                suppression_digest=copy.suppression_digest, rule=rule[:80],
                sealed_reply=sealed, key_id=key_id, status=PENDING,
                created_at=datetime.now(UTC)).returning(optout_reviews.c.id))).scalar_one()
            await audit_change(conn, "feedback:reply", "optout.review_opened", copy.tenant_id,
                               review=review_id, rule=rule, queue_id=copy.queue_id,
                               recipient_digest=copy.recipient_digest)
        log.info("possible opt-out for review", extra={
            "tenant_id": copy.tenant_id, "queue_id": copy.queue_id, "review": review_id})
        return int(review_id)

    # --- the entry -----------------------------------------------------------------------
    async def _suppress(self, copy: SentCopy, address: str | None, reason: Reason,
                        source: str, rule: str, evidence: str, *, event: str = "",
                        expires_at: int | None = None, scope: int | None = None,
                        received_at: datetime | None = None) -> bool:
        """One suppression entry with its audit row (and tenant event), in one transaction.
        Digest-only when the address is not known. False if nothing changed: the person is
        already suppressed for at least as long, or the tenant is gone."""
        return await suppress_copy(
            self._engine, self._suppressions, copy, address, reason, source,
            f"feedback:{source}", rule, evidence, event=event, expires_at=expires_at,
            scope=scope, names=self._names, receipts=self._receipts, received_at=received_at)


async def suppress_copy(engine: AsyncEngine, suppressions: Suppressions, copy: SentCopy,
                        address: str | None, reason: Reason, source: str, actor: str,
                        rule: str, evidence: str = "", *, event: str = "",
                        expires_at: int | None = None, scope: int | None = None,
                        names: EventSealer, receipts: ReceiptSigner | None = None,
                        received_at: datetime | None = None) -> bool:
    """Suppress the recipient of a sent copy (see FeedbackApplier._suppress); also used when
    a reviewer confirms a possible opt-out. `names` seals the event's recipient; `receipts`
    signs the tenant's receipt of it (channel: bounce, complaint or reply), requested at
    `received_at` (when the feedback arrived; now if not given)."""
    received = received_at or datetime.now(UTC)
    store = suppressions.store  # VaultError when the digest key is not loaded
    target_scope = copy.tenant_id if scope is None else scope
    now = int(time.time())
    target: Target | None = None
    if address is not None:
        try:
            target = Target(Kind.ADDRESS, canonical(address))
        except InvalidAddress:
            target = None
    digest = store.digester.target(target) if target is not None else copy.suppression_digest
    if digest is None:
        raise VaultError("The copy has no suppression digest (sent before the key was loaded).")
    async with engine.begin() as conn:
        status = (await conn.execute(sa.select(tenants.c.status).where(
            tenants.c.id == copy.tenant_id))).scalar()
        if status in (None, "deleted"):
            return False
        before = (await conn.execute(sa.select(suppression_rows).where(
            suppression_rows.c.scope == target_scope,
            suppression_rows.c.digest == digest))).first()
        if before is not None and (before.expires_at is None or (
                expires_at is not None and before.expires_at >= expires_at)):
            if STRENGTH[Reason(before.reason)] >= STRENGTH[reason]:
                return False
        note = f"{rule} for queue {copy.queue_id}"[:500]
        if target is not None:
            await store.add(conn, [NewEntry(target_scope, target, reason, source, now,
                                            expires_at, note, actor)], now)
        else:
            await store.add_rows(conn, [(target_scope, digest, Kind.ADDRESS.value, None,
                                         reason.value, source, now, expires_at, note, actor,
                                         now)])
        entry = (await conn.execute(sa.select(suppression_rows.c.id).where(
            suppression_rows.c.scope == target_scope,
            suppression_rows.c.digest == digest))).scalar_one()
        head = await audit_change(
            conn, actor, "optout.automatic", target_scope or None, entry=entry,
            digest=digest.hex(), entry_reason=reason.value, source=source, rule=rule,
            queue_id=copy.queue_id, mailbox_id=copy.mailbox_id,
            recipient_digest=copy.recipient_digest, feedback=evidence,
            digest_only=target is None, expires_at=expires_at)
        pending: list[int] = []
        if receipts is not None and scope is None:
            channel = reason.value if reason in (Reason.BOUNCE, Reason.COMPLAINT) else source
            pending.append(await receipts.pend(conn, copy.tenant_id, copy.recipient_digest,
                                               channel, received, head, expires_at))
        if event and scope is None:
            rows = [audit.event(event, tenant_id=copy.tenant_id, queue_id=copy.queue_id,
                                recipient=address, source=source, rule=rule,
                                mailbox_id=copy.mailbox_id)]
            await names.seal(rows, conn)
            await audit.write(conn, (), rows)
    if receipts is not None and pending:  # signed once enforced (optout/receipts.py)
        await receipts.complete(engine, pending)
    metrics.OPT_OUTS.labels(source).inc()
    log.info("automatic suppression", extra={
        "tenant_id": copy.tenant_id, "scope": target_scope, "reason": reason.value,
        "source": source, "rule": rule, "queue_id": copy.queue_id})
    return True


def _evidence(raw: bytes) -> str:
    """The feedback message's own Message-ID, hashed: evidence without its content."""
    headers = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    for line in headers.splitlines():
        if line[:11].lower() == b"message-id:":
            value = line[11:].strip().decode("ascii", "replace")
            if value:
                return message_id_hash(value)
    return ""


def _ids(value: object) -> list[str]:
    if value is None:
        return []
    return [f"<{part.strip('<>')}>" for part in str(value).split() if "@" in part]


def sender_of(msg: EmailMessage) -> str | None:
    """The one From address, or None (none, several, or unparsable)."""
    try:
        found = [a for _, a in getaddresses([str(msg.get("from", ""))]) if "@" in a]
    except (ValueError, TypeError, IndexError):
        return None
    return found[0] if len(found) == 1 else None

