"""Accept-and-report: what happens to recipients a tenant's `suppressed_recipients =
accept-and-report` let through RCPT with 250 (as SES, Mailgun and SendGrid do, for tools
that stop a whole run on one 550).

Such a recipient is never relayed. Once the message is accepted (the client's 250 at DATA),
this writes, before that 250 is sent: one delivery report (RFC 3464, `Action: failed`,
`Status: 5.7.1`) to the envelope sender listing them all, queued like any other report;
a `copy.suppressed` audit row each, which `gateway trace` shows; and a `suppressed` event
each, which names the recipient as every event does (sealed; an erased person by digest
only, in the report too). RFC 5321 s 6.1: mail accepted and then not delivered is reported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from gateway.audit import trail as audit
from gateway.audit.trail import AuditTrail
from gateway.config import Config
from gateway.delivery import dsn
from gateway.delivery.queue import CopyKind, NewCopy, QueueStore, State
from gateway.observability import metrics
from gateway.smtp.session import Suppressed

# The checks whose refusal accept-and-report turns into a report (never syntax, identity,
# breakers or limits): a suppression, and no lawful basis (lawful/decider.py)
REPORTABLE = frozenset({"recipient-suppressed", "lawful-basis"})
MODE_SETTING = "suppressed_recipients"
ACCEPT_AND_REPORT = "accept-and-report"

REASON = ("The recipients below are on a suppression list (they unsubscribed, complained, "
          "bounced, or asked not to be contacted), or the sender has no lawful basis to mail "
          "them (each one's status line says which). The message was accepted for them and "
          "not sent.")


class SuppressedReports:
    def __init__(self, config: Config, queue: QueueStore, audit_trail: AuditTrail) -> None:
        self._config = config
        self._queue = queue
        self._audit = audit_trail

    async def report(self, *, queue_id: str, tenant_id: int, mailbox_id: int, sender: str,
                     actor: str, suppressed: Sequence[Suppressed], message: bytes,
                     message_id: str | None, digest: Callable[[str], str]) -> None:
        """Queue the report and write the rows and events, durably, before the 250.
        `digest`: the audit trail's keyed digest of a recipient."""
        digests = {s.recipient: digest(s.recipient) for s in suppressed}
        # every one is reported: the gateway offers no DSN extension (RFC 3461), so no
        # client can have asked for NOTIFY=NEVER; MAIL FROM is always a tenant's mailbox
        if sender:
            report = dsn.build(
                reporting_mta=self._config.smtp.hostname, queue_id=queue_id, sender=sender,
                arrival=datetime.now(UTC),
                recipients=[dsn.RecipientStatus(
                    dsn.erased_recipient(digests[s.recipient]) if s.erased else s.recipient,
                    "failed", s.reply.status, str(s.reply)) for s in suppressed],
                original=message, headers_only=self._config.queue.dsn_headers_only,
                reason=REASON)
            await self._queue.add([NewCopy(
                queue_id, tenant_id, mailbox_id, "", sender, State.DEFERRED, 0, "2.0.0",
                "report queued", kind=CopyKind.DSN, message_id=message_id)], report)
        rows = [audit.row("copy.suppressed", actor=actor, tenant_id=tenant_id,
                          queue_id=queue_id, recipient_digest=digests[s.recipient],
                          check_name=s.check, action="report", reply=str(s.reply),
                          message_id=message_id, reported=bool(sender))
                for s in suppressed]
        if sender:
            rows.append(audit.row("dsn.queued", actor="smtp", tenant_id=tenant_id,
                                  queue_id=queue_id,
                                  recipients=list(digests.values())))
        events = [audit.event("suppressed", tenant_id=tenant_id, queue_id=queue_id,
                              recipient=s.recipient, erased=s.erased, check=s.check,
                              reply=str(s.reply), message_id=message_id)
                  for s in suppressed]
        await self._audit.record(rows, events)
        for s in suppressed:
            metrics.MESSAGES.labels("recipient-suppressed", s.check).inc()
