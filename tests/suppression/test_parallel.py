"""A large import is parsed by a child process: it must give exactly the batches the
in-process parser gives (rows, bad rows with their lines, counts), for messy input too, and
hand its errors back."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import pytest

from suppression.bulk import Parsed
from suppression.digest import Digester
from suppression.entries import Reason
from suppression.formats import Defaults, FileError
from suppression.parallel import batches_for
from suppression.store import SuppressionStore

NOW = 1_700_000_000
D = Defaults(scope=3, reason=Reason.BOUNCE, source="import", now=NOW)
STORE = SuppressionStore(Digester(secrets.token_bytes(32), "test-key"))


def messy_file(rows: int) -> bytes:
    lines = [b"\xef\xbb\xbfemail,created,reason,status"]  # BOM; SendGrid's bounces
    for i in range(rows):
        if i % 997 == 0:
            lines.append(b"not-an-address,1700000000,x,y")
        elif i % 991 == 0:
            lines.append(b"")
        elif i % 983 == 0:
            lines.append(b"caf\xe9@example.com,1,x,y")  # Latin-1, not UTF-8
        elif i % 977 == 0:
            lines.append(b"x" * 5000 + b"@example.com,1,x,y")
        elif i % 971 == 0:
            lines.append(b'"quoted, with a\nnewline",1,x,y')
        else:
            lines.append(f"User{i % 40_000}+t{i % 3}@D{i % 50}.example.com,{NOW + i},"
                         "550 5.1.1 no,bounce".encode())
    return b"\r\n".join(lines[: len(lines) // 2]) + b"\n" + b"\n".join(lines[len(lines) // 2:])


def chunked(data: bytes, size: int = 65_536) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


async def collect(batches: Iterator[Parsed] | AsyncIterator[Parsed]) -> list[Parsed]:
    if isinstance(batches, AsyncIterator):
        return [batch async for batch in batches]
    return list(batches)


def summary(batches: list[Parsed]) -> tuple:
    return ([row for b in batches for row in b.rows], [bad for b in batches for bad in b.bad],
            sum(b.read for b in batches), sum(b.skipped for b in batches), batches[-1].upto)


@pytest.mark.parametrize("from_line", [0, 12_345])
async def test_the_child_process_parses_exactly_as_this_one(from_line: int):
    data = messy_file(60_000)
    here = await collect(batches_for(chunked(data), D, None, STORE, NOW, from_line,
                                     parallel_from=len(data) + 1))
    there_batches = batches_for(chunked(data), D, None, STORE, NOW, from_line, parallel_from=0)
    assert isinstance(there_batches, AsyncIterator)  # really in a child process
    there = await collect(there_batches)
    assert summary(there) == summary(here)
    rows, bad, read, _, upto = summary(there)
    assert upto == 60_001 + 61  # the last line: each quoted row spans two
    messages = {b.message.split(":")[0] for b in bad}
    assert {"not UTF-8", "5012 characters; an address has at most 254."} <= messages
    assert len(bad) >= 3 * 55 * (60_000 - from_line) // 60_000
    assert 30_000 < len(rows) < read and all(r[0] == 3 and r[4] == "bounce" for r in rows)


async def test_the_child_process_reports_an_unknown_layout_as_this_one_does():
    data = b"who,what,when\n" + b"a@example.com,x,y\n" * 10
    with pytest.raises(FileError):
        await collect(batches_for(chunked(data, 16), D, None, STORE, NOW, parallel_from=0))
