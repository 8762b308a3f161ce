"""`gateway queue ...`: the delivery queue."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from gateway.cli import shared
from gateway.errors import (
    Conflict,
    InvalidValue,
)

if TYPE_CHECKING:
    from gateway.app.parts import Parts


def copy_line(c: Any) -> str:
    due = c.next_attempt_at.strftime("%Y-%m-%d %H:%M:%S") if c.next_attempt_at else "-"
    sender = c.envelope_from or "<>"
    return (f"{c.id}\t{c.queue_id}\t{c.kind.value}\t{c.state.value}\t{c.attempts}\t{due}\t"
            f"{sender} -> {c.recipient}\t{c.reply}")


@click.group()
def queue() -> None:
    """The delivery queue: copies waiting for a retry, and reports owed to senders."""


@queue.command("list")
@click.option("--all", "everything", is_flag=True, help="Include finished copies.")
@click.option("--tenant", "tenant_name", help="Only this tenant's copies.")
@shared.with_parts
async def queue_list(app: Parts, everything: bool,
                     tenant_name: str | None) -> None:
    """List the copies waiting for a retry, and the delivery reports owed."""
    from gateway.delivery.queue import OPEN_STATES, State

    queue_store = app.queue
    tenant_id = (await app.directory_store.tenant(tenant_name)).id if tenant_name else None
    states = list(State) if everything else list(OPEN_STATES)
    click.echo("id\tqueue id\tkind\tstate\tattempts\tnext attempt (UTC)\tenvelope\tlast reply")
    for c in await queue_store.listing(states, tenant_id):
        click.echo(copy_line(c))


@queue.command("show")
@click.argument("copy_id", type=int)
@shared.with_parts
async def queue_show(app: Parts, copy_id: int) -> None:
    """Show one queued copy: its attempts and the replies they got."""
    queue_store = app.queue
    c = await queue_store.get(copy_id)
    for label, value in (("id", c.id), ("queue id", c.queue_id), ("kind", c.kind.value),
                         ("state", c.state.value), ("envelope from", c.envelope_from or "<>"),
                         ("recipient", c.recipient), ("attempts", c.attempts),
                         ("last reply", c.reply), ("created", c.created_at),
                         ("next attempt", c.next_attempt_at), ("expires", c.expires_at),
                         ("message id", c.message_id or "-")):
        click.echo(f"{label}\t{value}")


@queue.command("retry")
@click.argument("copy_id", type=int, required=False)
@click.option("--all", "everything", is_flag=True, help="Every deferred copy.")
@shared.with_parts
async def queue_retry(app: Parts, copy_id: int | None,
                      everything: bool) -> None:
    """Make a deferred copy (or all) due now; a running gateway sends it within a second."""
    if copy_id is None and not everything:
        raise InvalidValue("Give a copy id, or --all.")
    queue_store = app.queue
    count = await queue_store.retry_now(copy_id)
    if copy_id is not None and count == 0:
        raise Conflict(f"Queued copy {copy_id} is not waiting for a retry.")
    click.echo(f"{count} copies due now")


@queue.command("delete")
@click.argument("copy_id", type=int)
@click.option("--reason", required=True, help="Told to the sender in the delivery report.")
@shared.with_parts
async def queue_delete(app: Parts, copy_id: int, reason: str) -> None:
    """Remove a waiting copy; the sender gets a delivery report saying so."""
    await app.open_suppressions()  # the worker checks them, and names people by digest
    worker = app.worker
    await worker.delete(copy_id, reason, shared.actor())
    click.echo(f"copy {copy_id} deleted; a delivery report to the sender is queued")
