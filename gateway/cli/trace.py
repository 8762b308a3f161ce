"""`gateway trace`: every verdict, attempt and reply for one message."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from gateway.cli import shared
from gateway.cli.queue import copy_line

if TYPE_CHECKING:
    from gateway.app.parts import Parts


@click.command()
@click.argument("reference")
@click.option("--recipient", "recipients", multiple=True,
              help="Name this recipient in the trace (the trail keeps only digests).")
@shared.with_parts
async def trace(app: Parts, reference: str,
                recipients: tuple[str, ...]) -> None:
    """Everything about a message: by queue id or Message-ID."""
    from gateway.delivery import trace as tracing

    key = (await app.with_digest(app.digest)).key
    for queue_id in await tracing.queue_ids_for(app.engine, reference):
        result = await tracing.trace(app.engine, app.queue, queue_id, key, recipients)
        click.echo(f"queue id {queue_id}")
        for line in result.lines:
            at = line.at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
            who = f" {line.who}" if line.who else ""
            click.echo(f"  {at}  {line.event}{who}  {line.text}".rstrip())
        if result.copies:
            click.echo("  queue:")
            for c in result.copies:
                click.echo("    " + copy_line(c))
