"""The unsubscribe footer: rendered once per message, spliced per recipient.

The tenant's templates render in Jinja2's sandbox (HTML with autoescape) with a fixed set of
values. The unsubscribe URL differs per recipient, so the footer renders once with a
placeholder, and each copy only joins bytes and, for quoted-printable or base64 parts,
encodes the part again (C code in `binascii`). Untouched parts, their header fields
included, keep their raw bytes.

A touched part keeps its transfer encoding when it can: a 7bit part that gains 8-bit text,
or a line longer than 998 octets, becomes quoted-printable; a footer its charset cannot hold
makes a plain-text part UTF-8 (HTML uses character references instead).
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from gateway.errors import InvalidValue
from gateway.outbound.mime import Layout, TextPart

PLACEHOLDER = "ocg-slot-unsubscribe-8d1e2c"  # survives autoescape and every charset
MAX_LINE = 998
MAX_TEMPLATE = 4000

DEFAULT_TEXT = ("\n-- \nTo stop receiving these emails from {{ sender_name }}, unsubscribe:\n"
                "{{ unsubscribe_url }}\n{{ postal_address }}\n")
DEFAULT_HTML = ('<div style="margin-top:24px;font-size:12px;color:#555">'
                '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> from emails of '
                "{{ sender_name }}.</p><p>{{ postal_address }}</p></div>")

_ENV_TEXT = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)
_ENV_HTML = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)
_BODY_END = re.compile(rb"</body\s*>", re.IGNORECASE)
_HTML_END = re.compile(rb"</html\s*>", re.IGNORECASE)
_CHARSET_PARAM = re.compile(rb'(;\s*charset\s*=\s*)("[^"]*"|[^;\s]*)', re.IGNORECASE)


def render(template: str, values: Mapping[str, str], *, html: bool) -> str:
    """One footer, sandboxed. A template error is the tenant's to fix: InvalidValue."""
    return _rendered(template, tuple(sorted(values.items())), html)


@functools.lru_cache(maxsize=1024)
def _rendered(template: str, values: tuple[tuple[str, str], ...], html: bool) -> str:
    """Renders are pure (sandbox, fixed values), so a tenant's footer is rendered once, not
    once per message: compiling a template costs more than the rest of a copy."""
    env = _ENV_HTML if html else _ENV_TEXT
    try:
        return env.from_string(template).render(**dict(values))
    except TemplateError as exc:
        raise InvalidValue(f"The footer template does not render: {exc}") from None


def check_template(template: str, html: bool, values: Mapping[str, str] | None = None,
                   what: str = "footer") -> None:
    """Validate a tenant's template when it is set, not when mail is sent: it renders with
    `values` (the footer's by default) and shows the unsubscribe link."""
    if len(template) > MAX_TEMPLATE:
        raise InvalidValue(f"A {what} template has at most {MAX_TEMPLATE} characters.")
    text = render(template, values or {"unsubscribe_url": PLACEHOLDER, "postal_address": "x",
                                       "sender_name": "x"}, html=html)
    if PLACEHOLDER not in text:
        raise InvalidValue(f"A {what} template must show {{{{ unsubscribe_url }}}}.")


@dataclass(frozen=True, slots=True)
class _Splice:
    """One touched part: its new header block, the encoded start of its content that is the
    same in every copy, and the decoded rest around the slots (encoded per copy)."""

    start: int  # where the part's header block starts in the body
    end: int  # where its body ends
    head: bytes
    fixed: bytes  # encoded: the content up to a cut before the first slot
    rest: tuple[bytes | str, ...]  # decoded content after the cut, and slot names
    encoding: str


_BASE64_LINE = 57  # input bytes per 76-character line of base64.encodebytes


def _crlf_only(piece: bytes) -> bool:
    return piece.count(b"\r") == piece.count(b"\n") == piece.count(b"\r\n")


def _cut(first: bytes, encoding: str, pieces: tuple[bytes | str, ...]) -> int:
    """Where the content before the first slot can be encoded apart from what follows and
    give the same bytes: after a line break for quoted-printable (b2a_qp encodes line by
    line, but reads a bare CR by the first line break's kind, so only where every line
    ends in CRLF), at a whole base64 line, anywhere for identity encodings."""
    if encoding == "quoted-printable":
        if not all(_crlf_only(p) for p in pieces if isinstance(p, bytes)):
            return 0
        return first.rfind(b"\n") + 1
    if encoding == "base64":
        return len(first) // _BASE64_LINE * _BASE64_LINE
    return len(first)


def _split_fixed(pieces: tuple[bytes | str, ...], encoding: str
                 ) -> tuple[bytes, tuple[bytes | str, ...]]:
    first = pieces[0]
    assert isinstance(first, bytes)
    if len(pieces) == 1:  # no slot: all of it is the same in every copy
        return _encode(first, encoding), ()
    at = _cut(first, encoding, pieces)
    return _encode(first[:at], encoding), (first[at:], *pieces[1:])


def _decode(raw: bytes, encoding: str) -> bytes:
    if encoding == "base64":
        return binascii.a2b_base64(raw)
    if encoding == "quoted-printable":
        return binascii.a2b_qp(raw)
    return raw


def _encode(data: bytes, encoding: str) -> bytes:
    if encoding == "base64":
        encoded = base64.encodebytes(data)  # 76-character lines
        return encoded.replace(b"\n", b"\r\n")
    if encoding == "quoted-printable":
        return binascii.b2a_qp(data, istext=True).replace(b"\r\n", b"\n").replace(
            b"\n", b"\r\n")
    return data


SLOT_ROOM = 450  # what a slot may grow to once filled (a link with its sealed token)


def _long_line(data: bytes) -> bool:
    """A line that is, or once its slots are filled may be, over 998 octets."""
    return any(len(line) + line.count(b"ocg-slot-") * SLOT_ROOM > MAX_LINE
               for line in data.split(b"\r\n"))


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def _set_header(head: bytes, name: bytes, value: bytes) -> bytes:
    """Replace (or add, last) one field of a block of fields that each end in CRLF."""
    lines = head.split(b"\r\n")
    out, skipping = [], False
    for line in lines:
        if line[:1] in (b" ", b"\t") and skipping:
            continue
        skipping = line.lower().startswith(name.lower() + b":")
        if not skipping:
            out.append(line)
    if out and out[-1] == b"":
        out.pop()
    return b"".join(line + b"\r\n" for line in [*out, name + b": " + value])


def _set_charset(head: bytes, charset: str) -> bytes:
    match = re.search(rb"(?im)^content-type:.*(?:\r\n[ \t].*)*", head)
    if match is None:
        return _set_header(head, b"Content-Type", f"text/plain; charset={charset}".encode())
    field = match.group(0)
    if _CHARSET_PARAM.search(field):
        new = _CHARSET_PARAM.sub(lambda m: m.group(1) + charset.encode(), field, count=1)
    else:
        new = field + f"; charset={charset}".encode()
    return head[:match.start()] + new + head[match.end():]


def _footer_bytes(text: str, charset: str, html: bool) -> tuple[bytes, str]:
    """The footer in the part's charset, or (plain text only) in UTF-8 if it cannot hold it."""
    try:
        return text.encode(charset), charset
    except LookupError:
        return text.encode("utf-8"), "utf-8"  # unknown charset: the part is re-labelled
    except UnicodeEncodeError:
        if html:
            return text.encode(charset, "xmlcharrefreplace"), charset
        return text.encode("utf-8"), "utf-8"


@dataclass(frozen=True, slots=True)
class PixelPolicy:
    """How a message's tracking pixels are taken over (see gateway.pixels)."""

    mode: str  # proxy | strip | aggregate
    patterns: tuple[str, ...] = ()
    add_own: bool = False  # add the gateway's pixel to HTML that has none


def slot(name: str) -> bytes:
    """The placeholder for one per-recipient value (a URL) in the rendered body."""
    return f"ocg-slot-{name}-8d1e2c".encode()


_SLOT = re.compile(rb"ocg-slot-([a-z0-9-]+)-8d1e2c")
OWN_PIXEL = ('<img src="{src}" width="1" height="1" alt="" '
             'style="display:block;border:0;width:1px;height:1px">')


def _pieces(whole: bytes) -> tuple[bytes | str, ...]:
    """Bytes and slot names, alternating (bytes first and last)."""
    parts = _SLOT.split(whole)
    return tuple(p if i % 2 == 0 else p.decode() for i, p in enumerate(parts))


def _take_pixels(content: bytes, policy: PixelPolicy, originals: list[str]) -> tuple[bytes, int]:
    """Replace the part's pixels by slots (or remove them); returns (content, pixels)."""
    from gateway.pixels import detect  # the detector knows nothing of MIME

    found = detect.find(content, policy.patterns)
    replacements: list[bytes | None] = []
    for pixel in found:
        if policy.mode == "strip":
            replacements.append(None)
        elif policy.mode == "aggregate":
            replacements.append(slot("pixel-aggregate"))
        else:
            replacements.append(slot(f"pixel-{len(originals)}"))
            originals.append(pixel.url)
    return detect.rewrite(content, found, replacements), len(found)


def _plan_part(message: bytes, part: TextPart, footer: str, policy: PixelPolicy | None,
               originals: list[str]) -> _Splice | None:
    content = _decode(message[part.body_start:part.body_end], part.encoding)
    fields = message[part.header_start:part.body_start - 2]  # without the blank line
    pixels = 0
    if part.html and policy is not None:
        content, pixels = _take_pixels(content, policy, originals)
        if policy.add_own and pixels == 0 and policy.mode != "strip":
            name = "pixel-aggregate" if policy.mode == "aggregate" else "pixel-own"
            footer += "\n" + OWN_PIXEL.format(src=slot(name).decode())  # its own line
    if not footer and not pixels:
        return None  # nothing to add and nothing taken over: every byte stays
    footer_raw, charset = _footer_bytes(_crlf(footer), part.charset, part.html)
    if charset != part.charset:
        try:
            content = content.decode(part.charset).encode("utf-8")
        except (LookupError, UnicodeDecodeError):
            return None  # undecodable text under its own label: leave the part alone
        fields = _set_charset(fields, "utf-8")
    if part.html:
        matches = list(_BODY_END.finditer(content)) or list(_HTML_END.finditer(content))
        at = matches[-1].start() if matches else len(content)
        before, after = content[:at], content[at:]
        if footer_raw and before and not before.endswith(b"\n"):
            # on a line of its own: the tool's last line and the footer each keep their
            # slots, and neither grows past 998 octets once the links are filled in
            footer_raw = b"\r\n" + footer_raw
    else:
        before, after = content, b""
        if before and footer_raw and not before.endswith(b"\r\n"):
            before += b"\r\n"
    whole = before + footer_raw + after
    encoding = part.encoding
    if encoding in ("7bit", "8bit", "binary"):
        needs_8bit = not whole.isascii()
        if _long_line(whole) or (needs_8bit and encoding == "7bit") or encoding == "binary":
            encoding = "quoted-printable"
    if encoding != part.encoding:
        fields = _set_header(fields, b"Content-Transfer-Encoding", encoding.encode())
    if fields != message[part.header_start:part.body_start - 2] and part.header_start == 0 \
            and not re.search(rb"(?im)^mime-version:", fields):
        fields = _set_header(fields, b"MIME-Version", b"1.0")
    fixed, rest = _split_fixed(_pieces(whole), encoding)
    return _Splice(part.header_start, part.body_end, fields + b"\r\n", fixed, rest, encoding)


class FooterPlan:
    """The footer (and the pixels taken over) of one whole message, ready to be joined with
    each recipient's URLs.

    `head_end` is where the header block ends in every rendered copy (it may differ from the
    original's when a top-level part changes its transfer encoding or charset). `pixels`
    lists the tracker URLs replaced by `pixel-<n>` slots, in order.
    """

    def __init__(self, message: bytes, head_end: int, layout: Layout, text_footer: str,
                 html_footer: str, pixels: PixelPolicy | None = None) -> None:
        self._body = message
        self.pixels: list[str] = []
        self._splices = [s for s in (
            _plan_part(message, p, html_footer if p.html else text_footer, pixels,
                       self.pixels)
            for p in layout.parts) if s is not None]
        self.slots = sorted({piece for s in self._splices for piece in s.rest
                             if isinstance(piece, str)})
        self.head_end = head_end
        top = next((s for s in self._splices if s.start == 0), None)
        if top is not None:
            self.head_end = len(top.head) - 2

    @property
    def touched(self) -> int:
        return len(self._splices)

    def common_prefix(self) -> bytes:
        """The bytes every rendered copy begins with (the header block at least): up to the
        first touched part's fixed content."""
        if not self._splices:
            return self._body
        first = self._splices[0]
        return self._body[:first.start] + first.head + first.fixed

    def header_block(self) -> bytes:
        """The message's header fields as every rendered copy has them (up to `head_end`),
        without rendering a body."""
        top = next((s for s in self._splices if s.start == 0), None)
        return top.head[:-2] if top is not None else self._body[:self.head_end]

    def render(self, url: str, values: dict[str, bytes] | None = None) -> bytes:
        """The message for one recipient: `url` (the unsubscribe link) and `values` for
        the other slots."""
        if not self._splices:
            return self._body
        filled = {"unsubscribe": url.encode("ascii"), **(values or {})}
        out, at = [], 0
        for s in self._splices:
            out.append(self._body[at:s.start])
            out.append(s.head)
            out.append(s.fixed)
            if s.rest:
                content = b"".join(p if isinstance(p, bytes) else filled[p] for p in s.rest)
                out.append(_encode(content, s.encoding))
            at = s.end
        out.append(self._body[at:])
        return b"".join(out)
