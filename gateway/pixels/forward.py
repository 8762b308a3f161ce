"""Proxy mode: the gateway tells the campaign tool's tracker that an open happened.

In the background, never delaying the GIF: a bounded queue and a few workers fetch the
original tracker URL through the guarded fetcher, with no client address (no
X-Forwarded-For, no Forwarded), a neutral user agent and a short timeout. A failure is
counted, never retried; a full queue drops (and counts) the fetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx

from gateway.net.fetch import FetchRefused, GuardedFetcher

log = logging.getLogger("gateway.pixels")
USER_AGENT = "Mozilla/5.0 (compatible; outreach-compliance-gateway image proxy)"


class Forwarder:
    def __init__(self, fetcher: GuardedFetcher, concurrency: int, queue: int) -> None:
        self._fetcher = fetcher
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize=queue)
        self._concurrency = concurrency
        self._workers: list[asyncio.Task[None]] = []
        self.forwarded = self.failed = self.refused = self.dropped = 0

    def submit(self, url: str) -> None:
        try:
            self._queue.put_nowait(url)
        except asyncio.QueueFull:
            self.dropped += 1

    async def start(self) -> None:
        self._workers = [asyncio.create_task(self._work(), name=f"pixel-forward-{i}")
                         for i in range(self._concurrency)]

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []
        await self._fetcher.close()

    async def drain(self) -> None:
        """Wait until every submitted fetch is done (tests)."""
        await self._queue.join()

    async def _work(self) -> None:
        while True:
            url = await self._queue.get()
            try:
                response = await self._fetcher.request(
                    "GET", url, headers={"User-Agent": USER_AGENT, "Accept": "image/*"})
                if response.status < 400:
                    self.forwarded += 1
                else:
                    self.failed += 1
            except FetchRefused:
                self.refused += 1
            except (httpx.HTTPError, OSError):
                self.failed += 1
            except Exception:
                self.failed += 1
                log.exception("pixel forward failed")
            finally:
                self._queue.task_done()
