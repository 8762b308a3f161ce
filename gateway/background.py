"""Background loops of a running gateway: each one a named task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import SQLAlchemyError

# what a round meets when the database is down, full or locked: worth a line, not a traceback
STORE_TROUBLE = (SQLAlchemyError, OSError)


async def stop(task: asyncio.Task[None] | None) -> None:
    """Cancel `task` and wait until it has finished."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


class Poller:
    """Runs rounds until stopped; sleeps `interval` after a round that handled fewer than
    `full`. A failed round is logged and retried: a loop that dies would silently stop the
    queue.

    Stopping lets the round in progress finish (within a deadline): a round cancelled half
    way has delivered copies without recording it, and they would be sent again.
    """

    def __init__(self, one_round: Callable[[], Awaitable[int]], *, full: int, interval: float,
                 log: logging.Logger, name: str) -> None:
        self._round = one_round
        self._full = full
        self._interval = interval
        self._log = log
        self._name = name
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self, deadline: float = 30.0) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), deadline)
        except TimeoutError:
            await stop(task)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                done = await self._round()
            except STORE_TROUBLE as exc:  # the store's trouble, not a bug: no traceback
                self._log.error("background round failed: the store did not answer; trying "
                                "again", extra={"round": self._name,
                                                "error": type(exc).__name__})
                done = 0
            except Exception:
                self._log.exception("background round failed; trying again")
                done = 0
            if done < self._full:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._interval)
