"""Bulk import: a stream of items written in batches.

Each batch commits on its own (all or nothing), so a ten-million-row import never holds
the database's write lock for long, and memory stays flat. An import stopped half-way is
resumed by running it again (entries merge idempotently), or from the line it reports with
`from_line`. `strict` reads the whole file first and writes nothing if any row is bad.

Parsing makes batches (`parse_batches`, here or in a child process, see `parallel`);
`write_batches` writes them in order, one while the next is parsed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from suppression.formats import Bad, DigestOnly, Good, Item, Skipped
from suppression.store import Row, SuppressionStore

BATCH = 20_000  # rows per transaction: long enough to amortise, short for the write lock
KEEP_BAD = 1000  # bad rows listed in the report; the rest are counted


@dataclass(slots=True)
class Report:
    rows: int = 0  # data rows read
    written: int = 0  # distinct entries written (new or merged)
    skipped: int = 0  # rows that are not opt-outs (a listmonk subscriber still enabled)
    bad_count: int = 0
    bad: list[Bad] = field(default_factory=list)
    last_line: int = 0  # every row up to here is written
    seconds: float = 0.0

    def refuse(self, item: Bad) -> None:
        self.bad_count += 1
        if len(self.bad) < KEEP_BAD:
            self.bad.append(item)


def check_digest(item: DigestOnly, key_id: str) -> Bad | None:
    if item.key_id != key_id:
        return Bad(item.line, f"digest made under key {item.key_id[:20]}, not this "
                              f"installation's {key_id}: it can only go back where it came from")
    return None


@dataclass(slots=True)
class Parsed:
    """One batch from the parser: rows ready to write, and what the report needs."""

    rows: list[Row]
    upto: int  # the last line read into this batch
    read: int = 0  # data rows read
    skipped: int = 0
    bad: list[Bad] = field(default_factory=list)


def parse_batches(items: Iterable[Item], store: SuppressionStore, now: int,
                  from_line: int = 0, size: int = BATCH) -> Iterator[Parsed]:
    """Items as batches of rows (in this process, or in a parser process: see `parallel`).
    The last batch may be empty of rows but still carries the counts."""
    batch = Parsed([], 0)
    key_id = store.digester.key_id
    for item in items:
        batch.upto = item.line
        if item.line < from_line:
            continue
        if isinstance(item, Skipped):
            if item.why != "blank line":
                batch.read += 1
                batch.skipped += 1
            continue
        batch.read += 1
        if isinstance(item, Good):
            batch.rows.append(store.row(item.entry, now))
        elif isinstance(item, Bad):
            batch.bad.append(item)
        else:
            bad = check_digest(item, key_id)
            if bad is not None:
                batch.bad.append(bad)
            else:
                batch.rows.append((item.scope, item.digest, item.kind.value, None,
                                   item.reason.value, item.source, item.created_at,
                                   item.expires_at, item.note, item.created_by, now))
        if len(batch.rows) >= size:
            yield batch
            batch = Parsed([], batch.upto)
    yield batch


async def write_batches(engine: AsyncEngine, store: SuppressionStore,
                        batches: Iterable[Parsed] | AsyncIterator[Parsed],
                        progress: Callable[[Report], None] | None = None) -> Report:
    """Write each batch in its own transaction, in order. One batch is written (in the
    driver's thread, or by the server) while the next one is parsed."""
    report = Report()
    started = time.perf_counter()
    writing: asyncio.Task[None] | None = None

    async def write(batch: Parsed) -> None:
        if batch.rows:
            async with engine.begin() as conn:
                report.written += await store.add_rows(conn, batch.rows)
        report.last_line = batch.upto
        if progress is not None:
            progress(report)

    async def each() -> AsyncIterator[Parsed]:
        if isinstance(batches, AsyncIterator):
            async for batch in batches:
                yield batch
        else:
            for batch in batches:
                yield batch

    try:
        async for batch in each():
            report.rows += batch.read
            report.skipped += batch.skipped
            for bad in batch.bad:
                report.refuse(bad)
            if writing is not None:
                await writing
            writing = asyncio.ensure_future(write(batch))
            await asyncio.sleep(0)  # let it start before parsing goes on
        if writing is not None:
            await writing
    finally:
        if writing is not None and not writing.done():
            writing.cancel()
        close = getattr(batches, "aclose", None)
        if close is not None:
            await close()  # a parser process stops now, not when garbage-collected
    report.seconds = time.perf_counter() - started
    return report

