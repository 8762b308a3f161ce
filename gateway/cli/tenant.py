"""`gateway tenant ...`: tenants, their status and settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from gateway.cli import shared
from gateway.directory import settings as tenant_settings

if TYPE_CHECKING:
    from gateway.app.parts import Parts


@click.group()
def tenant() -> None:
    """Tenants (customers): add, list, suspend, resume, settings."""


@tenant.command("add")
@click.argument("name")
@shared.with_parts
async def tenant_add(app: Parts, name: str) -> None:
    """Add a tenant (a customer: its logins, mailboxes, domains and lists)."""
    created = await app.directory_store.add_tenant(name, shared.actor())
    click.echo(f"tenant {created.name} added")


@tenant.command("list")
@shared.with_parts
async def tenant_list(app: Parts) -> None:
    """List the tenants and their status."""
    for t in await app.directory_store.list_tenants():
        reason = f"  ({t.status_reason})" if t.status_reason else ""
        click.echo(f"{t.name}\t{t.status}{reason}")


@tenant.command("suspend")
@click.argument("name")
@click.option("--reason", required=True, help="Shown to the sending client in the 451 reply.")
@shared.with_parts
async def tenant_suspend(app: Parts, name: str, reason: str) -> None:
    """Suspend a tenant: its senders get 451 4.7.1 with the reason."""
    await app.directory_store.set_tenant_status(name, "suspended", reason, shared.actor())
    click.echo(f"tenant {name} suspended")


@tenant.command("resume")
@click.argument("name")
@shared.with_parts
async def tenant_resume(app: Parts, name: str) -> None:
    """Let a suspended tenant send again."""
    await app.directory_store.set_tenant_status(name, "active", "", shared.actor())
    click.echo(f"tenant {name} resumed")


@tenant.command("set")
@click.argument("name")
@click.argument("key")
@click.argument("value")
@shared.with_parts
async def tenant_set(app: Parts, name: str, key: str,
                     value: str) -> None:
    """Change one tenant setting, within the operator's limits."""
    parsed = tenant_settings.parse(key, value, app.config)
    await app.directory_store.set_tenant_setting(name, key, parsed, shared.actor())
    click.echo(f"tenant {name}: {key} = {parsed}")


@tenant.command("show")
@click.argument("name")
@shared.with_parts
async def tenant_show(app: Parts, name: str) -> None:
    """Show a tenant's status and its effective settings (its own, else the defaults)."""
    t = await app.directory_store.tenant(name)
    click.echo(f"name\t{t.name}\nstatus\t{t.status}")
    for key, value in sorted(tenant_settings.effective(t.settings, app.config).items()):
        click.echo(f"{key}\t{value}")
