"""`gateway db ...`: the database schema."""

from __future__ import annotations

import click

from gateway.cli import shared
from gateway.errors import (
    GatewayError,
    StoreError,
)
from gateway.store.engine import create_engine, current_revision, head_revision, upgrade


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True,
              help="Migrate to this revision (e.g. one before head during a rolling upgrade).")
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Apply migrations (expand/contract; safe while other nodes run)."""
    config = shared.load_config(ctx)

    async def body() -> str | None:
        engine = create_engine(config.database.url, schema=config.database.schema)
        try:
            await upgrade(engine, revision)
            return await current_revision(engine)
        except GatewayError:
            raise
        except Exception as exc:
            message = f"Migration failed: {type(exc).__name__}: {exc}".split("\n")[0]
            raise StoreError(message) from None
        finally:
            await engine.dispose()

    click.echo(f"database at revision {shared.run(body())} (head: {head_revision()})")
