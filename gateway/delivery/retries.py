"""Delivers what the queue holds: retries deferred copies, reports refused ones.

Every copy ends delivered or reported: a refusal, an expiry or an operator's delete queues a
DSN to the envelope sender. A DSN is sent with a null sender and is never reported in turn.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway import background
from gateway.audit import trail as audit
from gateway.audit.trail import AuditTrail
from gateway.config import Config
from gateway.delivery import dsn
from gateway.delivery.queue import CopyKind, Finish, NewCopy, QueuedCopy, QueueStore, State
from gateway.delivery.upstream.base import Copy, CopyOutcome, Upstream
from gateway.directory.address import domain_of
from gateway.directory.cache import DirectoryCache
from gateway.directory.providers import provider_class
from gateway.directory.store import DirectoryStore
from gateway.errors import Conflict, VaultError
from gateway.feedback.bounces import HardBounces
from gateway.limits.breakers import Breakers
from gateway.limits.breakers import Outcome as BreakerOutcome
from gateway.observability import log_context
from gateway.optout.receipts import iso
from gateway.optout.suppressions import Suppressions, refusal
from gateway.protocol import replies

log = logging.getLogger("gateway.queue")

# Provider replies that mean "this mailbox sent too much", not "this recipient is bad":
# Gmail's daily limit (5.4.5), Microsoft's submission quota and throttling.
_QUOTA = re.compile(r"quota|daily.{0,30}limit|sending limit|throttl|rate limit", re.I)


def is_quota(status: str, text: str) -> bool:
    return status == "5.4.5" or bool(_QUOTA.search(text))


@dataclass(slots=True)
class _Attempt:
    """What one attempt decided; written with the rest of its round."""

    copy: QueuedCopy
    message: bytes
    update: Finish
    rows: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    bounce: bool = False


class QueueWorker:
    def __init__(self, config: Config, store: QueueStore, upstreams: Mapping[str, Upstream],
                 directory: DirectoryCache, directory_store: DirectoryStore,
                 audit_trail: AuditTrail, digest: Callable[[str], str],
                 suppressions: Suppressions, breakers: Breakers | None = None) -> None:
        self._config = config
        self._breakers = breakers  # a queued copy's end counts as a relayed one's
        self._suppressions = suppressions
        self._bounces = HardBounces(suppressions)
        self._store = store
        self._upstreams = upstreams
        self._directory = directory
        self._directory_store = directory_store
        self._audit = audit_trail
        self._digest = digest
        self._caps: dict[int, asyncio.Semaphore] = {}
        self._poller = background.Poller(self.run_once, full=config.queue.batch,
                                         interval=config.queue.poll_interval, log=log,
                                         name="delivery-queue")

    async def start(self) -> None:
        self._poller.start()

    async def stop(self) -> None:
        """Finish the round in progress, then stop."""
        await self._poller.stop()

    async def run_once(self, now: datetime | None = None) -> int:
        """Claim what is due and handle it; returns how many copies were handled.

        Copies of one round are attempted concurrently (within each mailbox's cap), and
        their outcomes are written together: one transaction per round, not per copy.
        """
        queue = self._config.queue
        claimed = await self._store.claim(queue.batch, queue.lease, now)
        if not claimed:
            return 0
        now = now or datetime.now(UTC)
        refused = [(c, m) for c, m in claimed
                   if c.kind is CopyKind.COPY and c.state is State.REFUSED]
        others = [(c, m) for c, m in claimed if not (c.kind is CopyKind.COPY
                                                     and c.state is State.REFUSED)]
        await self._report([(c, m, None) for c, m in refused], State.BOUNCED)
        outcomes = await asyncio.gather(*(self._attempt(c, m, now) for c, m in others))
        finished = [o for o in outcomes if o is not None]
        if finished:
            # a refused copy stays claimed here: it is closed with its report, together
            await self._store.finish_many([o.update for o in finished if not o.bounce])
            await self._audit.record([r for o in finished for r in o.rows],
                                     [e for o in finished for e in o.events])
        bounced = [(o.copy, o.message, o.update) for o in finished if o.bounce]
        if bounced:
            await self._report(bounced, State.BOUNCED)
        return len(claimed)

    # --- one attempt -----------------------------------------------------------------------
    async def _attempt(self, copy: QueuedCopy, message: bytes, now: datetime
                       ) -> _Attempt | None:
        log_context.bind(queue_id=copy.queue_id, copy_id=str(copy.id))  # this task only
        if copy.expires_at is not None and now >= copy.expires_at:
            await self._expire(copy, message)
            return None
        mailbox = self._directory.mailbox_by_id(copy.mailbox_id)
        upstream = self._upstreams.get(mailbox.upstream) if mailbox else None
        if mailbox is None or upstream is None:
            return self._deferral(copy, message, replies.TEMPORARY_FAILURE, now, attempted=False)
        if not mailbox.active:  # paused by an operator or by a provider quota: wait
            return self._deferral(copy, message, replies.MAILBOX_PAUSED, now, attempted=False)
        checked = datetime.now(UTC)  # the last look starts (the copy's delivered row says)
        if copy.kind is CopyKind.COPY:  # an opt-out that arrived since it was queued still wins
            refusal = await self._suppressed(copy)
            if refusal is not None:
                if refusal.code >= 500:
                    return self._refusal(copy, message, refusal, now, attempted=False)
                return self._deferral(copy, message, refusal, now, attempted=False)
        cap = self._caps.setdefault(mailbox.id,
                                    asyncio.Semaphore(self._config.queue.mailbox_concurrency))
        async with cap:
            result = await upstream.deliver(
                Copy(copy.envelope_from, copy.recipient, copy.smtputf8, not message.isascii(),
                     mailbox.id, mailbox.tenant_id,
                     copy.queue_id if copy.kind is CopyKind.COPY else ""),
                message)
        reply = result.reply
        attempt_row = audit.row(
            f"{copy.kind.value}.attempt", actor="queue", tenant_id=copy.tenant_id,
            queue_id=copy.queue_id, recipient_digest=self._digest(copy.recipient),
            attempt=copy.attempts + 1, reply=str(reply))
        if copy.kind is CopyKind.COPY and result.outcome is not CopyOutcome.DEFERRED \
                and self._breakers is not None:
            await self._breakers.answered(mailbox.tenant_id, mailbox, [BreakerOutcome(
                domain_of(copy.recipient), result.outcome is CopyOutcome.DELIVERED,
                reply.status)])
        if result.outcome is CopyOutcome.DELIVERED:
            outcome = self._outcome(copy, message, State.DELIVERED, "delivered", reply,
                                    checked=checked if copy.kind is CopyKind.COPY else None)
        elif is_quota(reply.status, reply.text) and copy.kind is CopyKind.COPY:
            await self._quota(copy, mailbox.address)
            later = now + timedelta(seconds=self._config.queue.quota_pause)
            outcome = self._outcome(copy, message, State.DEFERRED, "deferred", reply,
                                    next_attempt_at=later)
        elif result.outcome is CopyOutcome.DEFERRED:
            outcome = self._deferral(copy, message, reply, now)
        elif copy.kind is CopyKind.DSN:
            outcome = self._outcome(copy, message, State.FAILED, "failed", reply)
        else:  # refused: closed as bounced once its report is queued (after the commit)
            await self._bounces.upstream_refused(copy.tenant_id, copy.recipient,
                                                 reply.status, copy.queue_id)
            outcome = self._refusal(copy, message, reply, now)
        outcome.rows.insert(0, attempt_row)
        return outcome

    async def _suppressed(self, copy: QueuedCopy) -> replies.Reply | None:
        try:
            match = await self._suppressions.check(copy.tenant_id, copy.recipient)
        except VaultError:
            return replies.VAULT_UNAVAILABLE
        return refusal(match) if match is not None else None

    def _refusal(self, copy: QueuedCopy, message: bytes, reply: replies.Reply,
                 now: datetime, attempted: bool = True) -> _Attempt:
        """Refused: closed as bounced once its report is queued (after the commit)."""
        outcome = self._outcome(copy, message, State.REFUSED, "", reply, next_attempt_at=now,
                                attempted=attempted)
        outcome.bounce = True
        return outcome

    def _outcome(self, copy: QueuedCopy, message: bytes, state: State, event: str,
                 reply: replies.Reply, *, next_attempt_at: datetime | None = None,
                 attempted: bool = True, checked: datetime | None = None) -> _Attempt:
        update = Finish(copy.id, state, (reply.code, reply.status, reply.text),
                        next_attempt_at, attempted)
        outcome = _Attempt(copy, message, update)
        if event:
            rows, events = self._event_rows(copy, event, reply, checked)
            outcome.rows.extend(rows)
            outcome.events.extend(events)
        return outcome

    def _deferral(self, copy: QueuedCopy, message: bytes, reply: replies.Reply, now: datetime,
                  attempted: bool = True) -> _Attempt:
        attempts = copy.attempts + (1 if attempted else 0)
        next_at = now + self._delay(max(attempts - 1, 0))
        return self._outcome(copy, message, State.DEFERRED, "deferred" if attempted else "",
                             reply, next_attempt_at=next_at, attempted=attempted)

    def _delay(self, attempts: int) -> timedelta:
        queue = self._config.queue
        seconds = min(queue.retry_first * queue.retry_factor ** attempts, queue.retry_max)
        return timedelta(seconds=seconds)

    async def _quota(self, copy: QueuedCopy, address: str) -> None:
        """The mailbox is over its provider's quota: pause it; its copies wait."""
        mailbox = self._directory.mailbox_by_id(copy.mailbox_id)
        if mailbox is not None and mailbox.active:
            reason = "upstream quota reached; resume after the provider's window"
            await self._directory_store.set_mailbox_status(address, "paused", reason, "queue")
            await self._directory.refresh()
            log.warning("mailbox paused by upstream quota", extra={
                "mailbox_id": copy.mailbox_id, "queue_id": copy.queue_id})

    async def _expire(self, copy: QueuedCopy, message: bytes) -> None:
        if copy.kind is CopyKind.DSN:
            await self._store.finish(copy.id, State.FAILED, attempted=False)
            await self._event(copy, "failed", None)
            return
        await self._report([(copy, message, None)], State.EXPIRED,
                           reason="It was retried until its lifetime in the queue ran out.")

    # --- reports ---------------------------------------------------------------------------
    async def _report(self, copies: Sequence[tuple[QueuedCopy, bytes, Finish | None]],
                      final: State, reason: str = "") -> None:
        """One DSN per original message for these failed copies (a batch, as Postfix
        sends one per batch of failures), queued in the same transaction that closes them.
        A copy's `Finish` carries the reply of the attempt that just failed."""
        by_message: dict[str, list[tuple[QueuedCopy, bytes, bool]]] = {}
        for copy, message, update in copies:
            attempted = False
            if update is not None and update.reply is not None:  # the refusal just made
                code, status, text = update.reply
                copy = dataclasses.replace(copy, reply_code=code, reply_status=status,
                                           reply_text=text[:500])
                attempted = update.attempted
            by_message.setdefault(copy.queue_id, []).append((copy, message, attempted))
        for group in by_message.values():
            failed = [c for c, _, _ in group]
            closing = [Finish(c.id, final, (c.reply_code, c.reply_status, c.reply_text),
                              attempted=attempted) for c, _, attempted in group]
            await self.queue_dsn(failed[0], group[0][1], failed, reason, closing)
            for copy in failed:
                await self._event(copy, final.value, None)

    async def queue_dsn(self, first: QueuedCopy, message: bytes,
                        failed: Sequence[QueuedCopy], reason: str = "",
                        closing: Sequence[Finish] = ()) -> None:
        """Queue the report on `failed` (copies of one message) and close them with it."""
        if not first.envelope_from:  # never report on a report (RFC 3464 s 2)
            await self._store.finish_many(closing)
            return
        report = dsn.build(
            reporting_mta=self._config.smtp.hostname, queue_id=first.queue_id,
            sender=first.envelope_from, arrival=first.created_at,
            recipients=[dsn.RecipientStatus(c.recipient, "failed", c.reply_status,
                                            c.reply) for c in failed],
            original=message, headers_only=self._config.queue.dsn_headers_only, reason=reason,
        )
        await self._store.report(NewCopy(
            first.queue_id, first.tenant_id, first.mailbox_id, "", first.envelope_from,
            State.DEFERRED, 0, "2.0.0", "report queued", kind=CopyKind.DSN,
            message_id=first.message_id), report, closing)
        await self._audit.record([audit.row(
            "dsn.queued", actor="queue", tenant_id=first.tenant_id, queue_id=first.queue_id,
            recipients=[self._digest(c.recipient) for c in failed])])

    async def delete(self, copy_id: int, reason: str, actor: str = "cli") -> None:
        """An operator removes a copy; nothing leaves the queue without a report."""
        copy = await self._store.get(copy_id)
        if copy.state not in (State.DEFERRED, State.REFUSED):
            raise Conflict(f"Queued copy {copy_id} is {copy.state.value}; only waiting copies "
                           "can be deleted.")
        claimed = await self._store.claim_one(copy_id, self._config.queue.lease)
        if claimed is None:
            raise Conflict(f"Queued copy {copy_id} is being delivered right now; try again.")
        copy, message = claimed
        await self._audit.record([audit.row(
            "copy.deleted", actor=actor, tenant_id=copy.tenant_id, queue_id=copy.queue_id,
            recipient_digest=self._digest(copy.recipient), reason=reason)])
        if copy.kind is CopyKind.DSN:
            await self._store.finish(copy.id, State.DELETED, attempted=False)
            return
        await self._report([(copy, message, None)], State.DELETED,
                           reason=f"An operator removed it from the queue: {reason}")

    def _event_rows(self, copy: QueuedCopy, outcome: str, reply: replies.Reply | None,
                    checked: datetime | None = None
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        text = str(reply) if reply else None
        tenant_events = [] if copy.kind is CopyKind.DSN else [audit.event(
            outcome, tenant_id=copy.tenant_id, queue_id=copy.queue_id,
            recipient=copy.recipient, reply=text or copy.reply, attempts=copy.attempts + 1,
            message_id=copy.message_id)]
        rows = [audit.row(
            f"{copy.kind.value}.{outcome}", actor="queue", tenant_id=copy.tenant_id,
            queue_id=copy.queue_id, recipient_digest=self._digest(copy.recipient),
            # a copy closed by its last refusal keeps that answer: the evidence pack
            # counts hard bounces and blocks from it
            reply=text or (copy.reply if copy.reply_code else None),
            **({"provider": provider_class(copy.recipient)}
               if copy.kind is CopyKind.COPY else {}),
            **({"checked": iso(checked)} if checked is not None else {}))]
        return rows, tenant_events

    async def _event(self, copy: QueuedCopy, outcome: str, reply: replies.Reply | None) -> None:
        rows, tenant_events = self._event_rows(copy, outcome, reply)
        await self._audit.record(rows, tenant_events)
        log.info(f"queued {copy.kind.value} {outcome}", extra={
            "queue_id": copy.queue_id, "tenant_id": copy.tenant_id, "copy_id": copy.id})
