"""`gateway apikey ...`: admin API keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from gateway.cli import shared

if TYPE_CHECKING:
    from gateway.app.parts import Parts


@click.group()
def apikey() -> None:
    """Admin API keys: 256-bit, shown once, stored as SHA-256; a role and maybe a tenant."""


@apikey.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["ops", "compliance", "admin"]), required=True,
              help="ops: read the queue, manage suppressions; compliance: also read bodies and "
              "decide; admin: everything.")
@click.option("--tenant", "tenant_name", help="Bind the key to one tenant.")
@click.option("--expires-days", type=int, help="Expire after this many days.")
@shared.with_parts
async def apikey_add(app: Parts, name: str, role: str,
                     tenant_name: str | None, expires_days: int | None) -> None:
    """Make an admin API key; it is shown once, stored as a hash."""
    from datetime import UTC, datetime, timedelta


    tenant_id = (await app.directory_store.tenant(tenant_name)).id if tenant_name else None
    expires = (datetime.now(UTC) + timedelta(days=expires_days)) if expires_days else None
    key_id, key = await app.api_keys.create(name, role, tenant_id, shared.actor(), expires)
    click.echo(f"API key {key_id} ({role}{', ' + tenant_name if tenant_name else ''})")
    click.echo(f"key (shown once): {key}")


@apikey.command("list")
@shared.with_parts
async def apikey_list(app: Parts) -> None:
    """List the admin API keys (never the keys themselves)."""

    names = await app.directory_store.tenant_names()
    click.echo("id\tname\trole\ttenant\tcreated\texpires\tlast used\trevoked")
    for k in await app.api_keys.listing():
        def when(d: Any) -> str:
            return f"{d:%Y-%m-%d %H:%M}" if d else "-"

        tenant_label = names.get(k.tenant_id, "-") if k.tenant_id is not None else "-"
        click.echo(f"{k.key_id}\t{k.name}\t{k.role}\t{tenant_label}\t{when(k.created_at)}\t"
                   f"{when(k.expires_at)}\t{when(k.last_used_at)}\t{when(k.revoked_at)}")


@apikey.command("revoke")
@click.argument("key_id")
@shared.with_parts
async def apikey_revoke(app: Parts, key_id: str) -> None:
    """Revoke an admin API key at once."""

    await app.api_keys.revoke(key_id, shared.actor())
    click.echo(f"API key {key_id} revoked")
