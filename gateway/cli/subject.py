"""`gateway subject export|erase` and `gateway tenant delete`: data subjects' rights and
tenant offboarding from the command line (the admin API offers the subject calls too)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from gateway.cli import shared
from gateway.lifecycle.offboarding import delete_tenant
from gateway.lifecycle.subjects import Subjects
from gateway.reports.period import moment

if TYPE_CHECKING:
    from gateway.app.parts import Parts


async def _subjects(app: Parts) -> Subjects:
    await app.open_suppressions()  # and the audit digest that names people
    return app.subjects


def _print(doc: dict[str, Any]) -> None:
    click.echo(json.dumps(doc, indent=2, ensure_ascii=False, default=str))


@click.group()
def subject() -> None:
    """Data subjects: export everything held about one address, or erase it."""


REQUESTED_HELP = ("When the person asked (a date or ISO time; default: now): the evidence "
                  "pack reports the time from request to completion.")


def _requested(text: str | None) -> datetime | None:
    return moment(text, "--requested") if text else None


@subject.command("export")
@click.argument("address")
@click.option("--tenant", "tenant_name", default=None, help="Only this tenant's data.")
@click.option("--requested", default=None, help=REQUESTED_HELP)
@shared.with_parts
async def subject_export(app: Parts, address: str, tenant_name: str | None,
                         requested: str | None) -> None:
    """One JSON document: suppression entries, events, opens, queued copies, held
    messages and audit rows about ADDRESS (audited)."""
    tenant_id = (await app.directory_store.tenant(tenant_name)).id if tenant_name else None
    _print(await (await _subjects(app)).export(address, shared.actor(), tenant_id,
                                                         _requested(requested)))


@subject.command("erase")
@click.argument("address")
@click.option("--evidence", required=True, help="The request (e.g. its ticket).")
@click.option("--tenant", "tenant_name", default=None, help="Only this tenant's data.")
@click.option("--requested", default=None, help=REQUESTED_HELP)
@shared.with_parts
async def subject_erase(app: Parts, address: str, evidence: str,
                        tenant_name: str | None, requested: str | None) -> None:
    """Delete everything held about ADDRESS; keep a digest-only erasure entry so it is
    never mailed again. Prints the receipt."""
    tenant_id = (await app.directory_store.tenant(tenant_name)).id if tenant_name else None
    _print(await (await _subjects(app)).erase(address, shared.actor(), evidence,
                                                        tenant_id, _requested(requested)))


@click.command("delete")
@click.argument("name")
@click.option("--confirm", required=True, help="The tenant's name again.")
@shared.with_parts
async def tenant_delete(app: Parts, name: str, confirm: str) -> None:
    """Remove the tenant's data (revoking its mailbox tokens); a legal hold keeps its held
    messages and suppression entries. Prints the receipt."""
    if confirm != name:
        raise click.UsageError("--confirm must repeat the tenant's name.")
    credentials = await app.open_credentials()
    try:
        _print(await delete_tenant(app.directory_store, credentials, name, shared.actor()))
    finally:
        await credentials.close()
