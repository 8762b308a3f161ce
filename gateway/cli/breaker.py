"""`gateway breaker ...`: reputation breakers from the command line (the host's own way to
resume one; the API and the review pages need a compliance key or reviewer)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from gateway.cli import shared

if TYPE_CHECKING:
    from gateway.app.parts import Parts
    from gateway.limits.breakers import Breaker


def _line(app: Parts, b: Breaker) -> str:
    rate = f"{b.rate * 100:.2f}%/{b.window}" if b.window != "now" else "now"
    return (f"{b.id}\t{b.state}\t{app.breakers.describe(b.scope)}\t{b.metric}\t{rate}\t"
            f"{b.changed_at:%Y-%m-%d %H:%M}\t{b.changed_by}")


@click.group()
def breaker() -> None:
    """Reputation breakers: list, resume."""


@breaker.command(name="list")
@click.option("--tenant", "tenant_name", default=None, help="Only this tenant's breakers.")
@shared.with_parts
async def list_breakers(app: Parts, tenant_name: str | None) -> None:
    """One line each: id, state, scope, metric, rate and window, when, by whom."""
    await app.directory.refresh()  # names the scopes
    tenant_id = (await app.directory_store.tenant(tenant_name)).id if tenant_name else None
    for b in await app.breakers.listing(tenant_id):
        click.echo(_line(app, b))


@breaker.command()
@click.argument("breaker_id", type=int)
@click.option("--reason", required=True, help="Why it may send again (kept in the audit "
              "trail).")
@shared.with_parts
async def resume(app: Parts, breaker_id: int, reason: str) -> None:
    """Let a paused tenant, domain or mailbox send again; every node follows within
    seconds, and its rates start afresh from now."""
    await app.directory.refresh()
    click.echo(_line(app, await app.breakers.resume(breaker_id, shared.actor(), reason)))
