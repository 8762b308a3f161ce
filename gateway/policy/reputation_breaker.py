"""A tenant, sending domain, mailbox or campaign whose reputation breaker tripped sends
nothing until a compliance reviewer resumes it: `451 4.7.1` naming the breaker (never a
recipient). The tenant, the envelope sender's domain and the mailbox answer at MAIL FROM;
the header-From domain and the campaign the tool named are known only from the message, so
they answer after DATA. The state is in memory on every node (limits/breakers.py): each
check costs a few dictionary lookups."""

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


class MessageBreaker:
    """After DATA: the header-From domain (when it is another of the tenant's domains than
    the envelope sender's) and the campaign the tool named (`[pixels] campaign_headers`)."""

    name: ClassVar[str] = "reputation-breaker-message"
    stage: ClassVar[Stage] = Stage.DATA
    waits: ClassVar[bool] = False

    def __init__(self, ctx: PolicyContext) -> None:
        self._breakers = ctx.breakers
        self._headers = ctx.config.pixels.campaign_headers

    async def check(self, tx: Transaction) -> Verdict:
        assert tx.message is not None
        if self._breakers is None:
            return Verdict.ok(self.name)
        scopes = self._breakers.message_scopes(tx.tenant_id, tx.message.from_domain(),
                                               tx.message.campaign(self._headers))
        reply = self._breakers.open_among(scopes)
        if reply is None:
            return Verdict.ok(self.name)
        return Verdict.reject(self.name, reply, "reputation breaker open")
