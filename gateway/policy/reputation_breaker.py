"""A tenant, sending domain or mailbox whose reputation breaker tripped sends nothing until
a compliance reviewer resumes it: `451 4.7.1` at MAIL FROM, naming the breaker (never a
recipient). The state is in memory on every node (limits/breakers.py), so the check costs
three dictionary lookups."""

from __future__ import annotations

from typing import ClassVar

from gateway.directory import address as addr
from gateway.errors import InvalidValue
from gateway.policy.check import PolicyContext, Stage, Transaction
from gateway.policy.verdict import Verdict


class ReputationBreaker:
    name: ClassVar[str] = "reputation-breaker"
    stage: ClassVar[Stage] = Stage.MAIL
    waits: ClassVar[bool] = False

    def __init__(self, ctx: PolicyContext) -> None:
        self._breakers = ctx.breakers
        self._directory = ctx.directory

    async def check(self, tx: Transaction) -> Verdict:
        if self._breakers is None:
            return Verdict.ok(self.name)
        try:  # sender-allowed ran first: the sender is a mailbox of this tenant
            mailbox = self._directory.mailbox(addr.normalize(tx.envelope_from,
                                                             smtputf8=tx.smtputf8))
        except InvalidValue:
            mailbox = None
        reply = self._breakers.tripped(tx.tenant_id, mailbox)
        if reply is None:
            return Verdict.ok(self.name)
        return Verdict.reject(self.name, reply, "reputation breaker open")
