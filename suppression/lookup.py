"""The hot read: is this recipient suppressed for this tenant? Called once per RCPT, and
once more per message for all its recipients together (`check_many`), right before the
copies go upstream.

It bypasses SQLAlchemy's async engine, whose per-query overhead here is larger than the
query itself:
- SQLite: one synchronous `sqlite3` connection (query_only), read inline on the event
  loop. An indexed probe takes tens of microseconds; WAL lets it read while others write.
- PostgreSQL: a few connections of its own, the statement prepared on each; checks that
  arrive together share one query.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote

import asyncpg

from suppression.digest import Digester
from suppression.entries import GLOBAL, STRENGTH, Kind, Match, Reason

_COLUMNS = "scope, reason, kind, expires_at"
APPLICATION_NAME = "suppression-lookup"
_MMAP_BYTES = 2_147_418_112  # SQLite's largest map by default


class Lookup(Protocol):
    async def check(self, tenant_id: int, canonical_address: str, now: int) -> Match | None:
        ...

    async def check_many(self, tenant_id: int, canonical_addresses: Sequence[str],
                         now: int) -> list[Match | None]:
        ...

    async def close(self) -> None: ...


def best_match(rows: Sequence[Any], tenant_id: int, now: int) -> Match | None:
    """The tenant's own strongest active entry first (its reason may be told to it), else
    the global list's."""
    best: tuple[int, int, Match] | None = None
    for scope, reason, kind, expires_at in rows:
        if expires_at is not None and expires_at <= now:
            continue
        reason = Reason(reason)
        rank = (1 if scope == tenant_id and scope != GLOBAL else 0, STRENGTH[reason])
        if best is None or rank > best[:2]:
            best = (*rank, Match(scope, reason, Kind(kind)))
    return best[2] if best is not None else None


class SqliteLookup:
    def __init__(self, path: str, digester: Digester) -> None:
        self._digester = digester
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA query_only=1")
        self._db.execute("PRAGMA busy_timeout=2000")
        # Pages read through a memory map, not a read() call each: at ten million entries
        # the index's leaves are rarely in SQLite's own cache, and the system calls were
        # most of the time. (An I/O error then comes as a signal; this connection only reads.)
        self._db.execute(f"PRAGMA mmap_size={_MMAP_BYTES}")
        self._db.execute("PRAGMA cache_size=-65536")  # 64 MB for what lies past the map

    async def check(self, tenant_id: int, canonical_address: str, now: int) -> Match | None:
        digests = self._digester.lookups(canonical_address)
        marks = ",".join("?" * len(digests))
        # `+scope`: probe the index by digest alone and filter the (few) rows found;
        # SQLite's plan for both IN lists probes every pair and costs twice as much.
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM suppressions WHERE digest IN ({marks}) "
            "AND +scope IN (?, ?)", (*digests, GLOBAL, tenant_id)).fetchall()
        return best_match(rows, tenant_id, now)

    async def check_many(self, tenant_id: int, canonical_addresses: Sequence[str],
                         now: int) -> list[Match | None]:
        """Every address in one query: the rows come back with their digest, and each
        address takes the rows of its own lookups."""
        lookups = [self._digester.lookups(a) for a in canonical_addresses]
        digests = list({d for found in lookups for d in found})
        if not digests:
            return []
        marks = ",".join("?" * len(digests))
        rows: dict[bytes, list[tuple[Any, ...]]] = {}
        for digest, *row in self._db.execute(
                f"SELECT digest, {_COLUMNS} FROM suppressions WHERE digest IN ({marks}) "
                "AND +scope IN (?, ?)", (*digests, GLOBAL, tenant_id)).fetchall():
            rows.setdefault(bytes(digest), []).append(tuple(row))
        return [best_match([r for d in found for r in rows.get(d, ())], tenant_id, now)
                for found in lookups]

    async def close(self) -> None:
        self._db.close()


class PostgresLookup:
    """Checks that arrive while others are in flight go together in one query.

    A round trip to the server costs far more than probing the index, so under load one
    query answers every check waiting for it: latency stays near one round trip while the
    rate grows with the batch, instead of checks queueing for a connection.
    """

    def __init__(self, dsn: str, schema: str, digester: Digester, size: int = 8) -> None:
        self._dsn = dsn
        self._size = size  # queries in flight at most (one connection each)
        self._digester = digester
        # Named, so ops can tell these connections apart in pg_stat_activity. jit off: a
        # row estimate gone stale after a bulk import once made the server compile this
        # tiny query, for milliseconds, on every call.
        self._settings = {"application_name": APPLICATION_NAME, "jit": "off"}
        if schema:
            self._settings["search_path"] = schema
        self._idle: list[tuple[asyncpg.Connection, Any]] = []
        self._waiting: list[_Waiting] = []
        self._drains: set[asyncio.Task[None]] = set()

    async def check(self, tenant_id: int, canonical_address: str, now: int) -> Match | None:
        return (await self.check_many(tenant_id, [canonical_address], now))[0]

    async def check_many(self, tenant_id: int, canonical_addresses: Sequence[str],
                         now: int) -> list[Match | None]:
        """The addresses join the waiting batch together, with one drain started for them:
        one query (more only past the batch size)."""
        loop = asyncio.get_running_loop()
        waiting = [_Waiting(self._digester.lookups(a), tenant_id, loop.create_future())
                   for a in canonical_addresses]
        self._waiting.extend(waiting)
        if waiting and len(self._drains) < self._size:
            drain = asyncio.create_task(self._drain())
            self._drains.add(drain)
            drain.add_done_callback(self._drains.discard)
        return [best_match(await w.found, tenant_id, now) for w in waiting]

    async def _drain(self) -> None:
        while self._waiting:
            batch = self._waiting[:_BATCH]
            del self._waiting[:_BATCH]
            try:
                rows = await self._query(batch)
            except asyncio.CancelledError:  # closing: nobody waits for ever
                for waiting in (*batch, *self._waiting):
                    waiting.found.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - every waiter hears why, then we go on
                for waiting in batch:
                    if not waiting.found.done():
                        waiting.found.set_exception(exc)
                continue
            answers: list[list[tuple[Any, ...]]] = [[] for _ in batch]
            for n, *row in rows:
                answers[n].append(tuple(row))
            for waiting, answer in zip(batch, answers, strict=True):
                if not waiting.found.done():  # its session may have gone
                    waiting.found.set_result(answer)

    async def _query(self, batch: list[_Waiting]) -> list[Any]:
        """One query on an idle connection (opened if none is), its statement prepared
        once. A connection that fails is closed, not reused; the next query opens another."""
        while self._idle:
            connection, statement = self._idle.pop()
            if not connection.is_closed():  # (the server may have ended it meanwhile)
                break
        else:
            connection = await asyncpg.connect(self._dsn, server_settings=self._settings)
            statement = await connection.prepare(_BATCH_QUERY)
        try:
            rows: list[Any] = await statement.fetch(*_arguments(batch))
        except BaseException:
            connection.terminate()
            raise
        self._idle.append((connection, statement))
        return rows

    async def close(self) -> None:
        for drain in list(self._drains):
            drain.cancel()
        await asyncio.gather(*self._drains, return_exceptions=True)
        idle, self._idle = self._idle, []
        for connection, _ in idle:
            await connection.close()


# LATERAL with OFFSET 0 (which the planner may not flatten) makes it a nested loop of index
# probes, one per digest, whatever its statistics say: fresh from a bulk import, they once
# made it hash-join a sequential scan of the table.
_BATCH_QUERY = (
    f"SELECT q.n, s.* FROM unnest($1::int[], $2::bytea[], $3::int[]) AS q(n, digest, tenant) "
    f"CROSS JOIN LATERAL (SELECT {_COLUMNS} FROM suppressions "
    f"WHERE digest = q.digest AND scope IN ({GLOBAL}, q.tenant) OFFSET 0) AS s")
_BATCH = 200  # checks per query at most


@dataclass(slots=True)
class _Waiting:
    digests: list[bytes]
    tenant_id: int
    found: asyncio.Future[list[tuple[Any, ...]]]


def _arguments(batch: list[_Waiting]) -> tuple[list[int], list[bytes], list[int]]:
    numbers: list[int] = []
    digests: list[bytes] = []
    tenants: list[int] = []
    for n, waiting in enumerate(batch):
        numbers.extend([n] * len(waiting.digests))
        digests.extend(waiting.digests)
        tenants.extend([waiting.tenant_id] * len(waiting.digests))
    return numbers, digests, tenants


def lookup_for(url: str, schema: str, digester: Digester) -> Lookup:
    """The fast lookup for an SQLAlchemy database URL (sqlite+aiosqlite or
    postgresql+asyncpg)."""
    if url.startswith("sqlite"):
        path = unquote(url.split(":///", 1)[1])
        return SqliteLookup(path, digester)
    scheme, rest = url.split("://", 1)
    return PostgresLookup(f"postgresql://{rest}", schema, digester)
