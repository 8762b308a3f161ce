"""Where a footer goes, found on the raw bytes, so every other byte stays as it arrived.

`body_parts()` walks the MIME tree by byte offsets and returns the text parts a reader sees
as the message: a top-level `text/plain` or `text/html`; every text alternative of a
`multipart/alternative`; the first part (the body) of `multipart/mixed` and the root of
`multipart/related`. It never enters `multipart/signed`, `multipart/encrypted`, S/MIME
(`application/pkcs7-mime`), attachments or attached messages: those are returned as
`sealed`, and the caller then leaves the whole body alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message as EmailMessage
from email.parser import BytesHeaderParser
from email.policy import compat32

_HEADERS = BytesHeaderParser(policy=compat32)
_SEALED_TYPES = frozenset({"multipart/signed", "multipart/encrypted",
                           "application/pkcs7-mime", "application/x-pkcs7-mime"})
MAX_DEPTH = 20


@dataclass(frozen=True, slots=True)
class TextPart:
    """A text part to extend: where its header block starts, and its body's range, in the
    whole message. The header block is message[header_start:body_start] and ends with the
    blank line (for the message itself, header_start is 0)."""

    header_start: int
    body_start: int
    body_end: int
    html: bool
    charset: str
    encoding: str  # 7bit | 8bit | binary | quoted-printable | base64


@dataclass(frozen=True, slots=True)
class Layout:
    parts: tuple[TextPart, ...]
    sealed: bool  # signed or encrypted: no footer anywhere


def _split_entity(body: bytes, start: int, end: int) -> tuple[int, int]:
    """(end of header block, start of body) of the entity in body[start:end]."""
    if body.startswith(b"\r\n", start):
        return start, start + 2
    blank = body.find(b"\r\n\r\n", start, end)
    if blank < 0:
        return end, end
    return blank + 2, blank + 4


_DELIMITER_END = re.compile(rb"(--)?[ \t]*(?:\r\n|$)", re.MULTILINE)


def _boundary_positions(body: bytes, start: int, end: int, boundary: bytes
                        ) -> list[tuple[int, int, bool]]:
    """(line start, line end incl. CRLF, is the close delimiter) of each delimiter line.

    The delimiter is found by a literal search, then checked where it is: at the start of
    a line, followed by `--` (the close) and white space to the end of the line."""
    found = []
    delimiter = b"--" + boundary
    at = body.find(delimiter, start, end)
    while at != -1:
        line_start = at == 0 or body[at - 1:at] == b"\n"
        m = _DELIMITER_END.match(body, at + len(delimiter), end) if line_start else None
        if m is None:
            at = body.find(delimiter, at + 1, end)
            continue
        found.append((at, m.end(), m.group(1) is not None))
        if m.group(1) is not None:
            break
        at = body.find(delimiter, m.end(), end)
    return found


def _content(headers: EmailMessage, default: str) -> tuple[str, str, str, str]:
    ctype = headers.get_content_type() if headers.get("content-type") else default
    charset = str(headers.get_param("charset") or "us-ascii")
    encoding = str(headers.get("content-transfer-encoding", "7bit")).strip().lower()
    return ctype, charset, encoding, (headers.get_content_disposition() or "")


def body_parts(message: bytes, head_end: int) -> Layout:
    """Find the footer parts of a whole message whose header block (fields, each ending in
    CRLF) is message[:head_end], followed by the blank line and the body."""
    parts: list[TextPart] = []
    sealed = _walk(_HEADERS.parsebytes(message[:head_end]), message, 0, len(message),
                   head_end + 2, "text/plain", parts, 0)
    return Layout(tuple(parts) if not sealed else (), sealed)


def _walk(headers: EmailMessage, body: bytes, header_start: int, end: int, body_start: int,
          default: str, out: list[TextPart], depth: int) -> bool:
    """Collect footer parts of one entity; True if it is signed or encrypted."""
    ctype, charset, encoding, disposition = _content(headers, default)
    if ctype in _SEALED_TYPES:
        return True
    if disposition == "attachment" or depth > MAX_DEPTH:
        return False
    if ctype in ("text/plain", "text/html"):
        if encoding not in ("7bit", "8bit", "binary", "quoted-printable", "base64"):
            return False
        out.append(TextPart(header_start, body_start, end, ctype == "text/html",
                            charset.lower(), encoding))
        return False
    if not ctype.startswith("multipart/"):
        return False
    boundary = headers.get_boundary()
    if not boundary:
        return False
    delimiters = _boundary_positions(body, body_start, end, boundary.encode("ascii", "replace"))
    children = []
    for (_, line_end, close), (next_start, _, _) in zip(delimiters, delimiters[1:],
                                                       strict=False):
        if close:
            break
        child_end = next_start - 2 if next_start - 2 >= line_end else line_end
        children.append((line_end, child_end))
    child_default = "message/rfc822" if ctype == "multipart/digest" else "text/plain"
    if ctype != "multipart/alternative":
        children = children[:1]  # mixed, related and the rest: the first part is the body
    sealed = False
    for child_start, child_end in children:
        head_end, child_body = _split_entity(body, child_start, child_end)
        child_headers = _HEADERS.parsebytes(body[child_start:head_end])
        sealed |= _walk(child_headers, body, child_start, child_end, child_body,
                        child_default, out, depth + 1)
    return sealed
