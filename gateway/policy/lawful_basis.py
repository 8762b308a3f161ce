"""A recipient the tenant has no lawful basis to mail is refused at RCPT, for tenants that
hold their mail to the lawful-basis table (`lawful_basis = enforce`; lawful/decider.py):
`550 5.7.1` naming the policy, its version and the decision, never the person's data.

A tenant whose tool states its recipients in the message (`lawful_statements = yes`,
lawful/stated.py) is refused here only on what no statement can change, an attribute
record; a refusal on a weaker signal waits for the message, and the hand-off decides it.
"""

from __future__ import annotations

from typing import ClassVar

from gateway.lawful.decider import DEFAULT_SETTING, OVERRIDES_SETTING, STATEMENTS_SETTING
from gateway.lawful.notices import missing
from gateway.lawful.signals import Source
from gateway.policy.check import PolicyContext, Stage, Transaction
from gateway.policy.verdict import Verdict
from gateway.protocol import replies


class LawfulBasisCheck:
    name: ClassVar[str] = "lawful-basis"
    stage: ClassVar[Stage] = Stage.RCPT
    waits: ClassVar[bool] = True

    def __init__(self, ctx: PolicyContext) -> None:
        self._directory = ctx.directory
        self._lawful = ctx.lawful

    async def check(self, tx: Transaction) -> Verdict:
        setting = self._directory.setting
        if self._lawful is None or not self._lawful.enforced(setting, tx.tenant_id):
            return Verdict.ok(self.name)
        decided = await self._lawful.decide(
            tx.tenant_id, tx.recipient, setting(tx.tenant_id, DEFAULT_SETTING),
            overrides=setting(tx.tenant_id, OVERRIDES_SETTING))
        refusal = decided.refusal()
        if refusal is None and decided.verdict.notice and missing(tx.tenant.settings):
            return Verdict.reject(self.name, replies.NOTICE_NOT_CONFIGURED,
                                  "allow-with-notice: the tenant's notice settings are missing")
        if refusal is None or (decided.verdict.source is not Source.RECORD
                               and setting(tx.tenant_id, STATEMENTS_SETTING) == "yes"):
            return Verdict.ok(self.name)
        return Verdict.reject(self.name, refusal, f"{decided.policy}: "
                              f"{decided.verdict.decision.value} ({decided.verdict.source})")
