"""One async SQLAlchemy engine for SQLite (embedded default) and PostgreSQL (scale-out)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.errors import StoreError

MIGRATIONS = Path(__file__).with_name("migrations")
_PG_MIGRATION_LOCK = 0x6F63675F6D6967  # "ocg_mig": one node migrates at a time
_LOCK_POLL = 0.2  # seconds between tries while another node migrates


def create_engine(url: str, pool_size: int = 10, schema: str = "",
                  pre_ping: bool = True) -> AsyncEngine:
    """`pre_ping`: PostgreSQL connections are checked before each use (a round trip); the
    audit group commits go without and retry once on a connection found closed."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    connect_args = {"server_settings": {"search_path": schema}} if schema else {}
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size,
                               pool_pre_ping=pre_ping, connect_args=connect_args)


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands timestamps back naive; they were written in UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at each checkpoint
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Deleted rows (a disconnected mailbox's sealed tokens) are overwritten, not left in
    # free pages of the file.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply migrations up to `revision`, holding a lock so concurrent nodes take turns.

    On PostgreSQL the lock is a session advisory lock: it outlives the per-migration
    transactions, including the commits an online index build (store/online.py) needs.
    A node waiting its turn polls for the lock instead of blocking on it: a statement blocked
    in the database holds a snapshot, and CREATE INDEX CONCURRENTLY waits for every older
    snapshot to end — the holder would wait for the waiter for ever.
    """

    def run(connection: sa.Connection) -> None:
        cfg = _alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    if engine.dialect.name != "postgresql":
        async with engine.begin() as conn:
            await conn.run_sync(run)
        return
    async with engine.connect() as conn:
        while not (await conn.execute(sa.text(
                f"SELECT pg_try_advisory_lock({_PG_MIGRATION_LOCK})"))).scalar():
            await conn.commit()
            await asyncio.sleep(_LOCK_POLL)
        await conn.commit()
        try:
            await conn.run_sync(run)
        finally:
            await conn.rollback()  # whatever a failed migration left open
            await conn.execute(sa.text(f"SELECT pg_advisory_unlock({_PG_MIGRATION_LOCK})"))
            await conn.commit()


async def current_revision(engine: AsyncEngine) -> str | None:
    def read(connection: sa.Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)


async def require_head(engine: AsyncEngine) -> None:
    """Refuse to serve on a database that is not migrated (or is newer than this code)."""
    try:
        current = await current_revision(engine)
    except Exception as exc:  # driver errors name hosts and paths, which is fine for operators
        raise StoreError(f"Cannot reach the database: {type(exc).__name__}.") from exc
    head = head_revision()
    script = ScriptDirectory.from_config(_alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}
    if current is None:
        raise StoreError("The database has no schema; run 'gateway db upgrade' first.")
    if current not in known:
        # A newer release migrated (expand): this older code still runs on the expanded schema.
        return
    if current != head:
        raise StoreError(
            f"The database schema is at {current}, this release needs {head}; "
            "run 'gateway db upgrade'."
        )
