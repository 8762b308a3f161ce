"""A submitted message as bytes: header fields kept verbatim, body untouched.

Edits change header fields in place, so what leaves is what arrived plus the gateway's
changes, byte for byte. The hot path reads single fields (`value()`, `from_header()`);
checks that need MIME structure ask for `structure()` (a full parse, done at most once).
What is derived from the body (its decoded text parts) is kept in `body_cache` until a
field that shapes the body (Content-*, MIME-Version) changes: adding a Message-ID or a Date
does not make the content checks read the body again.
"""

from __future__ import annotations

import email.policy
import functools
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import Message as EmailMessageBase
from email.parser import BytesParser
from typing import Any

_POLICY = email.policy.SMTP
# MIME structure and parts without the modern header classes (which build objects on every
# field access): the parser, its structure and its defects are the same under either policy
_STRUCTURE = BytesParser(policy=email.policy.compat32)
_FIELD_NAME_CHARS = frozenset(range(33, 127)) - {ord(":")}
_REGISTRY = HeaderRegistry()


@functools.lru_cache(maxsize=4096)
def _parse_from(value: str) -> BaseHeader:
    """Campaign tools send the same From thousands of times; header objects are immutable."""
    header: BaseHeader = _REGISTRY("From", value)
    return header


class Message:
    __slots__ = ("_fields", "body", "malformed_header", "_from", "_body_parsed",
                 "body_cache")

    def __init__(self, raw: bytes) -> None:
        self._fields: list[tuple[str, bytes]] = []  # (lower-cased name, field incl. CRLF)
        self.malformed_header = False  # a header line that is not a field or a continuation
        self._body_parsed: EmailMessageBase | None = None  # structure while the body is current
        self.body_cache: dict[str, Any] = {}  # what readers derived from the body
        self._from: BaseHeader | None = None
        if raw.startswith(b"\r\n"):
            self.body = raw[2:]
            return
        end = raw.find(b"\r\n\r\n")
        head, self.body = (raw, b"") if end < 0 else (raw[: end + 2], raw[end + 4 :])
        if end < 0 and not head.endswith(b"\r\n"):
            head += b"\r\n"
        for line in head.split(b"\r\n")[:-1]:
            if line[:1] in (b" ", b"\t"):
                if not self._fields:
                    self.malformed_header = True  # RFC 5322: first line is a continuation
                    continue
                name, field = self._fields[-1]
                self._fields[-1] = (name, field + line + b"\r\n")
                continue
            raw_name, colon, _ = line.partition(b":")
            if not colon or not raw_name or any(c not in _FIELD_NAME_CHARS for c in raw_name):
                self.malformed_header = True
                self._fields.append(("", line + b"\r\n"))
                continue
            self._fields.append((raw_name.decode("ascii").lower(), line + b"\r\n"))

    # --- reading ---------------------------------------------------------------------------
    @property
    def field_count(self) -> int:
        return len(self._fields)

    @property
    def header_bytes(self) -> int:
        return sum(len(f) for _, f in self._fields)

    def header_is_8bit(self) -> bool:
        return any(not f.isascii() for _, f in self._fields)

    def count(self, name: str) -> int:
        name = name.lower()
        return sum(1 for n, _ in self._fields if n == name)

    def has(self, name: str) -> bool:
        name = name.lower()
        return any(n == name for n, _ in self._fields)

    def value(self, name: str) -> str | None:
        """The first field `name`, unfolded, without the name (undecoded RFC 2047 words)."""
        name = name.lower()
        for n, f in self._fields:
            if n == name:
                text = f.decode("utf-8", "surrogateescape").split(":", 1)[1]
                return text.replace("\r\n", "").strip()
        return None

    def decoded(self, name: str) -> str | None:
        """The first field `name` as a mail client shows it: RFC 2047 words decoded (as a full
        parse's `str(get(name))`). A value without an encoded word is `value()`, unparsed."""
        value = self.value(name)
        if value is None or "=?" not in value:
            return value
        return str(self.header(name))

    def values(self, name: str) -> list[str]:
        """Every field `name`, in order, as `value()` gives the first."""
        name = name.lower()
        return [f.decode("utf-8", "surrogateescape").split(":", 1)[1].replace("\r\n", "")
                .strip() for n, f in self._fields if n == name]

    def from_header(self) -> BaseHeader | None:
        """The From field parsed as an address header (cached): the one parse the hot path
        needs, instead of parsing every header."""
        if self._from is None:
            value = self.value("from")
            if value is None:
                return None
            self._from = _parse_from(value)
        return self._from

    def from_domain(self) -> str:
        """The domain of the one From address, lower-case ASCII (IDNA); "" without one."""
        addresses: tuple[Any, ...] = getattr(self.from_header(), "addresses", ())
        if len(addresses) != 1:
            return ""
        domain = str(addresses[0].domain).lower()
        try:
            return domain.encode("idna").decode("ascii")
        except UnicodeError:
            return domain

    def campaign(self, headers: tuple[str, ...]) -> str | None:
        """The campaign the tool named in the first of `headers` it set (at most 200
        characters), or None."""
        for name in headers:
            value = self.value(name)
            if value:
                return value[:200]
        return None

    def is_structured(self) -> bool:
        """True when the body has MIME structure (multipart or message/*) to check."""
        content_type = (self.value("content-type") or "").lower()
        return content_type.startswith(("multipart/", "message/"))

    def structure(self) -> EmailMessageBase:
        """The MIME structure and parts (a parse with the compat32 policy: plain strings,
        the same parts and parser defects), kept across edits of fields that do not shape
        the body (a Message-ID added, a Bcc removed); its top-level fields may be older
        than the message's."""
        if self._body_parsed is None:
            self._body_parsed = _STRUCTURE.parsebytes(self.as_bytes())
        return self._body_parsed

    def header(self, name: str) -> BaseHeader | None:
        """The first field `name` as a full parse's `get(name)` gives it (decoded, the policy's
        header class), without parsing the rest of the message."""
        name = name.lower()
        for n, f in self._fields:
            if n == name:
                # the parser's lines: split at CRLF only (DATA has refused bare CR and LF)
                lines = [line + "\r\n" for line in
                         f.decode("ascii", "surrogateescape").split("\r\n")[:-1]]
                header: BaseHeader = _POLICY.header_fetch_parse(
                    *_POLICY.header_source_parse(lines))
                return header
        return None

    def _head_bytes(self) -> bytes:
        return b"".join(f for _, f in self._fields)

    def as_bytes(self) -> bytes:
        return self._head_bytes() + b"\r\n" + self.body

    # --- editing ---------------------------------------------------------------------------
    def _changed(self, name: str) -> None:
        self._from = None
        if name.startswith("content-") or name == "mime-version":
            self._body_parsed = None
            self.body_cache.clear()

    def remove(self, name: str) -> int:
        name = name.lower()
        before = len(self._fields)
        self._fields = [(n, f) for n, f in self._fields if n != name]
        self._changed(name)
        return before - len(self._fields)

    def append(self, name: str, value: str) -> None:
        self._fields.append((name.lower(), _field(name, value)))
        self._changed(name.lower())

    def prepend(self, name: str, value: str) -> None:
        """Trace fields (Received) go on top (RFC 5321 s 4.4)."""
        self._fields.insert(0, (name.lower(), _field(name, value)))
        self._changed(name.lower())


def _field(name: str, value: str) -> bytes:
    if "\r" in value or "\n" in value:
        raise ValueError("header values are given unfolded, without CR or LF")
    return f"{name}: {value}\r\n".encode()
