"""The hand-off: the one place a message goes decide → keep → fix → deliver → record.

The SMTP side (`smtp/handler.py`) takes a message in whole, checks what only the wire can
tell (line endings, size) and hands it here as `Submitted`; a reviewer's release comes here
from `releases.py`. Each step is a room of its own: the checks (`policy/`), the review queue
(`review/held.py`), each recipient's copy (`outbound/compose.py`), the upstream or the queue
(`delivery/`), the audit trail and the sent index (`audit/`, `feedback/sent.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from gateway.audit import trail as audit
from gateway.audit.trail import AuditTrail
from gateway.config import Config
from gateway.delivery.queue import NewCopy, QueueStore, State
from gateway.delivery.relay import Relay, RelayResult
from gateway.delivery.upstream.base import CopyOutcome
from gateway.directory.address import domain_of
from gateway.directory.providers import provider_class
from gateway.directory.records import Mailbox, Principal, Tenant
from gateway.feedback.bounces import HardBounces
from gateway.feedback.sent import sent_rows, subject_hash
from gateway.lawful import stated
from gateway.lawful.decider import DEFAULT_SETTING, OVERRIDES_SETTING, Decided, LawfulBasis
from gateway.lawful.notices import missing as missing_notice
from gateway.limits.breakers import Breakers
from gateway.limits.breakers import Outcome as BreakerOutcome
from gateway.limits.sending import SendingLimits
from gateway.observability import log_context, metrics
from gateway.optout.receipts import iso
from gateway.optout.suppressions import Suppressions, refusal
from gateway.outbound.compose import Composer
from gateway.policy.check import Stage, Transaction
from gateway.policy.lawful_basis import LawfulBasisCheck
from gateway.policy.message import Message
from gateway.policy.pipeline import Outcome, Pipeline
from gateway.policy.recipient_suppressed import RecipientSuppressed
from gateway.policy.verdict import Action
from gateway.protocol import replies
from gateway.protocol.replies import Reply
from gateway.review.held import HELD, REFUSED, HeldMessage, HeldStore
from suppression.entries import Match, Reason

SUPPRESSED_CHECK = RecipientSuppressed.name  # the check whose answer a late opt-out gives
LAWFUL_CHECK = LawfulBasisCheck.name  # ... and a recipient without a basis at send time

log = logging.getLogger("gateway.smtp")  # the name its lines have always had


@dataclass(frozen=True, slots=True)
class Submitted:
    """A message taken in whole at DATA: who sent it, to whom, its bytes."""

    queue_id: str
    principal: Principal
    tenant: Tenant
    mailbox: Mailbox
    sender: str  # the validated bare form of MAIL FROM
    recipients: Sequence[str]  # the validated bare forms, suppressed ones left out
    raw: bytes
    smtputf8: bool
    eightbit_declared: bool
    received: Callable[[], str]  # this hop's Received field (the session knows TLS, HELO)

    @property
    def actor(self) -> str:
        return f"login:{self.principal.username}"


@dataclass(frozen=True, slots=True)
class HandedOff:
    reply: Reply
    message_id: str | None = None  # of the relayed copies (None: nothing was relayed)
    # recipients whose opt-out landed after RCPT: not sent; the caller reports them as
    # accept-and-report does, once the reply is a 2xx
    late_suppressed: tuple[tuple[str, Match], ...] = ()
    # recipients the lawful-basis table no longer allowed at send time (a new version, a
    # consent withdrawn since RCPT): not sent, reported the same way
    late_refused: tuple[tuple[str, Reply], ...] = ()


class Handoff:
    def __init__(self, config: Config, pipeline: Pipeline, composer: Composer, relay: Relay,
                 queue: QueueStore, audit_trail: AuditTrail, digest: Callable[[str], str],
                 suppression_digest: Callable[[str], bytes | None] = lambda r: None,
                 held: HeldStore | None = None, limits: SendingLimits | None = None,
                 bounces: HardBounces | None = None,
                 suppressions: Suppressions | None = None,
                 breakers: Breakers | None = None, lawful: LawfulBasis | None = None,
                 setting: Callable[[int, str], Any] | None = None) -> None:
        self.config = config
        self._pipeline = pipeline
        self._composer = composer
        self._relay = relay
        self._queue = queue
        self._audit = audit_trail
        self._digest = digest  # the audit trail's keyed digest of an address
        self._suppression_digest = suppression_digest
        self._held = held
        self._limits = limits
        self._bounces = bounces
        self._suppressions = suppressions  # the last look before a copy goes upstream
        self._breakers = breakers  # counts what upstream answered (limits/breakers.py)
        self._lawful = lawful  # the lawful-basis decision at send time (lawful/decider.py)
        self._setting = setting  # a tenant's effective setting

    def reconfigure(self, config: Config, pipeline: Pipeline) -> None:
        self.config = config
        self._pipeline = pipeline

    # --- a message at DATA -------------------------------------------------------------------
    async def submit(self, sub: Submitted) -> HandedOff:
        """Decide; keep what is held or refused; or fix each copy, deliver and record."""
        message = Message(sub.raw)
        tx = Transaction(sub.principal, sub.tenant, sub.sender, mailbox=sub.mailbox,
                         recipients=tuple(sub.recipients), message=message,
                         smtputf8=sub.smtputf8)
        outcome = await self._pipeline.run(Stage.DATA, tx)
        verdicts = [[v.check, v.action.value, v.reason] for v in outcome.verdicts]
        if outcome.action is Action.REJECT or outcome.action is Action.HOLD:
            return HandedOff(await self._hold_or_refuse(sub, message, outcome, verdicts))
        checked = datetime.now(UTC)  # the last look starts: any opt-out effective by now wins
        late = await self._suppressed_since_rcpt(sub)
        if late:
            if len(late) == len(sub.recipients):  # nobody left to send to: refused whole
                return HandedOff(await self._refuse_late(sub, late))
            sub = replace(sub, recipients=[r for r in sub.recipients if r not in late])
        decided = await self._lawful_at_send_time(sub.tenant.id, sub.recipients, message)
        refused = {r: reply for r, d in decided.items() if (reply := d.refusal()) is not None}
        if refused:
            if len(refused) == len(sub.recipients):  # nobody left with a basis
                return HandedOff(await self._refuse_unlawful(
                    sub, decided, next(iter(refused.values()))))
            sub = replace(sub, recipients=[r for r in sub.recipients if r not in refused])
        owed = await self._lawful.notice_owed(sub.tenant.id, decided) \
            if decided and self._lawful is not None else set()
        if owed and missing_notice(sub.tenant.settings):  # an operator's (or tenant's) fix
            return HandedOff(await self._defer(sub, replies.NOTICE_NOT_CONFIGURED,
                                               "notice settings missing"))
        handed = await self._deliver(sub, message, outcome, verdicts,
                                     checked if self._suppressions is not None else None,
                                     decided, owed)
        return replace(handed, late_suppressed=tuple(late.items()),
                       late_refused=(*refused.items(), *handed.late_refused))

    async def _lawful_at_send_time(self, tenant_id: int, recipients: Sequence[str],
                                   message: Message) -> dict[str, Decided]:
        """For a tenant that enforces the table, each recipient decided again right before
        relaying, under the version in force now, with what the message states of its
        recipients (the recipient-statement check has read it); empty for the others."""
        if self._lawful is None or self._setting is None \
                or not self._lawful.enforced(self._setting, tenant_id):
            return {}
        fields = message.values(stated.FIELD)
        return await self._lawful.decide_many(
            tenant_id, recipients, self._setting(tenant_id, DEFAULT_SETTING),
            stated=stated.parse(fields) if fields else None,
            overrides=self._setting(tenant_id, OVERRIDES_SETTING))

    async def _refuse_unlawful(self, sub: Submitted, decided: dict[str, Decided],
                               reply: Reply) -> Reply:
        metrics.MESSAGES.labels("refused", LAWFUL_CHECK).inc()
        await self._audit.record([audit.row(
            "message.refused", actor=sub.actor, tenant_id=sub.tenant.id,
            queue_id=sub.queue_id, action="reject", check_name=LAWFUL_CHECK,
            reason="no lawful basis at send time", reply=str(reply),
            recipients=[self._digest(r) for r in sub.recipients],
            lawful=[decided[r].detail() for r in sub.recipients])])
        log_context.bind(check=LAWFUL_CHECK)
        return reply

    async def _suppressed_since_rcpt(self, sub: Submitted) -> dict[str, Match]:
        """The recipients an opt-out reached while the message was coming in (one lookup
        for them all): by construction, nothing is sent after an opt-out."""
        if self._suppressions is None:
            return {}
        found = await self._suppressions.check_many(sub.tenant.id, sub.recipients)
        return {r: m for r, m in zip(sub.recipients, found, strict=True) if m is not None}

    async def _refuse_late(self, sub: Submitted, late: dict[str, Match]) -> Reply:
        reply = refusal(next(iter(late.values())))
        metrics.MESSAGES.labels("refused", SUPPRESSED_CHECK).inc()
        await self._audit.record([audit.row(
            "message.refused", actor=sub.actor, tenant_id=sub.tenant.id,
            queue_id=sub.queue_id, action="reject", check_name=SUPPRESSED_CHECK,
            reason="suppressed after RCPT", reply=str(reply),
            recipients=[self._digest(r) for r in sub.recipients])],
            [audit.event("refused", tenant_id=sub.tenant.id, queue_id=sub.queue_id,
                         recipient=r, erased=m.reason is Reason.ERASURE,
                         check=SUPPRESSED_CHECK, reply=str(reply))
             for r, m in late.items()])
        log_context.bind(check=SUPPRESSED_CHECK)  # for the refusal line
        return reply

    async def _deliver(self, sub: Submitted, message: Message, outcome: Outcome,
                       verdicts: list[list[str]], checked: datetime | None,
                       decided: dict[str, Decided], owed: set[str]) -> HandedOff:
        """Count against the sending limits, fix each copy, relay and record."""
        if self._limits is not None:
            refused = await self._limits.count(sub.tenant, sub.mailbox, len(sub.recipients))
            if refused is not None:  # the client keeps the message and tries again later
                return HandedOff(await self._defer(sub, refused, "sending limit",
                                                   "sending-limit"))
        # the submission-headers check gave it one if it had none (RFC 5322 s 3.6.4)
        message_id = message.value("message-id") or ""
        message.prepend("Received", sub.received())
        prepared = self._composer.prepare(message, sub.tenant, sub.mailbox, sub.queue_id)
        told = self._composer.prepare(message, sub.tenant, sub.mailbox, sub.queue_id,
                                      with_notice=True) if owed else prepared
        unplaced: dict[str, Reply] = {}
        if owed and not told.notice_carried:  # signed, encrypted, or no text to put it in
            unplaced = {r: replies.NOTICE_UNPLACEABLE for r in owed}
            if len(unplaced) == len(sub.recipients):
                return HandedOff(await self._refuse_unlawful(
                    sub, decided, replies.NOTICE_UNPLACEABLE))
            sub = replace(sub, recipients=[r for r in sub.recipients if r not in owed])
            owed = set()
        copies = [(told if r in owed else prepared).copy(r) for r in sub.recipients]
        result = await self._relay.deliver(
            sub.queue_id, sub.mailbox, sub.sender, list(sub.recipients), copies,
            smtputf8=sub.smtputf8,
            eightbit=sub.eightbit_declared or not all(c.isascii() for c in copies),
            message_id=message_id,
        )
        await self._record_relayed(sub, message, message_id, outcome, verdicts, result,
                                   prepared.signed, prepared.footer_parts,
                                   prepared.pixels_taken, checked, decided, owed)
        if owed and self._lawful is not None:  # told: their next message goes without it
            kept = result.kept > 0
            await self._lawful.told(sub.tenant.id, {
                r.recipient: decided[r.recipient] for r in result.copies
                if r.recipient in owed and (r.outcome is CopyOutcome.DELIVERED or (
                    kept and r.outcome is CopyOutcome.DEFERRED))}, sub.queue_id)
        await self._count_for_breakers(sub, message, result)
        return HandedOff(result.reply, message_id, late_refused=tuple(unplaced.items()))

    async def _defer(self, sub: Submitted, reply: Reply, reason: str,
                     label: str = LAWFUL_CHECK) -> Reply:
        """The whole message is answered 4xx: the client keeps it and tries again."""
        metrics.MESSAGES.labels("deferred", label).inc()
        await self._audit.record([audit.row(
            "message.deferred", actor=sub.actor, tenant_id=sub.tenant.id,
            queue_id=sub.queue_id, action="defer", reason=reason, reply=str(reply))])
        return reply

    async def _count_for_breakers(self, sub: Submitted, message: Message,
                                  result: RelayResult) -> None:
        """What upstream answered for each copy (a deferred one counts when it ends), for
        the mailbox's scopes and the message's (header-From domain, campaign)."""
        if self._breakers is None:
            return
        answered = [BreakerOutcome(domain_of(r.recipient), r.outcome is CopyOutcome.DELIVERED,
                                   r.reply.status) for r in result.copies
                    if r.outcome in (CopyOutcome.DELIVERED, CopyOutcome.REFUSED)]
        scopes = self._breakers.message_scopes(
            sub.tenant.id, message.from_domain(), self._composer.named_campaign(message))
        await self._breakers.answered(sub.tenant.id, sub.mailbox, answered, scopes)

    async def _hold_or_refuse(self, sub: Submitted, message: Message, outcome: Outcome,
                              verdicts: list[list[str]]) -> Reply:
        # the verdict that decided: a HOLD lets later checks run, so it is not the last
        deciding = next(v for v in outcome.verdicts if v.action is outcome.action)
        reply = outcome.reply or replies.HELD_UNAVAILABLE
        if outcome.action is Action.HOLD:  # a released copy carries its trace field
            message.prepend("Received", sub.received())
        kept = await self._keep(sub, message, deciding.check, deciding.reason, verdicts,
                                outcome.action, reply)
        held = outcome.action is Action.HOLD and kept
        if held:
            reply = replies.held(sub.queue_id)
        metrics.MESSAGES.labels("held" if held else "refused", deciding.check).inc()
        await self._audit.record([audit.row(
            "message.held" if held else "message.refused", actor=sub.actor,
            tenant_id=sub.tenant.id, queue_id=sub.queue_id, kept=kept,
            action=outcome.action.value, reason=deciding.reason,
            check_name=deciding.check, verdicts=verdicts,
            recipients=[self._digest(r) for r in sub.recipients], size=len(sub.raw),
            reply=str(reply))],
            [audit.event("held" if held else "refused", tenant_id=sub.tenant.id,
                         queue_id=sub.queue_id, recipient=r, check=deciding.check,
                         reply=str(reply))
             for r in sub.recipients])
        if held:  # a refusal is logged once, by the SMTP handler
            log.info("message held", extra={
                "queue_id": sub.queue_id, "tenant_id": sub.tenant.id,
                "check": deciding.check, "code": reply.code, "status": reply.status})
        else:
            log_context.bind(check=deciding.check)  # for the refusal line
        return reply

    async def _keep(self, sub: Submitted, message: Message, check: str, reason: str,
                    verdicts: list[list[str]], action: Action, reply: Reply) -> bool:
        """Keep a held message (and, unless the tenant says `keep_refused = no`, a copy of a
        refused one) for review, sealed. False if it could not be kept: a held message is
        then answered 451 and the client keeps it."""
        if self._held is None:
            return False
        if action is Action.REJECT and (reply.code < 500
                                        or sub.tenant.settings.get("keep_refused") == "no"):
            return False
        try:
            await self._held.add(
                queue_id=sub.queue_id, tenant_id=sub.tenant.id, login=sub.principal.username,
                mailbox_id=sub.mailbox.id, envelope_from=sub.sender,
                recipients=list(sub.recipients), subject=message.value("subject") or "",
                message=message.as_bytes(), smtputf8=sub.smtputf8, check_name=check,
                reason=reason, verdicts=verdicts,
                status=HELD if action is Action.HOLD else REFUSED)
        except Exception:
            log.exception("message could not be kept for review",
                          extra={"queue_id": sub.queue_id})
            return False
        return True

    async def _record_relayed(self, sub: Submitted, message: Message, message_id: str,
                              outcome: Outcome, verdicts: list[list[str]],
                              result: RelayResult, signed: bool, footer_parts: int,
                              pixels_taken: int, checked: datetime | None,
                              decided: dict[str, Decided], owed: set[str]) -> None:
        """The audit rows, the tenant's events and the sent index of a relayed message.
        Each copy's row says when suppression was last looked at (`checked`): the opt-out
        report (reports/optouts.py) proves from it that no copy went after an opt-out."""
        tenant, queue_id = sub.tenant, sub.queue_id
        digests = [self._digest(r) for r in sub.recipients]
        rows = [audit.row("message.received", actor=sub.actor, tenant_id=tenant.id,
                          queue_id=queue_id, action=outcome.action.value, verdicts=verdicts,
                          recipients=len(digests), size=len(sub.raw),
                          reply=str(result.reply), message_id=message_id, dkim=signed,
                          footer_parts=footer_parts, pixels=pixels_taken)]
        looked: dict[str, Any] = {"checked": iso(checked)} if checked is not None else {}
        for r, digest in zip(result.copies, digests, strict=False):
            basis = decided.get(r.recipient)  # what it was sent on: policy, decision, signal
            extra: dict[str, Any] = looked
            if basis is not None:
                told = {"notice": "yes"} if r.recipient in owed else {}
                extra = {**looked, "lawful": {**basis.detail(), **told}}
            rows.append(audit.row(
                f"copy.{r.outcome.value}", actor="relay", tenant_id=tenant.id,
                queue_id=queue_id, recipient_digest=digest, reply=str(r.reply),
                provider=provider_class(r.recipient), **extra))
        kept = result.kept > 0  # a refused copy of a delivered message is reported later
        events = [
            audit.event(r.outcome.value if kept or r.outcome is CopyOutcome.DELIVERED
                        else "refused", tenant_id=tenant.id, queue_id=queue_id,
                        recipient=r.recipient, reply=str(r.reply), message_id=message_id)
            for r in result.copies
            if not (kept and r.outcome is CopyOutcome.REFUSED)
        ]
        sent = sent_rows(  # the index feedback is matched against (feedback/sent.py)
            message_id, tenant.id, sub.mailbox.id, queue_id,
            [(r.recipient, digest) for r, digest in zip(result.copies, digests, strict=False)
             if r.outcome is CopyOutcome.DELIVERED
             or (kept and r.outcome is CopyOutcome.DEFERRED)],
            datetime.now(UTC), self._suppression_digest,
            subject_hash(message.value("subject"), self._digest))
        await self._audit.record(rows, events, sent)
        if self._bounces is not None:  # "no such mailbox" from our own upstream: a hard bounce
            for r in result.copies:
                if r.outcome is CopyOutcome.REFUSED:
                    await self._bounces.upstream_refused(tenant.id, r.recipient,
                                                         r.reply.status, queue_id)
        metrics.MESSAGES.labels("relayed" if result.reply.code < 400 else "upstream-refused",
                                "").inc()
        if result.reply.code < 400:  # a refusal is logged once, by the SMTP handler
            log.info("message relayed", extra={
                "queue_id": queue_id, "tenant_id": tenant.id, "mailbox_id": sub.mailbox.id,
                "recipients": len(digests), "size": len(sub.raw),
                "code": result.reply.code, "status": result.reply.status,
                "kept": result.kept})

    # --- a message a reviewer released -----------------------------------------------------
    async def release(self, held: HeldMessage, raw: bytes, tenant: Tenant,
                      mailbox: Mailbox) -> None:
        """Fix each recipient's copy (as at DATA), deliver through the queue (due now: it
        checks suppression again before sending) and record the release. The lawful basis
        is decided again, as at DATA: a recipient without one now is not queued, and one
        owed the notice gets it."""
        message = Message(raw)
        message_id = message.value("message-id")
        recipients = list(held.recipients)
        decided = await self._lawful_at_send_time(tenant.id, recipients, message)
        refused = {r: reply for r, d in decided.items() if (reply := d.refusal()) is not None}
        recipients = [r for r in recipients if r not in refused]
        owed = await self._lawful.notice_owed(tenant.id, {r: decided[r] for r in recipients}) \
            if decided and self._lawful is not None else set()
        prepared = self._composer.prepare(message, tenant, mailbox, held.queue_id)
        told = self._composer.prepare(message, tenant, mailbox, held.queue_id,
                                      with_notice=True) if owed else prepared
        if owed and (not told.notice_carried or missing_notice(tenant.settings)):
            refused.update({r: replies.NOTICE_UNPLACEABLE if not told.notice_carried
                            else replies.NOTICE_NOT_CONFIGURED for r in owed})
            recipients = [r for r in recipients if r not in owed]
            owed = set()
        copies = [(told if r in owed else prepared).copy(r) for r in recipients]
        now = datetime.now(UTC)
        if recipients:
            await self._queue.add([
                NewCopy(held.queue_id, held.tenant_id, held.mailbox_id, held.envelope_from,
                        r, State.DEFERRED, 250, "2.0.0", "released after review",
                        held.smtputf8)
                for r in recipients], copies, first_attempt=now)
        if owed and self._lawful is not None:  # queued: those very bytes are what is sent
            await self._lawful.told(tenant.id, {r: decided[r] for r in owed}, held.queue_id)
        await self._audit.record([audit.row(
            "held.released", actor="review", tenant_id=held.tenant_id,
            queue_id=held.queue_id, recipients=len(recipients)), *(audit.row(
                "copy.refused", actor="review", tenant_id=held.tenant_id,
                queue_id=held.queue_id, recipient_digest=self._digest(r),
                check_name=LAWFUL_CHECK, reply=str(reply),
                lawful=decided[r].detail() if r in decided else None)
                for r, reply in refused.items())], (), sent_rows(
            message_id, held.tenant_id, held.mailbox_id, held.queue_id,
            [(r, self._digest(r)) for r in recipients], now,
            self._suppression_digest, subject_hash(message.value("subject"), self._digest)))
