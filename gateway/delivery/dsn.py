"""Delivery status notifications (RFC 3464): a multipart/report telling the sender which
recipients failed and why. Headers of the original only, never its body, by default."""

from __future__ import annotations

import base64
import email
import email.generator
import email.policy
import io
import quopri
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    recipient: str
    action: str  # "failed" (RFC 3464 s 2.3.3); "delayed" is not sent by this gateway
    status: str  # enhanced status code, e.g. 5.1.1
    diagnostic: str  # the upstream's reply, e.g. "550 5.1.1 No such user"
    remote_mta: str = ""


def _field(text: str) -> str:
    """One header-safe line: no CR/LF, printable ASCII."""
    return "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text)[:900]


def original_headers(message: bytes) -> bytes:
    end = message.find(b"\r\n\r\n")
    return message if end < 0 else message[: end + 2]


# The fields that carry one recipient's working unsubscribe link, and the signature over them.
_LINK_FIELDS = (b"list-unsubscribe:", b"list-unsubscribe-post:", b"dkim-signature:")
_TOKEN = re.compile(rb"/[up]/([a-z2-7]{16,})")


def without_links(message: bytes) -> bytes:
    """The copy as a report may show it to its sender: without the recipient's unsubscribe
    fields (a working link: whoever holds the report could opt that person out) and the
    signature over them; in the body, the link and pixel tokens taken out of every text
    part, whatever its transfer encoding."""
    end = message.find(b"\r\n\r\n")
    head, body = (message, b"") if end < 0 else (message[: end + 2], message[end + 2:])
    kept, tokens, dropping = [], set(), False
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):
            if dropping:
                tokens.update(_TOKEN.findall(line))
                continue
        else:
            dropping = line.lower().startswith(_LINK_FIELDS)
            if dropping:
                tokens.update(_TOKEN.findall(line))
                continue
        kept.append(line)
    head = b"".join(kept)
    if not body or not tokens:
        return head + body
    return head + _scrub_body(head, body, tokens)


def _scrub_body(head: bytes, body: bytes, tokens: set[bytes]) -> bytes:
    """The body with every token replaced, each text part decoded, edited, re-encoded."""
    parsed = email.message_from_bytes(head + body, policy=email.policy.compat32)
    for part in parsed.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        raw = part.get_payload(decode=True)
        if not isinstance(raw, bytes) or not any(t in raw for t in tokens):
            continue
        for token in tokens:
            raw = raw.replace(token, b"removed")
        encoding = str(part.get("Content-Transfer-Encoding", "7bit")).strip().lower()
        del part["Content-Transfer-Encoding"]
        if encoding == "base64":
            part.set_payload(base64.encodebytes(raw).decode("ascii"))
        elif encoding == "quoted-printable":
            part.set_payload(quopri.encodestring(raw).decode("ascii"))
        else:
            part.set_payload(raw.decode("utf-8", "surrogateescape"))
        part["Content-Transfer-Encoding"] = encoding
    out = io.BytesIO()
    email.generator.BytesGenerator(out, policy=email.policy.compat32.clone(
        linesep="\r\n")).flatten(parsed)
    whole = out.getvalue()
    end = whole.find(b"\r\n\r\n")
    return whole[end + 2:] if end >= 0 else b""


def build(*, reporting_mta: str, queue_id: str, sender: str, arrival: datetime,
          recipients: Sequence[RecipientStatus], original: bytes | None,
          headers_only: bool = True, reason: str = "") -> bytes:
    """The report as bytes, CRLF line endings, ready to send with a null envelope sender.
    `original=None`: no third part at all (RFC 3464 s 2 makes it optional), for a report
    whose original would name someone it must not (an erased recipient) or is gone (a
    shredded tenant's message)."""
    boundary = f"=_dsn_{secrets.token_hex(12)}"
    now = datetime.now(UTC)
    failed = ", ".join(r.recipient for r in recipients)
    human = (
        f"This is the mail gateway at {reporting_mta}.\r\n\r\n"
        f"Your message (queue id {queue_id}) could not be delivered to: {failed}.\r\n"
        + (f"{reason}\r\n" if reason else "")
        + "\r\nThe details for each recipient are in the delivery report below.\r\n"
    )
    per_message = (f"Reporting-MTA: dns; {_field(reporting_mta)}\r\n"
                   f"X-Queue-ID: {queue_id}\r\n"
                   f"Arrival-Date: {format_datetime(arrival)}\r\n")
    per_recipient = "".join(
        "\r\n"
        f"Final-Recipient: rfc822; {_field(r.recipient)}\r\n"
        f"Action: {r.action}\r\n"
        f"Status: {r.status}\r\n"
        + (f"Remote-MTA: dns; {_field(r.remote_mta)}\r\n" if r.remote_mta else "")
        + f"Diagnostic-Code: smtp; {_field(r.diagnostic)}\r\n"
        f"Last-Attempt-Date: {format_datetime(now)}\r\n"
        for r in recipients
    )
    if original is None:
        third = b""
    elif headers_only:
        third = (b"Content-Type: text/rfc822-headers\r\n\r\n"
                 + without_links(original_headers(original)))
    else:
        third = b"Content-Type: message/rfc822\r\n\r\n" + without_links(original)
    head = (
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>\r\n"
        f"To: <{_field(sender)}>\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\n"
        f"Date: {format_datetime(now)}\r\n"
        f"Message-ID: <{secrets.token_hex(12)}.dsn@{reporting_mta}>\r\n"
        "Auto-Submitted: auto-replied\r\n"  # RFC 3834: never answered automatically
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status;\r\n'
        f' boundary="{boundary}"\r\n'
        "\r\n"
        "This is a MIME-encapsulated delivery status notification.\r\n"
    )
    parts = [
        f"--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{human}",
        f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"{per_message}{per_recipient}",
    ]
    body = head.encode() + b"".join(p.encode("ascii", "replace") for p in parts)
    if third:
        body += (f"--{boundary}\r\n".encode() + third
                 + (b"" if third.endswith(b"\r\n") else b"\r\n"))
    return body + f"--{boundary}--\r\n".encode()


def erased_recipient(digest: str) -> str:
    """How a report names an erased recipient: never their address (issue 20)."""
    return f"erased-{digest[:16]}@invalid"
