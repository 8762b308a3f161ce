"""`gateway events`: a tenant's events, oldest first."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from gateway.cli import shared

if TYPE_CHECKING:
    from gateway.app.parts import Parts


@click.command("events")
@click.argument("tenant_name")
@click.option("--after", type=int, default=0, help="Cursor: the last event id already seen.")
@click.option("--limit", type=int, default=100, show_default=True, help="At most this many events.")
@shared.with_parts
async def events_list(app: Parts, tenant_name: str, after: int,
                      limit: int) -> None:
    """A tenant's events, oldest first, after a cursor."""
    import sqlalchemy as sa

    from gateway.store.schema import events

    tenant_row = await app.directory_store.tenant(tenant_name)
    names = await app.with_digest(app.event_names)
    async with app.engine.connect() as conn:
        rows = (await conn.execute(sa.select(events).where(
            events.c.tenant_id == tenant_row.id, events.c.id > after)
            .order_by(events.c.id).limit(limit))).all()
    for e in rows:
        named = await names.view(e)
        who = named["recipient"] or (f"digest:{named['recipient_digest'][:16]}"
                                     if named["recipient_digest"] else "-")
        click.echo(f"{e.id}\t{e.at:%Y-%m-%d %H:%M:%S}\t{e.kind}\t{e.queue_id or '-'}\t"
                   f"{who}\t{(e.detail or {}).get('reply') or ''}")
