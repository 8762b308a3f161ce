"""`gateway user ...`: reviewer accounts of the review pages (admin listener, /review/)."""

from __future__ import annotations

import secrets
import sys
from typing import TYPE_CHECKING

import click

from gateway.cli import shared
from gateway.errors import ConfigError
from gateway.review.accounts import MIN_PASSWORD, ROLES, Reviewers

if TYPE_CHECKING:
    from gateway.app.parts import Parts


def _reviewers(app: Parts) -> Reviewers:
    return app.reviewers


@click.group()
def user() -> None:
    """Reviewers of the review pages: add, list, remove, unlock."""


@user.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True,
              help="ops: read the queue, manage suppressions; compliance: also read bodies "
              "and decide; admin: everything.")
@click.option("--tenant", "tenant_name", default=None,
              help="Bind the reviewer to one tenant's messages and list.")
@click.option("--password-stdin", is_flag=True,
              help=f"Read the password (at least {MIN_PASSWORD} characters) from stdin; "
              "otherwise one is generated and shown once.")
@shared.with_parts
async def user_add(app: Parts, username: str, role: str,
                   tenant_name: str | None, password_stdin: bool) -> None:
    """Create a reviewer. Prints the TOTP secret as an otpauth:// URI (add it to an
    authenticator app now: it is not shown again)."""
    tenant_id = (await app.directory_store.tenant(tenant_name)).id if tenant_name else None
    password = sys.stdin.readline().rstrip("\n") if password_stdin else \
        secrets.token_urlsafe(18)
    uri = await _reviewers(app).add(username, password, role, tenant_id, shared.actor())
    click.echo(f"reviewer {username} added ({role}{', ' + tenant_name if tenant_name else ''})")
    if not password_stdin:
        click.echo(f"password: {password}")
    click.echo(f"totp: {uri}")


@user.command("list")
@shared.with_parts
async def user_list(app: Parts) -> None:
    """List the reviewers of the review pages and their roles."""
    names = {t.id: t.name for t in await app.directory_store.list_tenants()}
    for r in await _reviewers(app).listing():
        locked = f"locked until {r.locked_until:%Y-%m-%d %H:%M}" if r.locked_until else ""
        last = f"{r.last_login_at:%Y-%m-%d %H:%M}" if r.last_login_at else "never"
        click.echo(f"{r.username}\t{r.role}\t{names.get(r.tenant_id, 'all tenants')}\t"
                   f"last sign-in {last}\t{locked}".rstrip())


@user.command("remove")
@click.argument("username")
@shared.with_parts
async def user_remove(app: Parts, username: str) -> None:
    """Delete the account and end its sessions."""
    await _reviewers(app).remove(username, shared.actor())
    click.echo(f"reviewer {username} removed")


@user.command("unlock")
@click.argument("username")
@shared.with_parts
async def user_unlock(app: Parts, username: str) -> None:
    """Lift a lockout after repeated failed sign-ins."""
    await _reviewers(app).unlock(username, shared.actor())
    click.echo(f"reviewer {username} unlocked")


@user.command("code")
@click.argument("username")
@shared.with_parts
async def user_code(app: Parts, username: str) -> None:
    """Development only: the reviewer's current TOTP code (the demo's stand-in for an
    authenticator app)."""
    if not app.config.is_development:
        raise ConfigError("'gateway user code' runs only with environment = 'development': "
                          "elsewhere the code comes from the reviewer's authenticator app.")
    click.echo(await _reviewers(app).current_code(username))
