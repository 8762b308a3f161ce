"""Open events: anonymized at once, buffered in memory, written in batches.

`record()` only appends to a list; a background task writes what gathered every
`pixels.flush_interval` seconds (one transaction: the `opens` rows and one `opened` tenant
event each, which the webhook dispatcher fans out). A crash loses at most that interval's
opens; nothing about them is on disk before that, and nothing ever names an IP.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import background
from gateway.store.schema import events, opens

log = logging.getLogger("gateway.pixels")
MAX_BUFFER = 100_000  # opens waiting for a write; beyond it they are counted and dropped


class OpenRecorder:
    def __init__(self, engine: AsyncEngine, interval: float) -> None:
        self._engine = engine
        self._interval = interval
        self._rows: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.dropped = 0

    def record(self, row: dict[str, Any]) -> None:
        if len(self._rows) >= MAX_BUFFER:
            self.dropped += 1
            return
        self._rows.append(row)

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
        rows, self._rows = self._rows, []
        if not rows:
            return 0
        try:
            async with self._engine.begin() as conn:
                await conn.execute(opens.insert(), rows)
                await conn.execute(events.insert(), [{
                    "tenant_id": r["tenant_id"], "at": r["at"], "kind": "opened",
                    "queue_id": r["queue_id"], "recipient": None,
                    "detail": {"campaign": r["campaign"], "machine": r["machine"],
                               "ua_family": r["ua_family"], "signals": r["signals"],
                               "recipient_digest": r["recipient_digest"]},
                } for r in rows])
        except Exception:
            self._rows[:0] = rows[:MAX_BUFFER - len(self._rows)]
            raise
        self.written += len(rows)
        return len(rows)


def open_row(tenant_id: int, queue_id: str | None, campaign: str, digest: str | None,
             network: str, ua_family: str, machine: bool, signals: tuple[str, ...]
             ) -> dict[str, Any]:
    return {"tenant_id": tenant_id, "at": datetime.now(UTC), "queue_id": queue_id,
            "campaign": campaign, "recipient_digest": digest, "network": network,
            "ua_family": ua_family, "machine": machine, "signals": ",".join(signals)}
