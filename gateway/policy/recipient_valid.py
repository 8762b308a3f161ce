"""Every recipient passes email-validator (syntax only, no DNS) and goes on in its bare form;
forms a next hop could route on (source route, %, !, quoted specials) are refused."""

from __future__ import annotations

from typing import ClassVar

from gateway.directory import address as addr
from gateway.errors import InvalidValue
from gateway.policy.check import PolicyContext, Stage, Transaction
from gateway.policy.verdict import Verdict
from gateway.protocol import replies


class RecipientValid:
    name: ClassVar[str] = "recipient-valid"
    stage: ClassVar[Stage] = Stage.RCPT
    waits: ClassVar[bool] = False

    def __init__(self, ctx: PolicyContext) -> None:
        pass

    async def check(self, tx: Transaction) -> Verdict:
        if not tx.smtputf8 and not tx.recipient.isascii():
            return Verdict.reject(self.name, replies.NEEDS_SMTPUTF8, "non-ASCII recipient")
        if addr.relay_form(tx.recipient):
            return Verdict.reject(self.name, replies.RECIPIENT_RELAY_FORM,
                                  "source route, %, ! or quoted specials")
        try:
            addr.normalize(tx.recipient, smtputf8=tx.smtputf8)
        except InvalidValue:
            return Verdict.reject(self.name, replies.RECIPIENT_MALFORMED, "malformed recipient")
        return Verdict.ok(self.name)
