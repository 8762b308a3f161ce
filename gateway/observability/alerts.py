"""Alerts for ops: log events marked `alert="ops"`, and what the periodic checks find, posted
as JSON to `[alerts] webhook_url` (Slack, PagerDuty, Alertmanager's webhook receiver...).

One handler on the root logger picks the marked records, so every part of the gateway alerts
the same way: `log.error("...", extra={"alert": "ops", ...})`. The same alert (logger and
event) is sent at most once per `repeat_minutes`. Records carry ids and counts only (see
logs.py), so neither do alerts. Delivery is best effort, in the background, and never
blocks the code that logged: the log line is the record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from gateway.config import Config
from gateway.observability.logs import JsonFormatter

log = logging.getLogger("gateway.alerts")
_QUEUE_LIMIT = 1000


class AlertHandler(logging.Handler):
    """Queues the records marked for ops (from any thread) for the sender task."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[dict[str, Any]],
                 repeat_seconds: float) -> None:
        super().__init__(logging.WARNING)
        self._loop = loop
        self._queue = queue
        self._repeat = repeat_seconds
        self._last: dict[tuple[str, str], float] = {}
        self._format = JsonFormatter()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "alert", None) != "ops":
            return
        key = (record.name, record.getMessage())
        now = time.monotonic()
        if now - self._last.get(key, -self._repeat) < self._repeat:
            return
        self._last[key] = now
        payload = json.loads(self._format.format(record))
        payload.pop("traceback", None)
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._loop.call_soon_threadsafe(self._put, payload)

    def _put(self, payload: dict[str, Any]) -> None:
        if self._queue.qsize() < _QUEUE_LIMIT:
            self._queue.put_nowait(payload)


class Alerts:
    def __init__(self, config: Config, deferred_since: Callable[[datetime], Awaitable[int]],
                 cert_days: Callable[[], dict[str, float]]) -> None:
        self._config = config.alerts
        self._deferred_since = deferred_since  # copies deferred since before a time
        self._cert_days = cert_days  # () -> {listener: days left on its certificate}
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._handler: AlertHandler | None = None
        self._task: asyncio.Task[None] | None = None
        self.sent = 0

    async def start(self) -> None:
        if not self._config.webhook_url:
            return
        self._handler = AlertHandler(asyncio.get_running_loop(), self._queue,
                                     self._config.repeat_minutes * 60)
        logging.getLogger().addHandler(self._handler)
        self._task = asyncio.create_task(self._send_forever(), name="alerts")

    async def stop(self) -> None:
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
            self._handler = None
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), 5)  # what is queued goes out
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _send_forever(self) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            while True:
                payload = await self._queue.get()
                try:
                    for attempt in range(3):
                        try:
                            response = await client.post(self._config.webhook_url,
                                                         json={"source": "ocg", **payload})
                            if response.status_code < 500:
                                self.sent += 1
                                break
                        except httpx.HTTPError:
                            pass
                        await asyncio.sleep(2 ** attempt)
                finally:
                    self._queue.task_done()

    async def check_once(self, now: datetime | None = None) -> int:
        """The periodic checks; each finding is logged for ops (and so alerted)."""
        now = now or datetime.now(UTC)
        found = 0
        stuck_before = now - timedelta(minutes=self._config.queue_stuck_minutes)
        stuck = await self._deferred_since(stuck_before)
        if stuck:
            found += 1
            log.error("delivery queue stuck: copies deferred for too long", extra={
                "copies": stuck, "minutes": self._config.queue_stuck_minutes, "alert": "ops"})
        for listener, days in self._cert_days().items():
            if days < self._config.certificate_days:
                found += 1
                log.error(f"{listener.upper()} TLS certificate expires soon", extra={
                    "days_left": round(days, 1), "alert": "ops"})
        return found
