"""`gateway trace`: every verdict, attempt and reply for one message."""

from __future__ import annotations

import click

from gateway.cli import parts, shared
from gateway.cli.queue import copy_line
from gateway.config import Config
from gateway.directory.store import DirectoryStore


@click.command()
@click.argument("reference")
@click.option("--recipient", "recipients", multiple=True,
              help="Name this recipient in the trace (the trail keeps only digests).")
@shared.with_store
async def trace(store: DirectoryStore, config: Config, reference: str,
                recipients: tuple[str, ...]) -> None:
    """Everything about a message: by queue id or Message-ID."""
    from gateway.queue import trace as tracing

    queue_store, _, key = await parts.queue_parts(store.engine, config)
    for queue_id in await tracing.queue_ids_for(store.engine, reference):
        result = await tracing.trace(store.engine, queue_store, queue_id, key, recipients)
        click.echo(f"queue id {queue_id}")
        for line in result.lines:
            at = line.at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
            who = f" {line.who}" if line.who else ""
            click.echo(f"  {at}  {line.event}{who}  {line.text}".rstrip())
        if result.copies:
            click.echo("  queue:")
            for c in result.copies:
                click.echo("    " + copy_line(c))
