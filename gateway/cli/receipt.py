"""`gateway receipt ...`: signed opt-out receipts — the public keys, an offline check of
one receipt, and a person's receipts from a tenant (optout/receipts.py)."""

from __future__ import annotations

import json
import sys
from typing import IO, TYPE_CHECKING

import click

from gateway.cli import shared
from gateway.errors import InvalidValue
from gateway.optout import receipts

if TYPE_CHECKING:
    from gateway.app.parts import Parts


@click.group()
def receipt() -> None:
    """Signed opt-out receipts: the public keys, verify one, list a person's."""


async def _signer(app: Parts) -> receipts.ReceiptSigner:
    await app.purpose_keys.ensure(receipts.PURPOSE)
    return app.receipts


@receipt.command()
@shared.with_parts
async def key(app: Parts) -> None:
    """Print every public key that ever signed a receipt (JSON: the document the public
    listener serves at /.well-known/ocg-receipt-keys.json)."""
    click.echo(json.dumps((await _signer(app)).key_document(), indent=1))


@receipt.command()
@click.argument("receipt_file", type=click.File("r"))
@click.option("--keys", "keys_file", type=click.File("r"), required=True,
              help="The key document (`gateway receipt key`, or the well-known URL's).")
def verify(receipt_file: IO[str], keys_file: IO[str]) -> None:
    """Check a receipt (a file, or - for standard input) offline, against a key document:
    prints what it attests, or fails (exit 5) when one byte of it was changed."""
    try:
        keys = receipts.keys_from(json.loads(keys_file.read()))
        fields = receipts.verify(receipt_file.read().strip(), keys)
    except (receipts.InvalidReceipt, ValueError) as exc:
        raise shared.CliError(f"Not a valid receipt: {exc}.", InvalidValue.exit_code) from None
    for name in sorted(fields):
        click.echo(f"{name}\t{fields[name]}")
    click.echo("valid", file=sys.stderr)


@receipt.command(name="list")
@click.argument("tenant_name")
@click.argument("recipient")
@shared.with_parts
async def list_receipts(app: Parts, tenant_name: str, recipient: str) -> None:
    """A person's receipts from a tenant, one per line (the address is digested)."""
    tenant = await app.directory_store.tenant(tenant_name)
    digest = await app.with_digest(app.digest)
    async with app.engine.connect() as conn:
        for text in await receipts.receipts_of(conn, tenant.id, digest(recipient.strip())):
            click.echo(text)
