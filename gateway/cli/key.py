"""`gateway key ...`: purpose keys (digests, tokens)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from gateway.cli import shared

if TYPE_CHECKING:
    from gateway.app.parts import Parts


@click.group()
def key() -> None:
    """Purpose keys: digest keys (never rotated) and token keys (rotated, then retired)."""


@key.command("list")
@shared.with_parts
async def key_list(app: Parts) -> None:
    """List the purpose keys (digests, tokens) and their versions."""
    click.echo("purpose\tversion\tmaster key\tcreated\tretired")
    for k in await app.purpose_keys.listing():
        retired = f"{k.retired_at:%Y-%m-%d %H:%M}" if k.retired_at else "-"
        click.echo(f"{k.purpose}\t{k.version}\t{k.key_id}\t{k.created_at:%Y-%m-%d %H:%M}\t"
                   f"{retired}")


@key.command("rotate")
@click.argument("purpose")
@shared.with_parts
async def key_rotate(app: Parts, purpose: str) -> None:
    """A new version seals from now on; older versions still open until retired."""
    version = await app.purpose_keys.rotate(purpose, shared.actor())
    click.echo(f"{purpose}: version {version} now seals new tokens")


@key.command("retire")
@click.argument("purpose")
@click.argument("version", type=int)
@shared.with_parts
async def key_retire(app: Parts, purpose: str, version: int) -> None:
    """Stop opening tokens of an old version: links made with it stop working."""
    await app.purpose_keys.retire(purpose, version, shared.actor())
    click.echo(f"{purpose}: version {version} retired; tokens sealed with it no longer open")
