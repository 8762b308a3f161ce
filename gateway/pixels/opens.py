"""Open events: anonymized at once, buffered in memory, written in batches.

`record()` only appends to a list; a background task writes what gathered every
`pixels.flush_interval` seconds (one transaction: the `opens` rows and one `opened` tenant
event each, which the webhook dispatcher fans out). A crash loses at most that interval's
opens; nothing about them is on disk before that, and nothing ever names an IP.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway import background
from gateway.observability import metrics
from gateway.store.schema import opens

log = logging.getLogger("gateway.pixels")
MAX_BUFFER = 100_000  # opens waiting for a write; beyond it they are counted and dropped


class OpenRecorder:
    def __init__(self, engine: AsyncEngine, interval: float) -> None:
        self._engine = engine
        self._interval = interval
        self._rows: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._writing = asyncio.Lock()  # one flush at a time (the timer's, stop's, a test's)
        self.written = 0
        self.dropped = 0

    def record(self, row: dict[str, Any]) -> None:
        if len(self._rows) >= MAX_BUFFER:
            self.dropped += 1
            return
        self._rows.append(row)
        metrics.PIXEL_OPENS.labels(row["verdict"]).inc()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._flush_forever(), name="open-events")

    async def stop(self) -> None:
        await background.stop(self._task)
        self._task = None
        await self.flush()

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception:
                log.exception("open events not written; kept for the next round")

    async def flush(self) -> int:
        """Write what gathered. A flush already writing is waited for first, so when this
        returns every open recorded before it is stored (not merely taken by the timer's
        flush, still on its way). Rows of a write that fails or is cancelled (stop()) go
        back for the next one."""
        async with self._writing:
            rows, self._rows = self._rows, []
            if not rows:
                return 0
            try:
                async with self._engine.begin() as conn:
                    await _insert(conn, rows)
            except BaseException:
                self._rows[:0] = rows[:MAX_BUFFER - len(self._rows)]
                raise
            self.written += len(rows)
            return len(rows)


OPEN_COLUMNS = ("tenant_id", "at", "queue_id", "campaign", "recipient_digest", "network",
                "ua_family", "machine", "signals", "verdict")
EVENT_COLUMNS = ("tenant_id", "at", "kind", "queue_id", "recipient_digest", "detail")


def _event(r: dict[str, Any]) -> tuple[Any, ...]:
    """An open names its recipient by digest only (none in aggregate mode)."""
    detail = {"campaign": r["campaign"], "machine": r["machine"], "verdict": r["verdict"],
              "ua_family": r["ua_family"], "signals": r["signals"],
              "recipient_digest": r["recipient_digest"]}
    return (r["tenant_id"], r["at"], "opened", r["queue_id"], r["recipient_digest"],
            json.dumps(detail))


async def _insert(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """One batch, bound in the driver (aiosqlite's thread, asyncpg's COPY): building
    thousands of rows through SQLAlchemy on the event loop would stall the pixel answers."""
    await conn.execute(sa.text("SELECT 1"))  # the transaction is open on the driver too
    raw: Any = (await conn.get_raw_connection()).driver_connection
    opens_rows = [tuple(r[c] for c in OPEN_COLUMNS) for r in rows]
    event_rows = [_event(r) for r in rows]
    if conn.dialect.name == "sqlite":
        def text_time(values: tuple[Any, ...]) -> tuple[Any, ...]:
            at: datetime = values[1]
            return (values[0], at.strftime("%Y-%m-%d %H:%M:%S.%f"), *values[2:])
        await raw.executemany(
            f"INSERT INTO opens ({', '.join(OPEN_COLUMNS)}) VALUES "
            f"({', '.join('?' * len(OPEN_COLUMNS))})", [text_time(r) for r in opens_rows])
        await raw.executemany(
            f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES "
            f"({', '.join('?' * len(EVENT_COLUMNS))})", [text_time(r) for r in event_rows])
    else:
        await raw.copy_records_to_table("opens", records=opens_rows, columns=OPEN_COLUMNS)
        await raw.copy_records_to_table("events", records=event_rows, columns=EVENT_COLUMNS)


VERDICTS = ("human", "machine", "bot")
# an open's verdict; rows from before verdicts were kept say only `machine`
VERDICT = sa.func.coalesce(opens.c.verdict, sa.case((opens.c.machine.is_(True), "machine"),
                                                    else_="human"))


async def count_by_verdict(conn: AsyncConnection, *where: sa.ColumnElement[bool]
                           ) -> dict[str, int]:
    """Opens matching `where`, by verdict (each verdict present, 0 if none)."""
    found = {v: n for v, n in await conn.execute(
        sa.select(VERDICT, sa.func.count()).where(*where).group_by(VERDICT))}
    return {v: found.get(v, 0) for v in VERDICTS}


def open_row(tenant_id: int, queue_id: str | None, campaign: str, digest: str | None,
             network: str, ua_family: str, verdict: str, signals: tuple[str, ...]
             ) -> dict[str, Any]:
    """`machine` stays for readers of the older column: anything but a person."""
    return {"tenant_id": tenant_id, "at": datetime.now(UTC), "queue_id": queue_id,
            "campaign": campaign, "recipient_digest": digest, "network": network,
            "ua_family": ua_family, "machine": verdict != "human",
            "signals": ",".join(signals)[:100], "verdict": verdict}
