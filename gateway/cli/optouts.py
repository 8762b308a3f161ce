"""`gateway optouts ...`: replies that may ask to stop, for a person to decide (the same
queue as the review pages' "Possible opt-outs"). Every read and decision is audited under
the operator's login name."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from gateway.cli import shared
from gateway.reports.optouts import optout_report, render_text
from gateway.reports.period import period

if TYPE_CHECKING:
    from gateway.app.parts import Parts

STATUSES = click.Choice(["pending", "confirmed", "dismissed"])


async def _reviews(app: Parts) -> Any:
    await app.open_suppressions()  # and the audit digest that names people in events
    return app.optout_reviews


def _line(item: Any) -> str:
    return (f"{item.id}\t{item.status}\t{item.created_at:%Y-%m-%d %H:%M}\t"
            f"tenant {item.tenant_id}\tqueue {item.queue_id}\t{item.rule}")


@click.group()
def optouts() -> None:
    """Possible opt-outs from replies (list, show, confirm, dismiss); the opt-out report."""


@optouts.command(name="list")
@click.option("--tenant", "tenant_name", default=None, help="Only this tenant's replies.")
@click.option("--status", type=STATUSES, default="pending", show_default=True,
              help="Which replies: waiting for a person, or already decided.")
@click.option("--limit", type=int, default=100, show_default=True, help="At most this many rows.")
@shared.with_parts
async def list_optouts(app: Parts, tenant_name: str | None,
                       status: str, limit: int) -> None:
    """One line each: id, status, time, tenant, the queue id it answers, the rule."""
    tenant_id = (await app.directory_store.tenant(tenant_name)).id if tenant_name else None
    for item in await (await _reviews(app)).listing(tenant_id, status, limit):
        click.echo(_line(item))


@optouts.command()
@click.argument("review_id", type=int)
@shared.with_parts
async def show(app: Parts, review_id: int) -> None:
    """The reply's sender, subject and own words (audited: personal data)."""
    reviews = await _reviews(app)
    click.echo(_line(await reviews.get(review_id)))
    reply = await reviews.reply(review_id, shared.actor())
    click.echo(f"From: {reply.sender}\nSubject: {reply.subject}\n\n{reply.words}")


@optouts.command()
@click.argument("review_id", type=int)
@click.option("--reason", required=True, help="Why (kept in the audit trail).")
@shared.with_parts
async def confirm(app: Parts, review_id: int, reason: str) -> None:
    """It is an opt-out: suppress the recipient for the tenant (reason unsubscribe)."""
    made = await (await _reviews(app)).confirm(review_id, shared.actor(), reason)
    click.echo(f"possible opt-out {review_id} confirmed"
               + ("" if made else " (the recipient was suppressed already)"))


@optouts.command()
@click.argument("review_id", type=int)
@click.option("--reason", required=True, help="Why (kept in the audit trail).")
@shared.with_parts
async def dismiss(app: Parts, review_id: int, reason: str) -> None:
    """Not an opt-out: nobody is suppressed."""
    await (await _reviews(app)).dismiss(review_id, shared.actor(), reason)
    click.echo(f"possible opt-out {review_id} dismissed")


@optouts.command()
@click.option("--tenant", "tenant_name", required=True, help="The tenant reported on.")
@click.option("--from", "start", default=None,
              help="First day or ISO time (default: 30 days before --to).")
@click.option("--to", "end", default=None, help="Day or ISO time it stops before (default: now).")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@shared.with_parts
async def report(app: Parts, tenant_name: str, start: str | None, end: str | None,
                 as_json: bool) -> None:
    """Opt-outs that took effect in the period by channel, request-to-enforcement time
    (p50/p99/max, per node), and the copies relayed after a person's opt-out (0) —
    computed from the audit trail alone."""
    begin, stop = period(start, end)
    tenant = await app.directory_store.tenant(tenant_name)
    async with app.engine.connect() as conn:
        found = await optout_report(conn, tenant.id, begin, stop)
    if as_json:
        click.echo(json.dumps({"tenant": tenant.name, **found.to_json()}, indent=2))
    else:
        click.echo(render_text(found, tenant.name))
