"""The recipients a campaign tool describes in the message (`X-Gateway-Recipient`,
lawful/stated.py) are described readably: a field that cannot be read refuses the message
(`550 5.6.0` naming the field by its position), rather than leaving a recipient decided on
less than the tool meant to say."""

from __future__ import annotations

from typing import ClassVar

from gateway.errors import InvalidValue
from gateway.lawful import stated
from gateway.policy.check import PolicyContext, Stage, Transaction
from gateway.policy.verdict import Verdict
from gateway.protocol import replies


class RecipientStatement:
    name: ClassVar[str] = "recipient-statement"
    stage: ClassVar[Stage] = Stage.DATA
    waits: ClassVar[bool] = False

    def __init__(self, ctx: PolicyContext) -> None:
        pass

    async def check(self, tx: Transaction) -> Verdict:
        assert tx.message is not None
        values = tx.message.values(stated.FIELD)
        if not values:
            return Verdict.ok(self.name)
        try:
            stated.parse(values)
        except InvalidValue as exc:
            return Verdict.reject(self.name, replies.BAD_RECIPIENT_STATEMENT.with_text(
                f"{exc}".encode("ascii", "replace").decode()), "unreadable recipient field")
        return Verdict.ok(self.name)
