"""No recipient on a suppression list (the tenant's or the global one) is sent to: refused
at RCPT, before a byte of the message is accepted. The reply names the kind of list, never
the entry or whose list it is."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from gateway.optout.suppressions import refusal
from gateway.policy.check import PolicyContext, Stage, Transaction
from gateway.policy.verdict import Verdict
from suppression.entries import GLOBAL, Reason


class RecipientSuppressed:
    name: ClassVar[str] = "recipient-suppressed"
    stage: ClassVar[Stage] = Stage.RCPT
    waits: ClassVar[bool] = True

    def __init__(self, ctx: PolicyContext) -> None:
        self._suppressions = ctx.suppressions

    async def check(self, tx: Transaction) -> Verdict:
        match = await self._suppressions.check(tx.tenant_id, tx.recipient)
        if match is None:
            return Verdict.ok(self.name)
        why = "global list" if match.scope == GLOBAL else f"tenant list: {match.reason.value}"
        verdict = Verdict.reject(self.name, refusal(match), why)
        if match.reason is Reason.ERASURE:
            return dataclasses.replace(verdict, erased=True)
        return verdict
