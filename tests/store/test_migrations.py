"""Migrations build the schema the code uses, and upgrade a populated database in place."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from gateway.store import schema
from gateway.store.engine import create_engine, current_revision, head_revision, upgrade
from tests.conftest import Database


async def test_migrations_match_the_schema(database: Database):
    engine = create_engine(database.url, schema=database.schema)
    try:
        await upgrade(engine)

        def diff(conn: sa.Connection):
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            return compare_metadata(context, schema.metadata)

        async with engine.connect() as conn:
            differences = await conn.run_sync(diff)
        assert differences == []
    finally:
        await engine.dispose()


async def test_upgrade_keeps_a_populated_database(database: Database):
    engine = create_engine(database.url, schema=database.schema)
    try:
        await upgrade(engine, "0001")
        when = {"now": datetime(2026, 1, 1, tzinfo=UTC)}
        async with engine.begin() as conn:
            await conn.execute(sa.text(
                "INSERT INTO tenants (name, status, status_reason, settings, created_at, "
                "updated_at) VALUES ('old', 'active', '', '{\"max_recipients\": 5}', "
                ":now, :now)"), when)
            await conn.execute(sa.text(
                "INSERT INTO domains (tenant_id, name, created_at) VALUES (1, 'old.example', "
                ":now)"), when)
            await conn.execute(sa.text(
                "INSERT INTO mailboxes (tenant_id, address, upstream, status, status_reason, "
                "created_at, updated_at) VALUES (1, 'a@old.example', 'x', 'active', '', "
                ":now, :now)"), when)
        await upgrade(engine)
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as conn:
            tenant = (await conn.execute(sa.select(schema.tenants))).one()
            mailbox = (await conn.execute(sa.select(schema.mailboxes))).one()
        assert tenant.name == "old" and tenant.settings == {"max_recipients": 5}
        assert mailbox.address == "a@old.example" and mailbox.settings == {}
    finally:
        await engine.dispose()


async def test_upgrade_twice_is_a_no_op(database: Database):
    engine = create_engine(database.url, schema=database.schema)
    try:
        await upgrade(engine)
        await upgrade(engine)
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()
