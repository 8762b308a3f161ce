"""`gateway held ...`: the review queue from the command line. Every read of a body and
every decision is audited under the operator's login name."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from gateway.cli import shared
from gateway.directory.store import DirectoryStore
from gateway.review.discard import queue_discard_report
from gateway.review.held import HeldMessage, HeldStore

if TYPE_CHECKING:
    from gateway.app.parts import Parts

STATUSES = click.Choice(["held", "refused", "release-requested", "released", "discarded"])


async def _store(app: Parts) -> HeldStore:
    held: HeldStore = await app.with_digest(app.held)
    return held


def _line(h: HeldMessage) -> str:
    return (f"{h.id}\t{h.queue_id}\t{h.status}\t{h.check_name}\t{h.created_at:%Y-%m-%d %H:%M}"
            f"\t{h.envelope_from}\t{len(h.recipients)} rcpt\t{h.reason}")


@click.group()
def held() -> None:
    """Held and refused messages: list, show, body, release, discard, note."""


@held.command(name="list")
@click.option("--tenant", "tenant_name", default=None, help="Only this tenant's messages.")
@click.option("--status", type=STATUSES, default="held", show_default=True,
              help="Held (waiting for a decision), refused, released or discarded.")
@click.option("--check", "check_name", default=None, help="e.g. sensitive-data")
@click.option("--limit", type=int, default=100, show_default=True, help="At most this many rows.")
@shared.with_parts
async def list_held(app: Parts, tenant_name: str | None,
                    status: str, check_name: str | None, limit: int) -> None:
    """One line each: id, queue id, status, check, time, sender, recipients, reason."""
    tenant_id = (await app.directory_store.tenant(tenant_name)).id if tenant_name else None
    for h in await (await _store(app)).listing(tenant_id, status, check_name, limit):
        click.echo(_line(h))


@held.command()
@click.argument("held_id", type=int)
@shared.with_parts
async def show(app: Parts, held_id: int) -> None:
    """The metadata and every verdict (not the body)."""
    h = await (await _store(app)).get(held_id, viewer=shared.actor())
    click.echo(_line(h))
    click.echo(f"  login {h.login}  mailbox {h.mailbox_id}  size {h.size}  subject {h.subject}")
    click.echo(f"  recipients {', '.join(h.recipients)}")
    for check, action, reason in h.verdicts:
        click.echo(f"  {check}={action}" + (f"  {reason}" if reason else ""))
    for note in h.notes:
        click.echo(f"  note {note['at']} {note['by']}: {note['text']}")


@held.command()
@click.argument("held_id", type=int)
@shared.with_parts
async def body(app: Parts, held_id: int) -> None:
    """The message as received (audited: it holds personal data)."""
    sys.stdout.buffer.write(await (await _store(app)).body(held_id, shared.actor()))


@held.command()
@click.argument("held_id", type=int)
@click.option("--reason", required=True, help="Why it may go out (kept in the audit trail).")
@shared.with_parts
async def release(app: Parts, held_id: int, reason: str) -> None:
    """Send it after all: the running gateway queues each recipient's copy within seconds
    (suppression is checked again before sending)."""
    h = await (await _store(app)).request_release(held_id, shared.actor(), reason)
    click.echo(_line(h))


@held.command()
@click.argument("held_id", type=int)
@click.option("--reason", required=True, help="Why it is discarded (kept in the audit trail).")
@shared.with_parts
async def discard(app: Parts, held_id: int, reason: str) -> None:
    """Never send it; the sender gets a delivery report (no body) and the tenant an event."""
    held_store = await _store(app)
    h = await held_store.discard(held_id, shared.actor(), reason)
    message = await held_store.body(held_id, "review:discard-report")
    await queue_discard_report(app.queue,
                               h, message, app.config)
    click.echo(_line(h))


@held.command()
@click.argument("held_id", type=int)
@click.argument("text")
@shared.with_parts
async def note(app: Parts, held_id: int, text: str) -> None:
    """Add a reviewer's note."""
    click.echo(_line(await (await _store(app)).note(held_id, shared.actor(), text)))


async def _selection(held_store: HeldStore, store: DirectoryStore, tenant_name: str,
                     check_name: str | None) -> list[HeldMessage]:
    """Every held message of a tenant (optionally of one check), oldest first."""
    tenant_id = (await store.tenant(tenant_name)).id
    chosen: list[HeldMessage] = []
    after = 0
    while page := await held_store.listing(tenant_id, "held", check_name, 500, after):
        chosen.extend(page)
        after = page[-1].id
    return chosen


@held.command(name="release-all")
@click.option("--tenant", "tenant_name", required=True,
              help="The tenant whose held messages are released.")
@click.option("--check", "check_name", default=None, help="Only the messages this check held.")
@click.option("--reason", required=True, help="Why they may go out (kept in the audit trail).")
@shared.with_parts
async def release_all(app: Parts, tenant_name: str,
                      check_name: str | None, reason: str) -> None:
    """Release every held message of a tenant (of one check, with --check)."""
    held_store = await _store(app)
    chosen = await _selection(held_store, app.directory_store, tenant_name, check_name)
    for h in chosen:
        await held_store.request_release(h.id, shared.actor(), reason)
    click.echo(f"{len(chosen)} released")


@held.command(name="discard-all")
@click.option("--tenant", "tenant_name", required=True,
              help="The tenant whose held messages are discarded.")
@click.option("--check", "check_name", default=None, help="Only the messages this check held.")
@click.option("--reason", required=True, help="Why they are discarded (kept in the audit trail).")
@shared.with_parts
async def discard_all(app: Parts, tenant_name: str,
                      check_name: str | None, reason: str) -> None:
    """Discard every held message of a tenant (of one check, with --check); each sender
    gets its report."""
    held_store = await _store(app)
    queue = app.queue
    chosen = await _selection(held_store, app.directory_store, tenant_name, check_name)
    for h in chosen:
        done = await held_store.discard(h.id, shared.actor(), reason)
        message = await held_store.body(h.id, "review:discard-report")
        await queue_discard_report(queue, done, message, app.config)
    click.echo(f"{len(chosen)} discarded")
