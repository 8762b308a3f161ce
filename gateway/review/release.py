"""Carrying out reviewers' decisions inside the running gateway.

A release becomes each recipient's compliant copy (unsubscribe headers, footer, pixels,
DKIM: the same Composer as at DATA time) in the delivery queue, due at once; the queue
checks suppression again before sending. A discard's delivery report is built here too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from gateway.audit import trail as audit
from gateway.audit.trail import AuditTrail
from gateway.config import Config
from gateway.directory.cache import Directory
from gateway.errors import VaultError
from gateway.optout.sent import sent_rows, subject_hash
from gateway.outbound.compose import Composer
from gateway.policy.message import Message
from gateway.queue import dsn
from gateway.queue.store import Kind, NewCopy, QueueStore, State
from gateway.review.held import HeldMessage, HeldStore

log = logging.getLogger("gateway.review")


def discard_report(held: HeldMessage, message: bytes | None, config: Config,
                   why: str = "discarded after review") -> bytes:
    """The report a discarded (or expired) message's sender gets: which recipients, the
    category of the reason (the check), never the body."""
    return dsn.build(
        reporting_mta=config.smtp.hostname, queue_id=held.queue_id, sender=held.envelope_from,
        arrival=held.created_at,
        recipients=[dsn.RecipientStatus(r, "failed", "5.7.1",
                                        f"550 5.7.1 Held for review ({held.check_name}) "
                                        "and not released") for r in held.recipients],
        original=message, headers_only=True, reason=why)


async def queue_discard_report(queue: QueueStore, held: HeldMessage, message: bytes | None,
                               config: Config, why: str = "discarded after review") -> None:
    if not held.envelope_from:
        return
    await queue.add([NewCopy(held.queue_id, held.tenant_id, held.mailbox_id, "",
                             held.envelope_from, State.DEFERRED, 0, "2.0.0", "report queued",
                             kind=Kind.DSN)], discard_report(held, message, config, why))


class ReviewWorker:
    def __init__(self, held: HeldStore, directory: Directory, composer: Composer,
                 queue: QueueStore, audit_trail: AuditTrail, config: Config,
                 audit_digest: Callable[[str], str],
                 suppression_digest: Callable[[str], bytes | None]) -> None:
        self._audit_digest = audit_digest  # a released copy goes in the sent index too
        self._suppression_digest = suppression_digest
        self._config = config
        self._held = held
        self._directory = directory
        self._composer = composer
        self._queue = queue
        self._audit = audit_trail

    async def run_once(self, now: datetime | None = None) -> int:
        """Releases asked for, then expiries of undecided messages (reported)."""
        done = await self._release()
        now = now or datetime.now(UTC)
        review = self._config.review
        for held, raw in await self._held.expire(now - timedelta(days=review.held_days)):
            try:
                await queue_discard_report(self._queue, held, raw, self._config,
                                           "expired without review")
            except VaultError:  # its tenant was deleted: no one is owed a report any more
                log.info("expired held message not reported: its tenant is gone",
                         extra={"queue_id": held.queue_id, "tenant_id": held.tenant_id})
            done += 1
        return done  # purging old copies is the retention round's (lifecycle/retention.py)

    async def _release(self) -> int:
        taken = await self._held.take_release_requests()
        for held, raw in taken:
            tenant = self._directory.tenant(held.tenant_id)
            mailbox = self._directory.mailbox_by_id(held.mailbox_id)
            if tenant is None or mailbox is None:
                log.error("released message has no tenant or mailbox any more",
                          extra={"queue_id": held.queue_id})
                await self._held.note(held.id, "review", "release failed: the tenant or "
                                      "mailbox no longer exists")
                continue
            message = Message(raw)
            message_id = message.value("message-id")
            prepared = self._composer.prepare(message, tenant, mailbox, held.queue_id)
            copies = [prepared.copy(r) for r in held.recipients]
            now = datetime.now(UTC)
            await self._queue.add([
                NewCopy(held.queue_id, held.tenant_id, held.mailbox_id, held.envelope_from, r,
                        State.DEFERRED, 250, "2.0.0", "released after review", held.smtputf8)
                for r in held.recipients], copies, first_attempt=now)
            await self._audit.record([audit.row(
                "held.released", actor="review", tenant_id=held.tenant_id,
                queue_id=held.queue_id, recipients=len(held.recipients))], (), sent_rows(
                message_id, held.tenant_id, held.mailbox_id, held.queue_id,
                [(r, self._audit_digest(r)) for r in held.recipients], now,
                self._suppression_digest,
                subject_hash(message.value("subject"), self._audit_digest)))
        return len(taken)

