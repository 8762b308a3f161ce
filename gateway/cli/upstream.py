"""`gateway upstream ...`: the configured upstreams and their passwords."""

from __future__ import annotations

import click

from gateway.cli import parts, shared
from gateway.config import Config
from gateway.directory.store import DirectoryStore


@click.group()
def upstream() -> None:
    """The configured upstreams and the operator's smarthost logins."""


@upstream.command("list")
@shared.with_store
async def upstream_list(store: DirectoryStore, config: Config) -> None:
    """Each upstream, its kind and host, and whether its login has a sealed password."""
    from gateway.vault.upstream_passwords import UpstreamPasswords

    credentials = await parts.credentials(store.engine, config)
    try:
        passwords = UpstreamPasswords(store.engine, credentials.secrets, config)
        for name, up in sorted(config.upstreams.items()):
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
@shared.with_store
async def upstream_password(store: DirectoryStore, config: Config, name: str,
                            password_stdin: bool, clear: bool) -> None:
    """Seal the shared smarthost password of upstream NAME (its username is configuration).

    Running gateways pick it up within 30 seconds, or at once after the smarthost refuses
    the old one."""
    from gateway.vault.upstream_passwords import UpstreamPasswords

    credentials = await parts.credentials(store.engine, config)
    try:
        passwords = UpstreamPasswords(store.engine, credentials.secrets, config)
        if clear:
            await passwords.clear(name, shared.actor())
            click.echo(f"upstream {name}: sealed password deleted")
        else:
            await passwords.set(name, shared.read_password(password_stdin), shared.actor())
            click.echo(f"upstream {name}: password sealed")
    finally:
        await credentials.close()
