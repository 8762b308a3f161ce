"""The checks, in the order they run. A new check is a new module plus one line here."""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass

from gateway.errors import VaultError
from gateway.observability import metrics
from gateway.policy import (
    header_from,
    identity_alignment,
    lawful_basis,
    misleading_subject,
    parsed,
    recipient_statement,
    recipient_suppressed,
    recipient_valid,
    reputation_breaker,
    sender_allowed,
    sensitive_data,
    submission_headers,
    unsubscribe_footer,
)
from gateway.policy.check import Check, PolicyContext, Stage, Transaction
from gateway.policy.verdict import Action, Verdict
from gateway.protocol import replies
from gateway.protocol.replies import Reply

MAIL_CHECKS = (
    sender_allowed.SenderAllowed,  # MAIL FROM is an active mailbox of this login's tenant
    reputation_breaker.ReputationBreaker,  # tenant, domain, mailbox breaker open -> 451
)
RCPT_CHECKS = (
    recipient_valid.RecipientValid,  # syntax and normal form (email-validator)
    recipient_suppressed.RecipientSuppressed,  # on a suppression list -> 550 5.7.1
    lawful_basis.LawfulBasisCheck,  # tenant enforces the table: no basis -> 550 5.7.1
)
DATA_CHECKS = (
    parsed.Parsed,  # unparsable -> 554 5.6.0, never half-sent
    recipient_statement.RecipientStatement,  # X-Gateway-Recipient unreadable -> 550 5.6.0
    header_from.HeaderFrom,  # From on one of the tenant's domains -> else 550 5.7.1
    reputation_breaker.MessageBreaker,  # From domain or campaign breaker open -> 451
    identity_alignment.IdentityAlignment,  # verified, aligned, no lookalike names -> 550
    submission_headers.SubmissionHeaders,  # -> fix: Message-ID, Date, no Bcc (RFC 6409 s 8)
    unsubscribe_footer.UnsubscribeFooter,  # postal address set; body = require -> 550 5.7.1
    sensitive_data.SensitiveData,  # cards, SSNs, IBANs, secrets -> hold (tenant: reject/off)
    misleading_subject.MisleadingSubject,  # Re:/Fwd: without a thread, merge tags -> hold
)

log = logging.getLogger("gateway.policy")


@dataclass(frozen=True, slots=True)
class Outcome:
    action: Action
    verdicts: tuple[Verdict, ...]
    reply: Reply | None = None  # set when the stage refuses


class Pipeline:
    def __init__(self, ctx: PolicyContext) -> None:
        self._ctx = ctx
        self._stages: dict[Stage, tuple[Check, ...]] = {
            Stage.MAIL: tuple(cls(ctx) for cls in MAIL_CHECKS),
            Stage.RCPT: tuple(cls(ctx) for cls in RCPT_CHECKS),
            Stage.DATA: tuple(cls(ctx) for cls in DATA_CHECKS),
        }
        self._seconds = {c.name: metrics.CHECK_SECONDS.labels(c.name)
                         for checks in self._stages.values() for c in checks}
        for stage, checks in self._stages.items():
            assert all(c.stage is stage for c in checks), "a check is listed at the wrong stage"

    async def run(self, stage: Stage, tx: Transaction) -> Outcome:
        """Run one stage's checks in order.

        REJECT stops the run; HOLD is recorded and the rest still run so a reviewer sees
        every reason; edits are applied as they arrive, so later checks see the fixed
        message. Any exception or timeout is a 451 (fail closed, temporary), cause logged.
        """
        verdicts: list[Verdict] = []
        worst = Action.PASS
        for check in self._stages[stage]:
            verdict = await self._run_one(check, tx)
            verdicts.append(verdict)
            if verdict.action is Action.FIX and tx.message is not None:
                for edit in verdict.edits:
                    edit.apply(tx.message)
            if verdict.action.severity > worst.severity:
                worst = verdict.action
            if verdict.action is Action.REJECT:
                return Outcome(Action.REJECT, tuple(verdicts), verdict.reply)
        return Outcome(worst, tuple(verdicts))

    async def _run_one(self, check: Check, tx: Transaction) -> Verdict:
        with self._seconds[check.name].time():
            return await self._timed(check, tx)

    async def _timed(self, check: Check, tx: Transaction) -> Verdict:
        timeout = self._ctx.config.check_config(check.name).timeout
        try:
            if not check.waits:
                return await check.check(tx)
            async with asyncio.timeout(timeout):
                return await check.check(tx)
        except VaultError:
            incident = _incident()
            log.exception("check failed: vault", extra={"check": check.name, "incident": incident})
            return Verdict.reject(check.name, replies.VAULT_UNAVAILABLE, f"vault error {incident}")
        except TimeoutError:
            incident = _incident()
            log.error("check timed out", extra={"check": check.name, "incident": incident,
                                                "timeout": timeout})
            return Verdict.reject(check.name, replies.TEMPORARY_FAILURE, f"timeout {incident}")
        except Exception:
            incident = _incident()
            log.exception("check failed", extra={"check": check.name, "incident": incident})
            return Verdict.reject(check.name, replies.TEMPORARY_FAILURE,
                                  f"internal error {incident}")


def _incident() -> str:
    return secrets.token_hex(4)
