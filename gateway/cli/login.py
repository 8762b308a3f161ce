"""`gateway login ...`: SMTP logins."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import click

from gateway.cli import shared
from gateway.errors import (
    InvalidValue,
)

if TYPE_CHECKING:
    from gateway.app.parts import Parts


@click.group()
def login() -> None:
    """SMTP submission logins."""


@login.command("add")
@click.argument("tenant_name")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--generate", is_flag=True,
              help="Make a strong random password and print it once.")
@shared.with_parts
async def login_add(app: Parts, tenant_name: str, username: str,
                    password_stdin: bool, generate: bool) -> None:
    """Add an SMTP login. Passwords shorter than `smtp.auth.min_password_length` (at least
    12) are refused; --generate makes one of 32 random characters."""
    if generate and password_stdin:
        raise shared.CliError("Use either --generate or --password-stdin.", InvalidValue.exit_code)
    password = secrets.token_urlsafe(24) if generate else shared.read_password(password_stdin)
    await app.directory_store.add_login(tenant_name, username, password, shared.actor(),
                          min_length=app.config.smtp.auth.min_password_length)
    click.echo(f"login {username} added to {tenant_name}")
    if generate:
        click.echo(f"password: {password}  (shown once; the gateway keeps only its hash)")


@login.command("list")
@click.option("--tenant", "tenant_name", help="Only this tenant's logins.")
@shared.with_parts
async def login_list(app: Parts, tenant_name: str | None) -> None:
    """List SMTP logins and their tenants."""
    for owner, username in await app.directory_store.list_logins(tenant_name):
        click.echo(f"{owner}\t{username}")


@login.command("remove")
@click.argument("username")
@shared.with_parts
async def login_remove(app: Parts, username: str) -> None:
    """Remove an SMTP login (its sessions are refused from then on)."""
    await app.directory_store.remove_login(username, shared.actor())
    click.echo(f"login {username} removed")
