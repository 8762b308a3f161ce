"""Bulk import: a stream of items written in batches.

Each batch commits on its own (all or nothing), so a ten-million-row import never holds
the database's write lock for minutes, and memory stays flat. An import stopped half-way is
resumed by running it again (entries merge idempotently), or from the line it reports with
`from_line`. `strict` reads the whole file first and writes nothing if any row is bad.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from suppression.formats import Bad, DigestOnly, Good, Item, Skipped
from suppression.store import Row, SuppressionStore

BATCH = 5000
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


async def import_items(engine: AsyncEngine, store: SuppressionStore, items: Iterable[Item],
                       now: int, from_line: int = 0,
                       progress: Callable[[Report], None] | None = None) -> Report:
    report = Report()
    started = time.perf_counter()
    batch: list[Row] = []
    line = 0
    # One batch is written (in the driver's thread, or by the server) while the next one is
    # parsed; each batch still commits on its own, in order.
    writing: asyncio.Task[None] | None = None

    async def write(rows: list[Row], upto: int) -> None:
        async with engine.begin() as conn:
            report.written += await store.add_rows(conn, rows)
        report.last_line = upto
        if progress is not None:
            progress(report)

    async def flush() -> None:
        nonlocal writing, batch
        if writing is not None:
            await writing
            writing = None
        if batch:
            writing = asyncio.ensure_future(write(batch, line))
            batch = []
            await asyncio.sleep(0)  # let it start before parsing goes on

    try:
        for item in items:
            line = item.line
            if line < from_line:
                continue
            if isinstance(item, Skipped):
                if item.why != "blank line":
                    report.rows += 1
                    report.skipped += 1
                continue
            report.rows += 1
            if isinstance(item, Bad):
                report.refuse(item)
            elif isinstance(item, Good):
                batch.append(store.row(item.entry, now))
            else:
                bad = check_digest(item, store.digester.key_id)
                if bad is not None:
                    report.refuse(bad)
                else:
                    batch.append((item.scope, item.digest, item.kind.value, None,
                                  item.reason.value, item.source, item.created_at,
                                  item.expires_at, item.note, item.created_by, now))
            if len(batch) >= BATCH:
                await flush()
        await flush()
        await flush()  # the last batch
    finally:
        if writing is not None and not writing.done():
            writing.cancel()
    report.last_line = line
    report.seconds = time.perf_counter() - started
    return report

