"""`gateway purge`, `gateway retention` and `gateway tenant legal-hold`: retention from the
command line (a running gateway purges every `[retention] interval` by itself)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from gateway.cli import shared
from gateway.cli.audit import anchor_key
from gateway.errors import VaultError
from gateway.lifecycle.retention import schedule_markdown

if TYPE_CHECKING:
    from gateway.app.parts import Parts


@click.command()
@shared.with_parts
async def purge(app: Parts) -> None:
    """Delete what is past its retention in every store now; print the counts."""
    key = await anchor_key(app)
    if key is None:
        raise VaultError("The audit-anchor key does not exist yet: start the gateway once "
                         "(or run 'gateway audit anchor').")
    await app.open_suppressions()  # and the audit digest that names people
    purged = await app.retention.run_once()
    for name, count in purged.counts.items():
        click.echo(f"{name}\t{count}")
    click.echo(f"purged {purged.total}")


@click.command()
@click.pass_context
def retention(ctx: click.Context) -> None:
    """The retention schedule of every store of personal data, with this configuration's
    values (a Markdown table for the record of processing)."""
    click.echo(schedule_markdown(shared.load_config(ctx)), nl=False)


@click.command("legal-hold")
@click.argument("name")
@click.option("--reason", default=None, help="Place the hold, with why (a case reference).")
@click.option("--lift", is_flag=True, help="Lift the hold.")
@shared.with_parts
async def tenant_legal_hold(app: Parts, name: str,
                            reason: str | None, lift: bool) -> None:
    """Suspend (or, with --lift, resume) purge and erasure of the tenant's held messages and
    suppression entries. Without options: show the hold."""
    if lift and reason:
        raise click.UsageError("Give --reason to place a hold or --lift to lift it, not both.")
    if reason is not None:
        if not reason.strip():
            raise click.UsageError("--reason must say why (e.g. a case reference).")
        await app.directory_store.set_legal_hold(name, reason.strip(), shared.actor())
    elif lift:
        await app.directory_store.set_legal_hold(name, None, shared.actor())
    hold = await app.directory_store.legal_hold(name)
    click.echo(f"tenant {name}: no legal hold" if hold is None else
               f"tenant {name}: legal hold since {hold[0]:%Y-%m-%d %H:%M}Z ({hold[1]})")
