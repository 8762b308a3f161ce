"""`gateway mailbox ...`: sending mailboxes and their credentials."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from gateway.cli import shared
from gateway.errors import (
    InvalidValue,
)

if TYPE_CHECKING:
    from gateway.app.parts import Parts


@click.group()
def mailbox() -> None:
    """Sending mailboxes and the upstream each one uses."""


@mailbox.command("add")
@click.argument("tenant_name")
@click.argument("address")
@click.option("--upstream", required=True, help="An upstream name from the configuration.")
@shared.with_parts
async def mailbox_add(app: Parts, tenant_name: str, address: str,
                      upstream: str) -> None:
    """Add a sending mailbox to a tenant, sent through the named upstream."""
    from gateway.vault.credentials import add_mailbox

    added, oauth = await add_mailbox(app.config, app.directory_store, tenant_name, address,
                                     upstream, shared.actor())
    click.echo(f"mailbox {added} added to {tenant_name} via {upstream}")
    if oauth:
        click.echo(f"connect it: gateway mailbox connect {added} --browser | --import")


@mailbox.command("connect")
@click.argument("address")
@click.option("--import", "import_json", is_flag=True,
              help="Read tokens the campaign tool holds as JSON on stdin: refresh_token, "
              "access_token, expires_at, scope, client_id.")
@click.option("--browser", is_flag=True, help="Print a one-time link for the owner's browser "
              "(OAuth consent with PKCE; 10 minutes).")
@click.option("--password-stdin", is_flag=True,
              help="A smarthost password of the mailbox's own, read from stdin.")
@click.option("--username", help="The smarthost login name (with --password-stdin).")
@shared.with_parts
async def mailbox_connect(app: Parts, address: str,
                          import_json: bool, browser: bool, password_stdin: bool,
                          username: str | None) -> None:
    """Give a mailbox its upstream credentials; they are sealed by the vault."""
    import json

    if sum((import_json, browser, password_stdin)) != 1:
        raise InvalidValue("Give exactly one of --import, --browser or --password-stdin.")
    mailbox_row = await app.directory_store.mailbox_by_address(address)
    credentials = await app.open_credentials()
    try:
        if import_json:
            try:
                payload = json.loads(sys.stdin.read())
            except json.JSONDecodeError as exc:
                raise InvalidValue(f"stdin is not JSON (line {exc.lineno}).") from None
            if not isinstance(payload, dict):
                raise InvalidValue("stdin must hold one JSON object.")
            state = await credentials.import_tokens(mailbox_row, payload, shared.actor())
            click.echo(f"mailbox {mailbox_row.address} connected ({state})")
        elif password_stdin:
            if not username:
                raise InvalidValue("--username is required with --password-stdin.")
            await credentials.set_password(mailbox_row, username, shared.read_password(True),
                                           shared.actor())
            click.echo(f"mailbox {mailbox_row.address}: smarthost login {username} sealed")
        else:
            from gateway.vault.flows import FLOW_LIFETIME

            provider, ticket = await app.flows.start(mailbox_row, shared.actor())
            http = app.config.http
            base = http.public_base_url or (
                f"{http.scheme}://{http.public_listen}:{http.public_port}")
            minutes = int(FLOW_LIFETIME.total_seconds() // 60)
            click.echo(f"open within {minutes} minutes, signed in as {mailbox_row.address}:")
            click.echo(f"{base.rstrip('/')}/oauth/{provider}/start?ticket={ticket}")
    finally:
        await credentials.close()


@mailbox.command("disconnect")
@click.argument("address")
@click.option("--reason", default="disconnected by an operator", show_default=True,
              help="Why, for the audit trail and the mailbox's status.")
@click.option("--no-revoke", is_flag=True, help="Delete the tokens without telling the provider.")
@shared.with_parts
async def mailbox_disconnect(app: Parts, address: str, reason: str,
                             no_revoke: bool) -> None:
    """Delete the mailbox's sealed tokens now and revoke them at the provider."""
    mailbox_row = await app.directory_store.mailbox_by_address(address)
    credentials = await app.open_credentials()
    try:
        revoked = await credentials.disconnect(mailbox_row, shared.actor(), reason, not no_revoke)
    finally:
        await credentials.close()
    click.echo(f"mailbox {mailbox_row.address} disconnected; tokens deleted"
               + ("; revoked at the provider" if revoked else ""))


@mailbox.command("list")
@click.option("--tenant", "tenant_name", help="Only this tenant's mailboxes.")
@shared.with_parts
async def mailbox_list(app: Parts, tenant_name: str | None) -> None:
    """List mailboxes, their upstream and status."""
    for owner, m in await app.directory_store.list_mailboxes(tenant_name):
        reason = f"  ({m.status_reason})" if m.status_reason else ""
        click.echo(f"{owner}\t{m.address}\t{m.upstream}\t{m.status}{reason}")


@mailbox.command("remove")
@click.argument("address")
@shared.with_parts
async def mailbox_remove(app: Parts, address: str) -> None:
    """Remove a mailbox (its sealed tokens or password go with it)."""
    mailbox_row = await app.directory_store.mailbox_by_address(address)
    credentials = await app.open_credentials()
    try:
        await credentials.remove_mailbox(app.directory_store, mailbox_row, shared.actor())
    finally:
        await credentials.close()
    click.echo(f"mailbox {address} removed")


@mailbox.command("pause")
@click.argument("address")
@click.option("--reason", required=True, help="Shown to the sending client in the 451 reply.")
@shared.with_parts
async def mailbox_pause(app: Parts, address: str, reason: str) -> None:
    """Pause a mailbox: its senders get 451 4.7.1 with the reason."""
    await app.directory_store.set_mailbox_status(address, "paused", reason, shared.actor())
    click.echo(f"mailbox {address} paused")


@mailbox.command("resume")
@click.argument("address")
@shared.with_parts
async def mailbox_resume(app: Parts, address: str) -> None:
    """Let a paused mailbox send again."""
    await app.directory_store.resume_mailbox(address, shared.actor())
    click.echo(f"mailbox {address} resumed")
