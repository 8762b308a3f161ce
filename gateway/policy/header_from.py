"""Header From is on one of the sending tenant's domains (receivers judge the From domain)."""

from __future__ import annotations

from typing import ClassVar

from gateway.policy.check import PolicyContext, Stage, Transaction
from gateway.policy.verdict import Verdict
from gateway.protocol import replies


class HeaderFrom:
    name: ClassVar[str] = "header-from"
    stage: ClassVar[Stage] = Stage.DATA
    waits: ClassVar[bool] = False

    def __init__(self, ctx: PolicyContext) -> None:
        self._directory = ctx.directory

    async def check(self, tx: Transaction) -> Verdict:
        assert tx.message is not None
        domain = tx.message.from_domain()  # `parsed` ran first: one From address
        if self._directory.domain_tenant(domain) != tx.tenant_id:
            return Verdict.reject(self.name, replies.HEADER_FROM_NOT_ALLOWED,
                                  "header From domain is not a domain of this tenant")
        return Verdict.ok(self.name)
