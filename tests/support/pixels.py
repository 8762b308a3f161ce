"""Pixels in HTML campaign mail, and the pixel URLs a relayed copy carries."""

from __future__ import annotations

import re

from tests.support import messages

PIXEL = re.compile(rb'src="(https://links\.gw\.test/p/([A-Za-z0-9_-]+))"')


def html_message(tracker: str, to: str = "alice@example.org", extra: str = "") -> bytes:
    head = messages.simple(to=to).split(b"\r\n\r\n", 1)[0].replace(
        b"text/plain", b"text/html")
    return head + (f"\r\n\r\n<html><body><p>Hi</p><img src=\"https://cdn.example/logo.png\" "
                   f"width=\"120\"><img src=\"{tracker}\" width=\"1\" height=\"1\">{extra}"
                   "</body></html>\r\n").encode()


async def sent_pixels(h, message: bytes, recipients: list[str]) -> list[tuple[bytes, str]]:
    before = len(h.sink.received)
    assert await h.send(message, recipients) == {}
    found = []
    for copy in h.sink.received[before:]:
        (match,) = PIXEL.findall(copy.content)
        found.append((copy.content, match[1].decode()))
    return found
