"""`gateway subject export|erase` and `gateway tenant delete`: data subjects' rights and
tenant offboarding from the command line (the admin API offers the subject calls too)."""

from __future__ import annotations

import json
from typing import Any

import click

from gateway.cli import (
    _actor,
    _credentials,
    _digest,
    _held_store,
    _queue_store,
    _suppressions,
    _vault,
    cli,
    tenant,
    with_store,
)
from gateway.config import Config
from gateway.offboarding import delete_tenant
from gateway.store.directory import DirectoryStore
from gateway.subjects import Subjects
from gateway.vault.purpose import PurposeKeys


async def _subjects(store: DirectoryStore, config: Config) -> Subjects:
    vault = _vault(config)
    purposes = PurposeKeys(store.engine, vault)
    held = await _held_store(store.engine, config)
    return Subjects(store.engine, await _suppressions(store.engine, config, purposes),
                    await _digest(store.engine, config, purposes), held,
                    _queue_store(store.engine, config), config.smtp.hostname)


def _print(doc: dict[str, Any]) -> None:
    click.echo(json.dumps(doc, indent=2, ensure_ascii=False, default=str))


@cli.group()
def subject() -> None:
    """Data subjects: export everything held about one address, or erase it."""


@subject.command("export")
@click.argument("address")
@click.option("--tenant", "tenant_name", default=None, help="Only this tenant's data.")
@with_store
async def subject_export(store: DirectoryStore, config: Config, address: str,
                         tenant_name: str | None) -> None:
    """One JSON document: suppression entries, events, opens, queued copies, held
    messages and audit rows about ADDRESS (audited)."""
    tenant_id = (await store.tenant(tenant_name)).id if tenant_name else None
    _print(await (await _subjects(store, config)).export(address, _actor(), tenant_id))


@subject.command("erase")
@click.argument("address")
@click.option("--evidence", required=True, help="The request (e.g. its ticket).")
@click.option("--tenant", "tenant_name", default=None, help="Only this tenant's data.")
@with_store
async def subject_erase(store: DirectoryStore, config: Config, address: str, evidence: str,
                        tenant_name: str | None) -> None:
    """Delete everything held about ADDRESS; keep a digest-only erasure entry so it is
    never mailed again. Prints the receipt."""
    tenant_id = (await store.tenant(tenant_name)).id if tenant_name else None
    _print(await (await _subjects(store, config)).erase(address, _actor(), evidence,
                                                        tenant_id))


@tenant.command("delete")
@click.argument("name")
@click.option("--confirm", required=True, help="The tenant's name again.")
@with_store
async def tenant_delete(store: DirectoryStore, config: Config, name: str, confirm: str) -> None:
    """Remove the tenant's data (revoking its mailbox tokens); a legal hold keeps its held
    messages and suppression entries. Prints the receipt."""
    if confirm != name:
        raise click.UsageError("--confirm must repeat the tenant's name.")
    credentials = await _credentials(store.engine, config)
    try:
        _print(await delete_tenant(store, credentials, name, _actor()))
    finally:
        await credentials.close()
