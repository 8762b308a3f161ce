"""Submission fixes of RFC 6409 s 8: add a missing Message-ID and Date; drop Bcc."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import ClassVar

from gateway.policy.check import PolicyContext, Stage, Transaction
from gateway.policy.message import Message
from gateway.policy.verdict import Edit, Verdict


class SubmissionHeaders:
    name: ClassVar[str] = "submission-headers"
    stage: ClassVar[Stage] = Stage.DATA
    waits: ClassVar[bool] = False

    def __init__(self, ctx: PolicyContext) -> None:
        self._hostname = ctx.config.smtp.hostname

    async def check(self, tx: Transaction) -> Verdict:
        msg = tx.message
        assert msg is not None
        edits = []
        if not (msg.value("message-id") or ""):  # missing, or a field with nothing in it
            # the one place a Message-ID is added: bounces, complaints and replies find their
            # copy by it (feedback/sent.py), and Gmail refuses mail without one
            message_id = f"<{secrets.token_hex(12)}@{self._hostname}>"
            edits.append(Edit("added Message-ID", lambda m: _set_message_id(m, message_id)))
        if not msg.has("date"):
            date = format_datetime(datetime.now(UTC))
            edits.append(Edit("added Date", lambda m: m.append("Date", date)))
        if msg.has("bcc"):
            # Bcc recipients are in the envelope; the header must not reach anyone.
            edits.append(Edit("removed Bcc", _remove_bcc))
        if not edits:
            return Verdict.ok(self.name)
        return Verdict.fix(self.name, ", ".join(e.summary for e in edits), *edits)


def _set_message_id(msg: Message, message_id: str) -> None:
    msg.remove("message-id")  # an empty one
    msg.append("Message-ID", message_id)


def _remove_bcc(msg: Message) -> None:
    msg.remove("bcc")
