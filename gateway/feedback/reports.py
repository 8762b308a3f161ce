"""Bounces and complaints, read from the messages that carry them.

- Delivery status notifications (RFC 3464: `multipart/report; report-type=delivery-status`),
  as Postfix, Gmail, Exchange Online and most others send them, one result per recipient.
- The common plain-text bounces of MTAs that send no DSN (Exim, qmail): the failed address
  and the enhanced status code near it.
- Complaint reports (ARF, RFC 5965: `report-type=feedback-report`).

What a bounce means for a recipient follows its enhanced status code (RFC 3463): `5.1.x`
(no such mailbox, bad domain) is hard; `4.x.x` and `5.2.2` (mailbox full) are soft; `5.7.x`
is a refusal of the *sender* (policy, reputation, authentication), not a fact about the
recipient. Each result carries the Message-ID of the message it is about, when the report
names it: feedback is forgeable, so it counts only for a message the gateway sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import message_from_bytes, message_from_string, policy
from email.message import EmailMessage, Message
from email.utils import parseaddr
from enum import Enum


class BounceKind(Enum):
    HARD = "hard"  # suppress: the mailbox does not exist
    SOFT = "soft"  # suppress with an expiry after repeated ones
    POLICY = "policy"  # about the sender: counted per mailbox, no suppression
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Bounce:
    recipient: str
    status: str  # the enhanced status code, e.g. "5.1.1"
    kind: BounceKind
    source: str  # "dsn" or the plain-text format it was read from
    original: str = ""  # a DSN's Original-Recipient, when it gives one (RFC 3464 s 2.3.1)


@dataclass(frozen=True, slots=True)
class Complaint:
    recipient: str | None  # often redacted by the provider; then only the Message-ID tells
    feedback_type: str


@dataclass(slots=True)
class Feedback:
    bounces: list[Bounce] = field(default_factory=list)
    complaint: Complaint | None = None
    message_ids: list[str] = field(default_factory=list)  # of the message(s) it is about
    # the RFC 9477 CFBL-Feedback-ID fields of the message a complaint is about
    feedback_refs: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.bounces and self.complaint is None


_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_MESSAGE_ID = re.compile(r"^message-id:\s*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)
_FEEDBACK_REF = re.compile(r"^cfbl-feedback-id:(.*)$", re.IGNORECASE | re.MULTILINE)
_REF_VALUE = re.compile(r"[\x21-\x7e]{1,200}")


def kind_of(status: str) -> BounceKind:
    """What an enhanced status code says about the recipient (OTHER when it is none)."""
    found = _STATUS.fullmatch(status.strip())
    if found is None:
        return BounceKind.OTHER
    klass, subject, detail = found.groups()
    if klass == "4" or (subject, detail) == ("2", "2"):
        return BounceKind.SOFT
    if klass == "5" and subject == "1":
        return BounceKind.HARD
    if klass == "5" and subject == "7":
        return BounceKind.POLICY
    return BounceKind.OTHER


def parse(raw: bytes) -> Feedback:
    """What a message reports; empty when it is neither a bounce nor a complaint."""
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    feedback = Feedback()
    report = msg.get_param("report-type", header="content-type")
    if msg.get_content_type() == "multipart/report" and isinstance(report, str):
        if report.lower() == "delivery-status":
            feedback.bounces = _dsn(msg, feedback)
        elif report.lower() == "feedback-report":
            feedback.complaint = _arf(msg, feedback)
    elif _looks_like_a_bounce(msg):
        feedback.bounces = _text_bounce(msg)
        feedback.message_ids.extend(_MESSAGE_ID.findall(_text(msg)))
    for part in msg.walk():  # the returned message or its headers
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            _add(feedback.message_ids, _returned_message_id(part))
            if feedback.complaint is not None:
                for ref in _returned_refs(part):
                    _add(feedback.feedback_refs, ref)
    for name in ("In-Reply-To", "References"):  # Gmail and Exchange thread their reports
        for found in re.findall(r"<[^>\s]+>", str(msg.get(name, ""))):
            _add(feedback.message_ids, found)
    if feedback.empty:
        feedback.message_ids = []
    return feedback


def _add(ids: list[str], message_id: str | None) -> None:
    if message_id and message_id not in ids:
        ids.append(message_id)


def _dsn(msg: EmailMessage, feedback: Feedback) -> list[Bounce]:
    bounces = []
    for part in msg.walk():
        if part.get_content_type() not in ("message/delivery-status",
                                           "message/global-delivery-status"):
            continue
        blocks = _blocks(part)
        if not blocks:
            continue
        _add(feedback.message_ids, _angle(str(blocks[0].get("X-Original-Message-ID", ""))))
        for block in blocks[1:]:
            original = _address(block.get("Original-Recipient") or "")
            recipient = _address(block.get("Final-Recipient") or "") or original
            action = str(block.get("Action", "")).strip().lower()
            found = _STATUS.search(str(block.get("Status", "")))
            if not recipient or not found or action not in ("failed", "delayed"):
                continue  # delivered, relayed, expanded: nothing to act on
            status = ".".join(found.groups())
            kind = BounceKind.SOFT if action == "delayed" else kind_of(status)
            bounces.append(Bounce(recipient, status, kind, "dsn", original))
    return bounces


def _arf(msg: EmailMessage, feedback: Feedback) -> Complaint | None:
    for part in msg.walk():
        if part.get_content_type() != "message/feedback-report":
            continue
        blocks = _blocks(part)
        fields = blocks[0] if blocks else message_from_string(str(part.get_payload()))
        recipient = _address(str(fields.get("Original-Rcpt-To", ""))) or None
        return Complaint(recipient, str(fields.get("Feedback-Type", "abuse")).strip().lower())
    return None


_BOUNCE_SENDER = re.compile(r"^(mailer-daemon|postmaster|mail-daemon)@", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"(undeliver|delivery (status notification|failure|has failed)|returned mail|"
    r"mail delivery failed|failure notice|delivery failed|non[- ]?remis|unzustellbar|"
    r"no entregado|non recapitabile|não entregue|onbestelbaar)", re.IGNORECASE)
_ADDRESS = re.compile(r"<?([^\s<>@:;,\"]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})>?")


def _looks_like_a_bounce(msg: EmailMessage) -> bool:
    sender = parseaddr(str(msg.get("From", "")))[1]
    return bool(msg.get("X-Failed-Recipients")) or bool(_BOUNCE_SENDER.match(sender)) and \
        bool(_BOUNCE_SUBJECT.search(str(msg.get("Subject", ""))))


def _text_bounce(msg: EmailMessage) -> list[Bounce]:
    """Exim ("The following address(es) failed:"), qmail ("<address>:" then the reason)
    and alike: each failed address with the first status code in the lines after it. The
    returned copy below the report's own text is not read (its To: is no failure)."""
    text = _text(msg)
    report = re.split(r"^-{2,}.*(copy of the message|below this line).*$|^-{5,}\s*$", text,
                      maxsplit=1, flags=re.IGNORECASE | re.MULTILINE)[0]
    listed = {a.strip().lower() for a in str(msg.get("X-Failed-Recipients", "")).split(",")
              if a.strip()}
    lines = report.splitlines()
    bounces: dict[str, Bounce] = {}
    for i, line in enumerate(lines):
        stripped = line.strip()
        found = _ADDRESS.fullmatch(stripped.rstrip(":"))
        if not found:
            continue
        recipient = found.group(1).lower()
        near = " ".join(lines[i:i + 6])
        status = _STATUS.search(near)
        if status is None:
            continue
        code = ".".join(status.groups())
        if recipient not in bounces:
            bounces[recipient] = Bounce(recipient, code, kind_of(code), "text")
    for recipient in listed - set(bounces):  # named but no code found: not known hard
        bounces[recipient] = Bounce(recipient, "5.0.0", BounceKind.OTHER, "text")
    return list(bounces.values())


def _text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    if part is None:
        return ""
    try:
        return str(part.get_content())
    except (LookupError, UnicodeError):
        return ""


def _blocks(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status (or feedback-report) part."""
    payload = part.get_payload()
    return [b for b in payload if isinstance(b, Message)] if isinstance(payload, list) else []


def _returned_message_id(part: Message) -> str | None:
    if part.get_content_type() == "message/rfc822":
        inner = _blocks(part)
        return _angle(str(inner[0].get("Message-ID", ""))) if inner else None
    found = _MESSAGE_ID.search(_payload_text(part))
    return found.group(1) if found else None


def _payload_text(part: Message) -> str:
    """A text/rfc822-headers part's text, transfer encoding undone."""
    payload = part.get_payload(decode=True)
    return payload.decode("utf-8", "replace") if isinstance(payload, bytes) \
        else str(part.get_payload())


def _returned_refs(part: Message) -> list[str]:
    """The CFBL-Feedback-ID values of a returned message (message/rfc822) or of its header
    block alone (text/rfc822-headers, what a headers-only report holds)."""
    if part.get_content_type() == "message/rfc822":
        inner = _blocks(part)
        values = [str(v) for v in inner[0].get_all("CFBL-Feedback-ID") or []] if inner else []
    else:
        text = _payload_text(part).replace("\r\n", "\n")
        head = re.sub(r"\n[ \t]+", " ", text.split("\n\n", 1)[0])
        values = _FEEDBACK_REF.findall(head)
    return [v.strip() for v in values if _REF_VALUE.fullmatch(v.strip())]


def _address(value: str) -> str:
    """`rfc822; someone@example.org` -> someone@example.org (lower-cased)."""
    value = value.split(";", 1)[-1].strip()
    found = _ADDRESS.search(value)
    return found.group(1).lower() if found else ""


def _angle(value: str) -> str | None:
    found = re.search(r"<[^>\s]+>", value)
    return found.group(0) if found else None
