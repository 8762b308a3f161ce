"""Fixed-window counters shared by every node: in PostgreSQL (or SQLite), or in Redis.

`hit` adds to several counters at once and either counts all of them or none: if one would
go over its limit, nothing is counted and the first such counter is returned. Concurrent
nodes serialise on each counter's row (or on Redis running the script), so two nodes never
both take the last slot.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.schema import rate_counters


@dataclass(frozen=True, slots=True)
class Count:
    """One counter to add to: `key` in the window starting at `start` (unix seconds)."""

    key: str
    start: int
    seconds: int  # the window's length
    amount: int
    limit: int  # 0: counted, never refused
    keep: int = 0  # seconds the count is kept past its window (to be read later)

    @property
    def resets_at(self) -> int:
        return self.start + self.seconds


class Counters(Protocol):
    async def hit(self, counts: Sequence[Count]) -> Count | None: ...

    async def peek(self, counts: Sequence[Count]) -> Count | None: ...

    async def used(self, counts: Sequence[Count]) -> list[int]: ...

    async def close(self) -> None: ...


class _Over(Exception):
    def __init__(self, count: Count) -> None:
        self.count = count


class DatabaseCounters:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def hit(self, counts: Sequence[Count]) -> Count | None:
        if not counts:
            return None
        insert = postgresql.insert if self._engine.dialect.name == "postgresql" \
            else sqlite.insert
        try:
            async with self._engine.begin() as conn:
                for c in counts:
                    new = insert(rate_counters).values(
                        key=c.key, window_start=c.start, used=c.amount,
                        expires_at=c.resets_at + c.keep)
                    add = new.on_conflict_do_update(
                        index_elements=["key", "window_start"],
                        set_={"used": rate_counters.c.used + new.excluded.used},
                    ).returning(rate_counters.c.used)
                    total = (await conn.execute(add)).scalar_one()
                    if c.limit and total > c.limit:
                        raise _Over(c)  # rolls every increment of this hit back
        except _Over as over:
            return over.count
        return None

    async def peek(self, counts: Sequence[Count]) -> Count | None:
        for c, used in zip(counts, await self.used(counts), strict=True):
            if c.limit and used + c.amount > c.limit:
                return c
        return None

    async def used(self, counts: Sequence[Count]) -> list[int]:
        """What each counter holds now (0 for one never added to), in one read."""
        if not counts:
            return []
        async with self._engine.connect() as conn:
            rows = await conn.execute(sa.select(
                rate_counters.c.key, rate_counters.c.window_start, rate_counters.c.used
            ).where(sa.tuple_(rate_counters.c.key, rate_counters.c.window_start).in_(
                [(c.key, c.start) for c in counts])))
            current = {(r.key, r.window_start): r.used for r in rows}
        return [int(current.get((c.key, c.start), 0)) for c in counts]

    async def close(self) -> None:
        return None


# Checks every counter, then adds to all of them, in one atomic step.
_HIT = """
local n = #KEYS
for i = 1, n do
  local total = tonumber(redis.call('GET', KEYS[i]) or '0') + tonumber(ARGV[i])
  local limit = tonumber(ARGV[n + i])
  if limit > 0 and total > limit then return i end
end
for i = 1, n do
  redis.call('INCRBY', KEYS[i], ARGV[i])
  redis.call('EXPIRE', KEYS[i], ARGV[2 * n + i])
end
return 0
"""


class RedisCounters:
    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        self._redis: Any = aioredis.Redis.from_url(url)
        self._script: Any = self._redis.register_script(_HIT)

    @staticmethod
    def _key(c: Count) -> str:
        return f"ocg:rate:{c.key}:{c.start}"

    async def hit(self, counts: Sequence[Count]) -> Count | None:
        if not counts:
            return None
        now = int(time.time())  # a key lives until its window is over, and a minute more
        args = [c.amount for c in counts] + [c.limit for c in counts] + \
            [max(c.resets_at - now, 0) + 60 + c.keep for c in counts]
        over = int(await self._script(keys=[self._key(c) for c in counts], args=args))
        return counts[over - 1] if over else None

    async def peek(self, counts: Sequence[Count]) -> Count | None:
        for c, used in zip(counts, await self.used(counts), strict=True):
            if c.limit and used + c.amount > c.limit:
                return c
        return None

    async def used(self, counts: Sequence[Count]) -> list[int]:
        if not counts:
            return []
        values = await self._redis.mget([self._key(c) for c in counts])
        return [int(v or 0) for v in values]

    async def close(self) -> None:
        await self._redis.aclose()


def counters_for(redis_url: str, engine: AsyncEngine) -> Counters:
    return RedisCounters(redis_url) if redis_url else DatabaseCounters(engine)
