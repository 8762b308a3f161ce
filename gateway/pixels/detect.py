"""Finding tracking pixels in raw HTML bytes, and rewriting only their `src`/`srcset`.

Campaign HTML is messy (upper-case tags, unquoted attributes, Outlook conditional comments,
`srcset`), so this is a tolerant tag scanner over bytes, not a parser that re-serialises:
everything but the attribute values it replaces stays byte for byte. It works on the
decoded part in its own charset (ASCII-compatible charsets: the markup bytes are ASCII).

An `<img>` is a tracking pixel when its `src`:
- matches one of the tenant's tracker patterns (`host` or `host/path-prefix`, `*.` allowed);
- is on a well-known tracker host, or has a well-known open-tracking path;
- or the image is 1x1 or hidden: width and height attributes <= 1, or inline style with
  `display:none`, `visibility:hidden`, `opacity:0`, `max-height:0` or width/height <= 1px,
  unless it declares a real size (an icon that CSS shows later is not a pixel).
`data:` and `cid:` images load nothing and are never pixels.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

KNOWN_HOSTS = (
    "list-manage.com", "mandrillapp.com", "sendgrid.net", "hubspotlinks.com",
    "hubspotemail.net", "mailtrack.io", "yesware.com", "mixmax.com", "streak.com",
    "bananatag.com", "getnotify.com", "mltrk.io", "mailstat.us", "convertkit-mail.com",
    "convertkit-mail2.com", "sendibt2.com", "sendibt3.com", "klclick.com", "ctrk.klclick.com",
    "emltrk.com", "mailfoogae.appspot.com", "lemlist.com", "pstmrk.it", "mcsv.net",
)
KNOWN_PATHS = re.compile(
    rb"/(?:track/open|open\.php|wf/open|o/[A-Za-z0-9_-]{8,}|e/o/|trk/open|email/open|"
    rb"pixel(?:\.gif|\.png)?|beacon|opens?/)", re.IGNORECASE)

_IMG = re.compile(rb"<img(?=[\s/>])", re.IGNORECASE)
_ATTR = re.compile(
    rb"""\s*([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")
_HIDDEN_STYLE = re.compile(
    rb"display\s*:\s*none|visibility\s*:\s*hidden|opacity\s*:\s*0(?:\.0+)?\s*(?:;|$)|"
    rb"max-height\s*:\s*0|(?<![-\w])(?:width|height)\s*:\s*[01](?:\.0+)?\s*px",
    re.IGNORECASE)
_DIMENSION = re.compile(rb"^\s*([0-9.]+)")


@dataclass(frozen=True, slots=True)
class Attribute:
    name: bytes  # lower case
    value: bytes
    start: int  # of the value (inside quotes), absolute
    end: int


@dataclass(frozen=True, slots=True)
class ImgTag:
    start: int
    end: int  # after '>'
    attributes: tuple[Attribute, ...]

    def get(self, name: bytes) -> Attribute | None:
        return next((a for a in self.attributes if a.name == name), None)


@dataclass(frozen=True, slots=True)
class Pixel:
    tag: ImgTag
    url: str  # the src it loads
    reason: str  # tenant-pattern | known-host | known-path | 1x1 | hidden


def img_tags(html: bytes) -> list[ImgTag]:
    tags = []
    for m in _IMG.finditer(html):
        at = m.end()
        attributes = []
        while at < len(html):
            if html.startswith(b">", at):
                at += 1
                break
            if html.startswith(b"/>", at):
                at += 2
                break
            am = _ATTR.match(html, at)
            if am is None or am.end() == at:
                at += 1  # a stray character: skip it
                continue
            for group in (2, 3, 4):
                if am.group(group) is not None:
                    attributes.append(Attribute(am.group(1).lower(), am.group(group),
                                                am.start(group), am.end(group)))
                    break
            else:
                attributes.append(Attribute(am.group(1).lower(), b"", am.end(), am.end()))
            at = am.end()
        tags.append(ImgTag(m.start(), at, tuple(attributes)))
    return tags


def _small(value: bytes) -> bool:
    m = _DIMENSION.match(value)
    return m is not None and float(m.group(1)) <= 1


_STYLE_SIZE = re.compile(rb"(?<![-\w])(?:width|height)\s*:\s*([0-9.]+)\s*px", re.IGNORECASE)


def _sized(tag: ImgTag, style: Attribute) -> bool:
    """Whether the image declares a real size (hidden icons toggled by CSS, like MJML's
    accordion arrows, are not pixels)."""
    sizes = [a.value for a in (tag.get(b"width"), tag.get(b"height")) if a is not None]
    sizes += _STYLE_SIZE.findall(style.value)
    return any(not _small(v) for v in sizes)


def _matches(url: str, pattern: str) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    want_host, _, want_path = pattern.lower().partition("/")
    if want_host.startswith("*."):
        host_ok = host == want_host[2:] or host.endswith(want_host[1:])
    else:
        host_ok = host == want_host
    return host_ok and parts.path.lower().startswith("/" + want_path)


def classify(tag: ImgTag, patterns: Sequence[str]) -> Pixel | None:
    src = tag.get(b"src")
    if src is None or not src.value.strip():
        return None
    url = src.value.strip().decode("ascii", "replace").replace("&amp;", "&")
    if url.lower().startswith(("data:", "cid:")):
        return None
    if any(_matches(url, p) for p in patterns):
        return Pixel(tag, url, "tenant-pattern")
    host = (urlsplit(url).hostname or "").lower() if "//" in url else ""
    if any(host == h or host.endswith("." + h) for h in KNOWN_HOSTS):
        return Pixel(tag, url, "known-host")
    width, height = tag.get(b"width"), tag.get(b"height")
    if width is not None and height is not None and _small(width.value) and \
            _small(height.value):
        return Pixel(tag, url, "1x1")
    style = tag.get(b"style")
    if style is not None and _HIDDEN_STYLE.search(style.value) and not _sized(tag, style):
        return Pixel(tag, url, "hidden")
    if KNOWN_PATHS.search(urlsplit(url).path.encode("ascii", "replace")):
        return Pixel(tag, url, "known-path")
    return None


def find(html: bytes, patterns: Sequence[str] = ()) -> list[Pixel]:
    return [p for p in (classify(t, patterns) for t in img_tags(html)) if p is not None]


def rewrite(html: bytes, pixels: Sequence[Pixel], replacements: Sequence[bytes | None]
            ) -> bytes:
    """Each pixel's `src` (and `srcset`) set to its replacement, or the whole tag removed
    (None). Every other byte stays."""
    edits: list[tuple[int, int, bytes]] = []
    for pixel, new in zip(pixels, replacements, strict=True):
        if new is None:
            edits.append((pixel.tag.start, pixel.tag.end, b""))
            continue
        for name in (b"src", b"srcset"):
            attr = pixel.tag.get(name)
            if attr is not None:
                edits.append((attr.start, attr.end, new))
    out, at = [], 0
    for start, end, new in sorted(edits):
        out.append(html[at:start])
        out.append(new)
        at = end
    out.append(html[at:])
    return b"".join(out)
