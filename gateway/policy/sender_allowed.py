"""MAIL FROM must be an active mailbox of the logged-in tenant, and the tenant must be active."""

from __future__ import annotations

from typing import ClassVar

from gateway.directory import address as addr
from gateway.errors import InvalidValue
from gateway.policy.check import PolicyContext, Stage, Transaction
from gateway.policy.verdict import Verdict
from gateway.protocol import replies


def _printable(text: str) -> str:
    return "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text)[:120]


_PROVIDER_STATES = {
    "disconnected": replies.MAILBOX_DISCONNECTED,
    "needs-reconsent": replies.MAILBOX_NEEDS_RECONSENT,
}


class SenderAllowed:
    name: ClassVar[str] = "sender-allowed"
    stage: ClassVar[Stage] = Stage.MAIL
    waits: ClassVar[bool] = False

    def __init__(self, ctx: PolicyContext) -> None:
        self._directory = ctx.directory

    async def check(self, tx: Transaction) -> Verdict:
        if not tx.tenant.active:
            reply = replies.TENANT_SUSPENDED
            if tx.tenant.status_reason:
                reply = reply.with_text(f"{reply.text}: {_printable(tx.tenant.status_reason)}")
            return Verdict.reject(self.name, reply, "tenant suspended")
        if addr.relay_form(tx.envelope_from):
            return Verdict.reject(self.name, replies.SENDER_RELAY_FORM,
                                  "source route, %, ! or quoted specials")
        try:
            sender = addr.normalize(tx.envelope_from, smtputf8=tx.smtputf8)
        except InvalidValue:
            if not tx.smtputf8 and not tx.envelope_from.isascii():
                return Verdict.reject(self.name, replies.NEEDS_SMTPUTF8, "non-ASCII sender")
            return Verdict.reject(self.name, replies.SENDER_MALFORMED, "malformed sender")
        mailbox = self._directory.mailbox(sender)
        if mailbox is None or mailbox.tenant_id != tx.tenant_id:
            return Verdict.reject(self.name, replies.SENDER_NOT_ALLOWED,
                                  "sender is not a mailbox of this tenant")
        if mailbox.status in _PROVIDER_STATES:  # OAuth grant gone or short of a scope
            return Verdict.reject(self.name, _PROVIDER_STATES[mailbox.status],
                                  f"mailbox {mailbox.status}")
        if not mailbox.active:
            reply = replies.MAILBOX_PAUSED
            if mailbox.status_reason:
                reply = reply.with_text(f"{reply.text}: {_printable(mailbox.status_reason)}")
            return Verdict.reject(self.name, reply, "mailbox paused")
        return Verdict.ok(self.name)
