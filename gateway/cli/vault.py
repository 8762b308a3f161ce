"""`gateway vault ...`: re-wrapping and re-sealing what the vault holds."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from gateway.cli import shared

if TYPE_CHECKING:
    from gateway.app.parts import Parts


@click.group()
def vault() -> None:
    """The master key and the secrets sealed under it."""


@vault.command("rewrap")
@shared.batches
@shared.with_parts
async def vault_rewrap(app: Parts, batch: int, pause: float) -> None:
    """Re-wrap every sealed value under the primary master key (resumable).

    Rotation: add the new key as vault.master_key_file, list the old one in
    vault.previous_key_files, reload every node (SIGHUP), run this, then drop the old key.
    """
    from gateway.lifecycle import rewrap as rewrapping

    keys = app.vault
    credentials = await app.open_credentials()
    secrets = credentials.secrets  # a separate Redis, when vault.backend = "redis"
    try:
        total = (await rewrapping.remaining(app.engine, keys)) + await secrets.remaining()
        click.echo(f"{total} sealed values to re-wrap under {keys.primary_key_id}", err=True)
        with click.progressbar(length=total, label="rewrap", file=sys.stderr) as bar:
            done = await rewrapping.rewrap(app.engine, keys, batch, bar.update, pause)
            done += await secrets.rewrap(batch, bar.update)
        left = (await rewrapping.remaining(app.engine, keys)) + await secrets.remaining()
    finally:
        await credentials.close()
    click.echo(f"re-wrapped {done}; none remain under an older key" if left == 0
               else f"re-wrapped {done}; run again to finish")


@vault.command("reseal")
@shared.batches
@shared.with_parts
async def vault_reseal(app: Parts, batch: int, pause: float) -> None:
    """Seal values written before tenant keys (queued and held copies, replies kept for
    review, DKIM keys, webhook secrets) under their tenant's key (resumable, online)."""
    from gateway.lifecycle import rewrap as rewrapping

    done = await rewrapping.reseal(app.engine, app.vault,
                                   app.tenant_sealer, batch, pause=pause)
    click.echo(f"re-sealed {done} values under their tenant's key")
