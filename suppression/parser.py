"""The parser process of a large import (see `parallel`): settings and then the file's
bytes on stdin, batches of rows on stdout, each one a length-prefixed pickle; `None` ends
them, an exception object says why it stopped."""

from __future__ import annotations

import pickle
import sys
from collections.abc import Iterator
from typing import BinaryIO

from suppression.bulk import parse_batches
from suppression.digest import Digester
from suppression.formats import decoded_lines, read
from suppression.parallel import FRAME, frame
from suppression.store import SuppressionStore


def _settings(stdin: BinaryIO) -> tuple:  # type: ignore[type-arg]
    size = FRAME.unpack(stdin.read(FRAME.size))[0]
    return pickle.loads(stdin.read(size))  # type: ignore[no-any-return]


def _chunks(stdin: BinaryIO) -> Iterator[bytes]:
    while chunk := stdin.read1(1 << 20):  # type: ignore[attr-defined]
        yield chunk


def main() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    key, key_id, defaults, fmt, now, from_line = _settings(stdin)
    store = SuppressionStore(Digester(key, key_id))
    try:
        items = read(decoded_lines(_chunks(stdin)), defaults, fmt)
        for batch in parse_batches(items, store, now, from_line):
            stdout.write(frame(batch))
        stdout.write(frame(None))
    except Exception as exc:  # noqa: BLE001 - the parent raises it
        stdout.write(frame(exc))
    stdout.flush()


if __name__ == "__main__":
    main()
