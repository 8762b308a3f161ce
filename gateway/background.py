"""Background loops of a running gateway: each one a named task, stopped by cancelling it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable


async def stop(task: asyncio.Task[None] | None) -> None:
    """Cancel `task` and wait until it has finished."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


async def poll(one_round: Callable[[], Awaitable[int]], *, full: int, interval: float,
               log: logging.Logger) -> None:
    """Run rounds for ever; sleep `interval` after a round that handled fewer than `full`.

    A failed round is logged and retried: a loop that dies would silently stop the queue.
    """
    while True:
        try:
            done = await one_round()
        except Exception:
            log.exception("background round failed; trying again")
            done = 0
        if done < full:
            await asyncio.sleep(interval)
