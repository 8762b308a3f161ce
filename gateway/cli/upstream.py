"""`gateway upstream ...`: the configured upstreams and their passwords."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from gateway.cli import shared

if TYPE_CHECKING:
    from gateway.app.parts import Parts


@click.group()
def upstream() -> None:
    """The configured upstreams and the operator's smarthost logins."""


@upstream.command("list")
@shared.with_parts
async def upstream_list(app: Parts) -> None:
    """Each upstream, its kind and host, and whether its login has a sealed password."""

    credentials = await app.open_credentials()
    try:
        passwords = app.upstream_passwords
        for name, up in sorted(app.config.upstreams.items()):
            where = up.path if up.kind == "maildir" else f"{up.host}:{up.port}"
            if up.kind != "smtp":
                login = "per mailbox" if up.kind != "maildir" else "-"
            elif not up.username:
                login = "no login"
            else:
                sealed = await passwords.get(name) is not None
                login = f"{up.username} ({'password sealed' if sealed else 'NO PASSWORD'})"
            click.echo(f"{name}\t{up.kind}\t{where}\t{login}")
    finally:
        await credentials.close()


@upstream.command("password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--clear", is_flag=True, help="Delete the sealed password.")
@shared.with_parts
async def upstream_password(app: Parts, name: str,
                            password_stdin: bool, clear: bool) -> None:
    """Seal the shared smarthost password of upstream NAME (its username is configuration).

    Running gateways pick it up within 30 seconds, or at once after the smarthost refuses
    the old one."""

    credentials = await app.open_credentials()
    try:
        passwords = app.upstream_passwords
        if clear:
            await passwords.clear(name, shared.actor())
            click.echo(f"upstream {name}: sealed password deleted")
        else:
            await passwords.set(name, shared.read_password(password_stdin), shared.actor())
            click.echo(f"upstream {name}: password sealed")
    finally:
        await credentials.close()
