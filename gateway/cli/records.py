"""`gateway records ...`: a tenant's recipient attribute and consent records, imported from
CSV (lawful/importer.py); the addresses are digested as they are read, never stored."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from gateway.cli import shared
from gateway.lawful.importer import Imported, import_attributes, import_consents
from gateway.lawful.records import EXPORT_HEADER, consent_export

if TYPE_CHECKING:
    from gateway.app.parts import Parts

CSV_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeError) as exc:
        raise shared.CliError(f"Cannot read {path} ({type(exc).__name__}).", 5) from None


def _report(found: Imported) -> None:
    click.echo(f"{found.imported} imported, {found.refused} refused")
    for problem in found.problems:
        click.echo(problem, err=True)


@click.group()
def records() -> None:
    """Recipient attribute and consent records (the lawful basis's signals): import, and
    export the consents."""


@records.command("import-attributes")
@click.argument("tenant_name")
@click.argument("path", type=CSV_FILE)
@shared.with_parts
async def import_attributes_command(app: Parts, tenant_name: str, path: Path) -> None:
    """CSV with address,country,kind (kind: named, generic, sole-trader)."""
    tenant = await app.directory_store.tenant(tenant_name)
    await app.digest.open()
    _report(await import_attributes(app.engine, app.lawful.index, tenant.id, _read(path),
                                    app.digest, shared.actor()))


@records.command("import-consent")
@click.argument("tenant_name")
@click.argument("path", type=CSV_FILE)
@shared.with_parts
async def import_consent_command(app: Parts, tenant_name: str, path: Path) -> None:
    """CSV with address,basis,given_at,source and optionally method,evidence,scope,
    expires_at (basis: express, soft-opt-in, casl-purchase, casl-inquiry,
    casl-publication)."""
    tenant = await app.directory_store.tenant(tenant_name)
    await app.digest.open()
    _report(await import_consents(app.engine, app.lawful.index, tenant.id, _read(path),
                                  app.digest, shared.actor()))


@records.command("export-consent")
@click.argument("tenant_name")
@click.option("--output", "-o", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              help="Write the CSV here ('-': stdout).")
@shared.with_parts
async def export_consent_command(app: Parts, tenant_name: str, output: str) -> None:
    """CSV of the tenant's consent records that `import-consent` reads back. People are
    named by digest (no address is stored): it goes back into this installation only."""
    tenant = await app.directory_store.tenant(tenant_name)
    async with app.engine.connect() as conn:
        rows = await consent_export(conn, tenant.id)
    out = sys.stdout if output == "-" else Path(output).open("w", newline="")  # noqa: SIM115
    try:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(EXPORT_HEADER)
        writer.writerows(rows)
    finally:
        if out is not sys.stdout:
            out.close()
