"""`gateway oauth-client ...`: OAuth clients for Gmail and Microsoft 365."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from gateway.cli import shared

if TYPE_CHECKING:
    from gateway.app.parts import Parts


@click.group("oauth-client")
def oauth_client() -> None:
    """OAuth clients (client id + sealed secret) for the gmail and microsoft upstreams."""


@oauth_client.command("add")
@click.argument("provider", type=click.Choice(["google", "microsoft"]))
@click.argument("client_id")
@click.option("--tenant", "tenant_name", help="Only for this tenant (default: every tenant).")
@click.option("--secret-stdin", is_flag=True, help="Read the client secret from stdin.")
@shared.with_parts
async def oauth_client_add(app: Parts, provider: str, client_id: str,
                           tenant_name: str | None, secret_stdin: bool) -> None:
    """Register an OAuth client (id and sealed secret) for Google or Microsoft."""
    if secret_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
    else:
        secret = click.prompt("Client secret", hide_input=True)
    tenant_id = (await app.directory_store.tenant(tenant_name)).id if tenant_name else None
    credentials = await app.open_credentials()
    try:
        public_id = await credentials.add_client(provider, client_id, secret, tenant_id,
                                                 shared.actor())
    finally:
        await credentials.close()
    click.echo(f"OAuth client {public_id} ({provider}) added"
               + (f" for {tenant_name}" if tenant_name else " for every tenant"))


@oauth_client.command("list")
@shared.with_parts
async def oauth_client_list(app: Parts) -> None:
    """List the OAuth clients (never their secrets)."""
    names = await app.directory_store.tenant_names()
    credentials = await app.open_credentials()
    try:
        for public_id, tenant_id, provider, client_id in await credentials.list_clients(
                None, only_tenant=False):
            owner = names.get(tenant_id, "-") if tenant_id is not None else "(all tenants)"
            click.echo(f"{public_id}\t{provider}\t{client_id}\t{owner}")
    finally:
        await credentials.close()
