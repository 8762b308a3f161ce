"""After an erasure, a tenant deletion or a retention purge: make the deleted rows gone from
the files too, not only from the tables.

- SQLite keeps recent pages in its write-ahead log until a checkpoint copies them back, and
  an idle gateway may not checkpoint for a long time: the erased address stays in
  `gateway.db-wal`. `PRAGMA wal_checkpoint(TRUNCATE)` copies every page back (where
  `secure_delete`, set on every connection, has zeroed the deleted rows) and empties the
  log. Another connection in the middle of a read makes it report "busy"; it is tried again
  for a bounded time, and if it still cannot finish the caller is told (StoreError).
- PostgreSQL: a plain `VACUUM` (never FULL: no exclusive lock on the hot path) of the tables
  that were touched marks the dead tuples' space free for reuse. Their bytes stay in the
  files until the space is reused, and in WAL segments and archives until those expire;
  docs/retention.md says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import StoreError
from gateway.store.schema import metadata

log = logging.getLogger("gateway.store")

_TRIES = 50
_PAUSE = 0.1  # seconds between checkpoint attempts: at most ~5 s in all


async def scrub(engine: AsyncEngine, tables: Iterable[str]) -> None:
    """`tables`: what was deleted from (names that are not tables of the schema, such as a
    purge's Maildir count, are passed over). Raises StoreError when SQLite's checkpoint
    cannot finish (readers stay busy)."""
    if engine.dialect.name == "sqlite":
        await _checkpoint(engine)
    elif engine.dialect.name == "postgresql":
        await _vacuum(engine, sorted(set(tables) & set(metadata.tables)))


async def _checkpoint(engine: AsyncEngine) -> None:
    for _ in range(_TRIES):
        async with engine.connect() as conn:
            # (busy, frames in the log, frames checkpointed)
            result = (await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")).one()
        if not result[0]:
            return
        await asyncio.sleep(_PAUSE)
    raise StoreError("The erased rows are deleted, but SQLite's write-ahead log still holds "
                     "them: a checkpoint could not finish while another process was reading. "
                     "Run the command again (or stop the gateway for a moment).")


async def _vacuum(engine: AsyncEngine, tables: list[str]) -> None:
    async with engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in tables:
            await auto.exec_driver_sql(f'VACUUM "{table}"')  # names from our own schema
    log.info("vacuumed after deletion", extra={"tables": tables})
