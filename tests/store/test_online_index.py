"""A migration that indexes a large, busy table does not stop the writers (PostgreSQL): the
build waits for the transactions already running, and new writes go through meanwhile."""

from __future__ import annotations

import asyncio
import secrets

import pytest
import sqlalchemy as sa

from gateway.store.engine import create_engine, current_revision, head_revision, upgrade
from tests.conftest import Database

pytestmark = pytest.mark.parametrize("database", ["postgres"], indirect=True)

INSERT = sa.text(
    "INSERT INTO suppressions (scope, digest, kind, reason, source, created_at, expires_at, "
    "updated_at) VALUES (0, :digest, 'address', 'manual', 'test', 1, :expires, 1)")


def entry(expires: int | None = None) -> dict:
    return {"digest": secrets.token_bytes(16), "expires": expires}


async def test_suppressions_keep_being_written_while_their_index_builds(database: Database):
    migrator = create_engine(database.url, schema=database.schema)
    clients = create_engine(database.url, schema=database.schema)
    try:
        await upgrade(migrator, "0008")
        async with clients.begin() as conn:
            await conn.execute(INSERT, [entry(i % 3 or None) for i in range(2000)])

        async with clients.connect() as open_writer:
            await open_writer.execute(INSERT, entry())  # a transaction still running
            build = asyncio.create_task(upgrade(migrator, "0009"))
            await _until_building(clients)

            # a plain CREATE INDEX would hold every writer from here until open_writer ends
            async with clients.connect() as other:
                await other.execute(sa.text("SET statement_timeout = '3s'"))
                await other.execute(INSERT, entry(7))
                await other.commit()
            assert not build.done()  # the build is still waiting for open_writer
            await open_writer.commit()
        await asyncio.wait_for(build, 30)

        assert await current_revision(migrator) == "0009"
        async with clients.connect() as conn:
            valid = (await conn.execute(sa.text(
                "SELECT indisvalid FROM pg_index "
                "WHERE indexrelid = to_regclass('ix_suppressions_expires_at')"))).scalar()
            rows = (await conn.execute(sa.text(
                "SELECT count(*) FROM suppressions WHERE expires_at IS NOT NULL"))).scalar()
        assert valid is True and rows == 1334  # 1333 seeded with an expiry, plus the one
    finally:
        await migrator.dispose()
        await clients.dispose()


async def test_an_interrupted_build_is_built_again(database: Database):
    """A concurrent build that was cancelled leaves an INVALID index; the migration run
    again replaces it with a valid one."""
    engine = create_engine(database.url, schema=database.schema)
    try:
        await upgrade(engine, "0008")
        async with engine.begin() as conn:
            await conn.execute(INSERT, [entry(1), entry(1)])
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            # what an interrupted CONCURRENTLY build leaves: here one that fails (both rows
            # have scope 0), under the migration's index name
            with pytest.raises(sa.exc.DBAPIError):
                await conn.execute(sa.text(
                    "CREATE UNIQUE INDEX CONCURRENTLY ix_suppressions_expires_at "
                    "ON suppressions (scope)"))
            invalid = (await conn.execute(sa.text(
                "SELECT indisvalid FROM pg_index "
                "WHERE indexrelid = to_regclass('ix_suppressions_expires_at')"))).scalar()
            assert invalid is False
        await upgrade(engine, "0009")
        async with engine.connect() as conn:
            row = (await conn.execute(sa.text(
                "SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "WHERE i.indexrelid = to_regclass('ix_suppressions_expires_at')"))).one()
        assert row[0] is True and "expires_at" in row[1] and "UNIQUE" not in row[1]
    finally:
        await engine.dispose()


async def _until_building(engine: sa.ext.asyncio.AsyncEngine) -> None:
    for _ in range(200):
        async with engine.connect() as conn:
            waiting = (await conn.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND query ILIKE 'CREATE INDEX%ix_suppressions_expires_at%' "
                "AND state = 'active'"))).scalar()
        if waiting:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the index build never started")


async def test_nodes_upgrading_at_once_take_turns(database: Database):
    """Every node of a rolling upgrade may run `gateway db upgrade`: one migrates, the others
    wait for the lock and then find nothing left to do (the lock outlives each migration's
    own commit, so nobody starts in between)."""
    engines = [create_engine(database.url, schema=database.schema) for _ in range(3)]
    try:
        await asyncio.wait_for(asyncio.gather(*(upgrade(e) for e in engines)), 60)
        assert await current_revision(engines[0]) == head_revision()
    finally:
        for engine in engines:
            await engine.dispose()
