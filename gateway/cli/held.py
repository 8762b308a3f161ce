"""`gateway held ...`: the review queue from the command line. Every read of a body and
every decision is audited under the operator's login name."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from gateway.cli import shared
from gateway.review.decisions import Action, HeldDecisions
from gateway.review.held import HeldMessage, HeldStore

if TYPE_CHECKING:
    from gateway.app.parts import Parts

STATUSES = click.Choice(["held", "refused", "release-requested", "released", "discarded"])


async def _store(app: Parts) -> HeldStore:
    held: HeldStore = await app.with_digest(app.held)
    return held


async def _decisions(app: Parts) -> HeldDecisions:
    await _store(app)  # the audit digest the store names people with
    return app.held_decisions


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
    click.echo(_line(await (await _decisions(app)).decide(held_id, "release", shared.actor(),
                                                           reason)))


@held.command()
@click.argument("held_id", type=int)
@click.option("--reason", required=True, help="Why it is discarded (kept in the audit trail).")
@shared.with_parts
async def discard(app: Parts, held_id: int, reason: str) -> None:
    """Never send it; the sender gets a delivery report (no body) and the tenant an event."""
    click.echo(_line(await (await _decisions(app)).decide(held_id, "discard", shared.actor(),
                                                           reason)))


@held.command()
@click.argument("held_id", type=int)
@click.argument("text")
@shared.with_parts
async def note(app: Parts, held_id: int, text: str) -> None:
    """Add a reviewer's note."""
    click.echo(_line(await (await _decisions(app)).decide(held_id, "note", shared.actor(),
                                                           text)))


async def _all(app: Parts, action: Action, tenant_name: str, check_name: str | None,
               reason: str) -> int:
    decisions = await _decisions(app)
    tenant_id = (await app.directory_store.tenant(tenant_name)).id
    chosen = await decisions.still_held(tenant_id, check_name)
    return len(await decisions.decide_all(chosen, action, shared.actor(), reason))


@held.command(name="release-all")
@click.option("--tenant", "tenant_name", required=True,
              help="The tenant whose held messages are released.")
@click.option("--check", "check_name", default=None, help="Only the messages this check held.")
@click.option("--reason", required=True, help="Why they may go out (kept in the audit trail).")
@shared.with_parts
async def release_all(app: Parts, tenant_name: str,
                      check_name: str | None, reason: str) -> None:
    """Release every held message of a tenant (of one check, with --check)."""
    click.echo(f"{await _all(app, 'release', tenant_name, check_name, reason)} released")


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
    click.echo(f"{await _all(app, 'discard', tenant_name, check_name, reason)} discarded")
