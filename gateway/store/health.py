"""Can the store take writes? Asked at MAIL FROM, so new mail is refused before it is relayed.

Without this, a store that cannot commit turns every accepted copy into two: the copy is
relayed, its record cannot be committed, the client gets a 4xx and sends it again. Like
Postfix's `queue_minfree`, the gateway refuses new mail (`452 4.3.1`) while:

- the free space of the SQLite database's directory is under `database.min_free_mb`
  (statvfs, at most once a second); or
- a commit has failed and no heartbeat write has succeeded since (the only signal on
  PostgreSQL, whose disk the gateway cannot see; also a file size limit, a read-only file).

No commit is added per message: the group commit reports its outcome here, and only while
the store is failing does a heartbeat write (once a second) look for its recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

log = logging.getLogger("gateway.store")

_STATVFS_EVERY = 1.0  # seconds
_HEARTBEAT_EVERY = 1.0



def sqlite_directory(url: str) -> Path | None:
    """The directory of an SQLite database file, or None (PostgreSQL, in-memory)."""
    if not url.startswith("sqlite") or ":///" not in url:
        return None
    path = url.split(":///", 1)[1]
    return None if not path or path == ":memory:" else Path(path).resolve().parent


class WriteHealth:
    def __init__(self, heartbeat_write: Callable[[], Awaitable[object]], directory: Path | None,
                 min_free_mb: int) -> None:
        self._heartbeat_write = heartbeat_write  # one small commit to the database
        self._directory = directory
        self._min_free = min_free_mb * 1024 * 1024
        self._failing = False
        self._space_ok = True
        self._space_checked = -_STATVFS_EVERY
        self._heartbeat: asyncio.Task[None] | None = None

    def writable(self) -> bool:
        """Cheap: no I/O but one statvfs a second, on SQLite only."""
        return not self._failing and self._enough_space()

    def _enough_space(self) -> bool:
        if self._directory is None or not self._min_free:
            return True
        now = time.monotonic()
        if now - self._space_checked >= _STATVFS_EVERY:
            self._space_checked = now
            try:
                stat = os.statvfs(self._directory)
            except OSError:
                self._space_ok = False
            else:
                was, self._space_ok = self._space_ok, stat.f_bavail * stat.f_frsize \
                    >= self._min_free
                if was and not self._space_ok:
                    log.error("free space under database.min_free_mb: new mail refused",
                              extra={"alert": "ops", "min_free_mb": self._min_free >> 20})
        return self._space_ok

    def commit_failed(self) -> None:
        if self._failing:
            return
        self._failing = True
        log.error("the store cannot take writes: new mail refused until it can",
                  extra={"alert": "ops"})
        with contextlib.suppress(RuntimeError):  # no running loop: the CLI, nothing to guard
            self._heartbeat = asyncio.get_running_loop().create_task(
                self._beat_until_healthy(), name="store-heartbeat")

    def commit_succeeded(self) -> None:
        if self._failing:
            self._failing = False
            log.warning("the store takes writes again: new mail accepted")

    async def _beat_until_healthy(self) -> None:
        while self._failing:
            await asyncio.sleep(_HEARTBEAT_EVERY)
            if not self._failing:
                return
            try:
                await self._heartbeat_write()
            except Exception as exc:  # any failure means: still not writable
                log.info("store heartbeat failed", extra={"error": type(exc).__name__})
                continue
            self.commit_succeeded()

    async def stop(self) -> None:
        task, self._heartbeat = self._heartbeat, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
