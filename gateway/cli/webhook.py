"""`gateway webhook ...`: a tenant's signed event deliveries."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from gateway.cli import shared

if TYPE_CHECKING:
    from gateway.app.parts import Parts


@click.group()
def webhook() -> None:
    """A tenant's webhook for its events (signed with HMAC-SHA256)."""


@webhook.command("set")
@click.argument("tenant_name")
@click.argument("url")
@shared.with_parts
async def webhook_set(app: Parts, tenant_name: str, url: str) -> None:
    """Point the tenant's events at URL; prints the new signing secret once."""
    from gateway.events.targets import check_target

    await check_target(url, app.config.events.allow_private_targets, app.config.fetch)
    tenant_row = await app.directory_store.tenant(tenant_name)
    secret = await app.webhook_store.set(
        tenant_row.id, url, shared.actor())
    click.echo(f"webhook for {tenant_name}: {url}")
    click.echo(f"signing secret (shown once): {secret}")


@webhook.command("remove")
@click.argument("tenant_name")
@shared.with_parts
async def webhook_remove(app: Parts, tenant_name: str) -> None:
    """Remove a tenant's webhook (its events stay readable with 'gateway events')."""

    tenant_row = await app.directory_store.tenant(tenant_name)
    await app.webhook_store.remove(
        tenant_row.id, shared.actor())
    click.echo(f"webhook for {tenant_name} removed")
