"""`gateway webhook ...`: a tenant's signed event deliveries."""

from __future__ import annotations

import click

from gateway.cli import parts, shared
from gateway.config import Config
from gateway.directory.store import DirectoryStore


@click.group()
def webhook() -> None:
    """A tenant's webhook for its events (signed with HMAC-SHA256)."""


@webhook.command("set")
@click.argument("tenant_name")
@click.argument("url")
@shared.with_store
async def webhook_set(store: DirectoryStore, config: Config, tenant_name: str, url: str) -> None:
    """Point the tenant's events at URL; prints the new signing secret once."""
    from gateway.events.targets import check_target
    from gateway.events.webhook_store import WebhookStore

    await check_target(url, config.events.allow_private_targets, config.fetch)
    tenant_row = await store.tenant(tenant_name)
    secret = await WebhookStore(store.engine, shared.open_vault(config),
                                parts.tenant_sealer(store.engine, config)).set(
        tenant_row.id, url, shared.actor())
    click.echo(f"webhook for {tenant_name}: {url}")
    click.echo(f"signing secret (shown once): {secret}")


@webhook.command("remove")
@click.argument("tenant_name")
@shared.with_store
async def webhook_remove(store: DirectoryStore, config: Config, tenant_name: str) -> None:
    """Remove a tenant's webhook (its events stay readable with 'gateway events')."""
    from gateway.events.webhook_store import WebhookStore

    tenant_row = await store.tenant(tenant_name)
    await WebhookStore(store.engine, shared.open_vault(config),
                       parts.tenant_sealer(store.engine, config)).remove(
        tenant_row.id, shared.actor())
    click.echo(f"webhook for {tenant_name} removed")
