"""The message parses: no listed parser defect, one From, bounded headers and MIME depth.

Python's `email` never raises on bad input; it records defects. "Parses" here means none
of the defects below, which change how receivers split headers from body or parts from
each other (the ground of header and MIME smuggling), is present.
"""

from __future__ import annotations

from email import errors
from email.message import Message as EmailMessage
from typing import ClassVar

from gateway.policy.check import PolicyContext, Stage, Transaction
from gateway.policy.verdict import Verdict
from gateway.protocol import replies

REFUSED_DEFECTS: tuple[type[errors.MessageDefect], ...] = (
    errors.FirstHeaderLineIsContinuationDefect,
    errors.MissingHeaderBodySeparatorDefect,
    errors.MisplacedEnvelopeHeaderDefect,
    errors.NoBoundaryInMultipartDefect,
    errors.StartBoundaryNotFoundDefect,
    errors.CloseBoundaryNotFoundDefect,
    errors.MultipartInvariantViolationDefect,
    errors.InvalidMultipartContentTransferEncodingDefect,
)


class Parsed:
    name: ClassVar[str] = "parsed"
    stage: ClassVar[Stage] = Stage.DATA
    waits: ClassVar[bool] = False

    def __init__(self, ctx: PolicyContext) -> None:
        self._smtp = ctx.config.smtp

    async def check(self, tx: Transaction) -> Verdict:
        msg = tx.message
        assert msg is not None
        if msg.field_count > self._smtp.max_header_count:
            return Verdict.reject(self.name, replies.HEADERS_TOO_LARGE, "too many header fields")
        if msg.header_bytes > self._smtp.max_header_bytes:
            return Verdict.reject(self.name, replies.HEADERS_TOO_LARGE, "header block too large")
        if msg.malformed_header:
            return self._unparsable("malformed header line")
        if not tx.smtputf8 and msg.header_is_8bit():
            return self._unparsable("8-bit header bytes without SMTPUTF8")
        if msg.count("from") != 1:
            return self._unparsable(f"{msg.count('from')} From fields, RFC 5322 wants one")
        from_field = msg.from_header()
        if (from_field is None or from_field.defects
                or len(getattr(from_field, "addresses", ())) != 1):
            return self._unparsable("From is not exactly one address")
        # Header-block defects (continuation first, a line that is no field, an mbox "From "
        # line) are what `malformed_header` found above, without a full parse.
        if msg.is_structured():
            # The body has structure: parse it all, once, and check every part.
            problem = self._structure(msg.structure())
            if problem:
                return self._unparsable(problem)
        return Verdict.ok(self.name)

    def _structure(self, root: EmailMessage) -> str:
        stack: list[tuple[EmailMessage, int]] = [(root, 1)]  # any parse: compat32 here
        while stack:
            part, depth = stack.pop()
            if depth > self._smtp.max_mime_depth:
                return f"MIME nesting deeper than {self._smtp.max_mime_depth}"
            if any(isinstance(d, REFUSED_DEFECTS) for d in part.defects):
                return _defect_names(part.defects)
            payload = part.get_payload()
            if isinstance(payload, list):
                stack.extend((p, depth + 1) for p in payload if isinstance(p, EmailMessage))
        return ""

    def _unparsable(self, reason: str) -> Verdict:
        return Verdict.reject(self.name, replies.MESSAGE_UNPARSABLE, reason)


def _defect_names(defects: list[errors.MessageDefect]) -> str:
    names = sorted({type(d).__name__ for d in defects if isinstance(d, REFUSED_DEFECTS)})
    return "parser defects: " + ", ".join(names)
