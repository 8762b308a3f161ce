"""Parsing a large file in a second process while this one writes.

Parsing, the canonical form and the digest cost about as much per row as the database
write, and one Python process does both on one core. A file larger than `PARALLEL_FROM`
bytes is therefore parsed by a child process (`python -m suppression.parser`): this
process streams the file's bytes to its stdin and writes the batches of rows it sends back
on stdout. Batches come in file order, so "all or nothing per batch" and resuming from a
line mean exactly what they mean in-process.

The child is a plain subprocess, not `multiprocessing`, so nothing depends on how the
embedding program's main module is written. The digest key goes to it on its stdin, never
in its arguments or environment.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import struct
import sys
from collections.abc import AsyncIterator, Iterable, Iterator
from itertools import chain
from pathlib import Path

from suppression.bulk import Parsed, parse_batches
from suppression.digest import Digester
from suppression.formats import Defaults, Format, decoded_lines, read
from suppression.store import SuppressionStore

PARALLEL_FROM = 8 << 20  # bytes; smaller files are parsed in-process (no start-up cost)
FRAME = struct.Struct("!Q")  # the length of each pickled message that follows
_LIBRARY_ROOT = str(Path(__file__).resolve().parents[1])


class ParserFailed(RuntimeError):
    """The parser process stopped without finishing (what it said is in the message)."""


def peek(chunks: Iterable[bytes], limit: int) -> tuple[list[bytes], Iterator[bytes], bool]:
    """The first chunks up to `limit` bytes, the rest, and whether there is more."""
    rest = iter(chunks)
    head: list[bytes] = []
    size = 0
    for chunk in rest:
        head.append(chunk)
        size += len(chunk)
        if size > limit:
            return head, rest, True
    return head, rest, False


def frame(message: object) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return FRAME.pack(len(data)) + data


async def parse_elsewhere(chunks: Iterable[bytes], defaults: Defaults, fmt: Format | None,
                          digester: Digester, now: int,
                          from_line: int = 0) -> AsyncIterator[Parsed]:
    """The batches of `parse_batches`, made by a child process from these bytes."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_LIBRARY_ROOT,
                                                      env.get("PYTHONPATH")]))
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "suppression.parser", env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    assert child.stdin is not None and child.stdout is not None
    settings = (digester.key, digester.key_id, defaults, fmt, now, from_line)
    feeding = asyncio.create_task(_feed(child.stdin, frame(settings), chunks))
    finished = False
    try:
        while True:
            try:
                size = FRAME.unpack(await child.stdout.readexactly(FRAME.size))[0]
                message = await asyncio.to_thread(
                    pickle.loads, await child.stdout.readexactly(size))
            except asyncio.IncompleteReadError:
                raise ParserFailed(await _why(child)) from None
            if message is None:
                break
            if isinstance(message, BaseException):
                raise message
            yield message
        await feeding
        finished = True
    finally:
        feeding.cancel()
        # A child that sent its last batch exits by itself: killing it then raced asyncio's
        # child watcher (Popen.send_signal reaps an exited child first, and the watcher
        # then logs "Unknown child process pid ... returncode 255"). Kill only one that is
        # being abandoned.
        if not finished and child.returncode is None:
            child.kill()
        await child.wait()


async def _feed(stdin: asyncio.StreamWriter, settings: bytes, chunks: Iterable[bytes]) -> None:
    """The settings, then the file's bytes; closing stdin ends them."""
    source = iter(chunks)
    try:
        stdin.write(settings)
        for chunk in source:
            stdin.write(chunk)
            await stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the child stopped; the reader says why
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()  # the generator's `with open(...)` closes the file
        stdin.close()


async def _why(child: asyncio.subprocess.Process) -> str:
    assert child.stderr is not None
    said = (await child.stderr.read()).decode(errors="replace").strip().splitlines()
    code = await child.wait()
    return f"the parser process stopped (exit {code}): {said[-1] if said else 'no message'}"


def batches_for(chunks: Iterable[bytes], defaults: Defaults, fmt: Format | None,
                store: SuppressionStore, now: int, from_line: int = 0,
                parallel_from: int = PARALLEL_FROM) -> Iterator[Parsed] | AsyncIterator[Parsed]:
    """In-process for a small file, a child process for one over `parallel_from` bytes."""
    head, rest, more = peek(chunks, parallel_from)
    if not more:
        return parse_batches(read(decoded_lines(head), defaults, fmt), store, now, from_line)
    return parse_elsewhere(chain(head, rest), defaults, fmt, store.digester, now, from_line)
