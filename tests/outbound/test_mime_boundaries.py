"""Delimiter lines found by a literal search are the ones the MULTILINE regex found before
issue 25 (kept here as the oracle), over generated bodies and the CPython email corpus."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.outbound.mime import _boundary_positions


def regex_positions(body: bytes, start: int, end: int, boundary: bytes
                    ) -> list[tuple[int, int, bool]]:
    found = []
    pattern = re.compile(rb"(?:^|(?<=\r\n))--" + re.escape(boundary) + rb"(--)?[ \t]*(?:\r\n|$)",
                         re.MULTILINE)
    for m in pattern.finditer(body, start, end):
        found.append((m.start(), m.end(), m.group(1) is not None))
        if m.group(1) is not None:
            break
    return found


PIECES = [b"--b", b"--b--", b"--bb", b"\r\n", b"\n", b"x", b" ", b"\t", b"-", b"b", b"--",
          b"--b \r\n", b"text --b\r\n"]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40).map(b"".join), st.integers(0, 5),
       st.integers(0, 5))
def test_generated(body: bytes, cut_start: int, cut_end: int):
    start, end = min(cut_start, len(body)), max(0, len(body) - cut_end)
    assert _boundary_positions(body, start, end, b"b") == regex_positions(body, start, end,
                                                                          b"b")


def test_corpus():
    root = Path("/usr/lib/python3.11/test/test_email/data")
    tried = 0
    for path in root.glob("*"):
        raw = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        for boundary in set(re.findall(rb'boundary="?([^";\r\n]+)', raw)):
            tried += 1
            assert _boundary_positions(raw, 0, len(raw), boundary) == regex_positions(
                raw, 0, len(raw), boundary), path.name
    assert tried > 20
