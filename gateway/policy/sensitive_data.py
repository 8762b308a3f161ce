"""Sensitive data in the message: payment cards, US SSNs, IBANs, secrets (see `sensitive`).

Tenant setting `sensitive_data` = hold (default) | reject | off, never below the operator's
floor. The reason names the kind and where it was found, never the value.
"""

from __future__ import annotations

from typing import ClassVar

from gateway.policy import sensitive
from gateway.policy.actions import action_for
from gateway.policy.check import PolicyContext, Stage, Transaction
from gateway.policy.readable import text_parts
from gateway.policy.verdict import Verdict
from gateway.protocol import replies


class SensitiveData:
    name: ClassVar[str] = "sensitive-data"
    stage: ClassVar[Stage] = Stage.DATA
    waits: ClassVar[bool] = False

    def __init__(self, ctx: PolicyContext) -> None:
        self._config = ctx.config

    async def check(self, tx: Transaction) -> Verdict:
        assert tx.message is not None
        action = action_for(self._config, tx.tenant, self.name, "sensitive_data", "hold")
        if action == "off":
            return Verdict.ok(self.name)
        places = [("Subject", tx.message.decoded("subject") or "")]
        places += text_parts(tx.message)
        found: list[str] = []
        for where, text in places:
            found.extend(f"{kind} in {where}" for kind in sensitive.find_all(text))
        if not found:
            return Verdict.ok(self.name)
        reason = "; ".join(found)
        if action == "reject":
            return Verdict.reject(self.name, replies.SENSITIVE_DATA, reason)
        return Verdict.hold(self.name, reason)
