"""Pixels taken over in real-world HTML: 20 templates (Foundation for Emails via inky, MJML)
with campaign-tool pixels added, in every transfer encoding and charset. The decoded output
differs from the input only in the detected pixels' src/srcset."""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import itertools
from pathlib import Path

import pytest

from gateway.outbound.footer import FooterPlan, PixelPolicy
from gateway.outbound.mime import body_parts
from gateway.pixels.detect import find

FIXTURES = sorted((Path(__file__).parents[1] / "fixtures" / "html").glob("*.html"))
PATTERNS = ("track.acme-tools.example/open",)
# (tag, its original src/srcset values) - what campaign tools put in
AFTER_BODY = [
    ('<!--[if mso]><img src="https://t.list-manage.com/track/open.php?u=9&amp;id=7" '
     'alt=""><![endif]-->', ["https://t.list-manage.com/track/open.php?u=9&amp;id=7"]),
    ("<IMG SRC=https://px.example.net/e.gif WIDTH=1 HEIGHT=1>", ["https://px.example.net/e.gif"]),
]
BEFORE_END = [
    ('<img src="https://track.acme-tools.example/open/abc?u=1" alt="" '
     'srcset="https://track.acme-tools.example/open/abc?u=1 1x">',
     ["https://track.acme-tools.example/open/abc?u=1",
      "https://track.acme-tools.example/open/abc?u=1 1x"]),
    ('<img src="https://stats.example.org/i.png" style="display:none !important" alt="">',
     ["https://stats.example.org/i.png"]),
]


def inject(html: str) -> tuple[str, str]:
    """(html with pixels, the same with each pixel's src/srcset as slot values 0..3)."""
    open_end = html.lower().index(">", html.lower().index("<body")) + 1
    close = html.lower().rindex("</body>")
    head, middle, tail = html[:open_end], html[open_end:close], html[close:]
    with_pixels = head + "".join(t for t, _ in AFTER_BODY) + middle + \
        "".join(t for t, _ in BEFORE_END) + tail
    expected_tags = []
    for n, (tag, values) in enumerate(AFTER_BODY + BEFORE_END):
        for value in sorted(values, key=len, reverse=True):  # srcset holds the src
            tag = tag.replace(f'"{value}"', f'"https://links.example/p/T{n}"').replace(
                f"={value} ", f"=https://links.example/p/T{n} ")
        expected_tags.append(tag)
    expected = head + "".join(expected_tags[:2]) + middle + "".join(expected_tags[2:]) + tail
    return with_pixels, expected


def encode(text: str, charset: str, cte: str) -> bytes:
    raw = text.encode(charset, "xmlcharrefreplace")
    if cte == "base64":
        return base64.encodebytes(raw).replace(b"\n", b"\r\n")
    if cte == "quoted-printable":
        return binascii.b2a_qp(raw.replace(b"\r\n", b"\n")).replace(b"\n", b"\r\n")
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def message(html: str, charset: str, cte: str) -> bytes:
    if cte == "7bit":
        html = html.encode("ascii", "xmlcharrefreplace").decode()
    return (f"From: a@acme.example\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/html; charset={charset}\r\n"
            f"Content-Transfer-Encoding: {cte}\r\n\r\n").encode() + encode(html, charset, cte)


def html_of(raw: bytes) -> str:
    part = email.message_from_bytes(raw, policy=email.policy.default)
    return part.get_content().replace("\r\n", "\n")


def take_over(raw: bytes, mode: str = "proxy") -> tuple[FooterPlan, bytes]:
    head_end = raw.index(b"\r\n\r\n") + 2
    plan = FooterPlan(raw, head_end, body_parts(raw, head_end), "", "",
                      PixelPolicy(mode, PATTERNS))
    values = {name: f"https://links.example/p/T{name.rsplit('-', 1)[1]}".encode()
              for name in plan.slots if name.startswith("pixel-")}
    return plan, plan.render("https://links.example/u/x", values)


def test_the_templates_have_no_pixel_of_their_own():
    assert len(FIXTURES) >= 20
    for path in FIXTURES:
        assert find(path.read_bytes()) == [], path.name


CASES = list(itertools.product(FIXTURES, ["7bit", "8bit", "quoted-printable", "base64"],
                               ["utf-8", "iso-8859-1", "shift_jis"]))


@pytest.mark.parametrize("path, cte, charset", CASES,
                         ids=[f"{p.stem}-{c}-{s}" for p, c, s in CASES])
def test_only_the_pixels_src_and_srcset_change(path: Path, cte: str, charset: str):
    with_pixels, expected = inject(path.read_text())
    raw = message(with_pixels, charset, cte)
    plan, out = take_over(raw)
    assert len(plan.pixels) == 4
    assert plan.pixels[0] == "https://t.list-manage.com/track/open.php?u=9&id=7"
    before = html_of(message(expected, charset, cte))
    assert html_of(out) == before
    assert all(len(line) <= 998 for line in out.split(b"\r\n"))


def test_strip_removes_the_pixel_tags_and_nothing_else():
    with_pixels, _ = inject(FIXTURES[0].read_text())
    _, out = take_over(message(with_pixels, "utf-8", "8bit"), "strip")
    stripped = with_pixels
    for tag, _ in AFTER_BODY + BEFORE_END:
        tag = tag.removeprefix("<!--[if mso]>").removesuffix("<![endif]-->")
        stripped = stripped.replace(tag, "")
    assert html_of(out) == stripped.replace("\r\n", "\n")


def test_aggregate_gives_every_pixel_one_campaign_slot():
    with_pixels, _ = inject(FIXTURES[1].read_text())
    raw = message(with_pixels, "utf-8", "quoted-printable")
    head_end = raw.index(b"\r\n\r\n") + 2
    plan = FooterPlan(raw, head_end, body_parts(raw, head_end), "", "",
                      PixelPolicy("aggregate", PATTERNS))
    assert plan.slots == ["pixel-aggregate", "unsubscribe"] or plan.slots == ["pixel-aggregate"]
    assert plan.pixels == []  # no tracker URL is kept: nothing can be forwarded


def test_a_message_without_pixels_and_footer_keeps_every_byte():
    raw = message(FIXTURES[2].read_text(), "utf-8", "base64")
    _, out = take_over(raw)
    assert out == raw
