"""`gateway dkim ...`: DKIM keys per tenant domain. Private keys never leave the vault;
these commands print only public keys and the DNS records to publish."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from gateway.cli import shared
from gateway.dkim.keys import DkimKeys, KeyInfo

if TYPE_CHECKING:
    from gateway.app.parts import Parts


@click.group()
def dkim() -> None:
    """DKIM signing keys: generate, list, show-dns, retire."""


def _keys(app: Parts) -> DkimKeys:
    return app.dkim


def _line(k: KeyInfo) -> str:
    state = "retired" if k.retired_at else "active"
    return f"{k.domain}\t{k.selector}\t{k.algorithm}\t{state}\t{k.created_at:%Y-%m-%d}"


@dkim.command()
@click.argument("domain")
@click.option("--algorithm", type=click.Choice(["rsa", "ed25519"]), default="rsa",
              show_default=True, help="RSA-2048 (every receiver) or Ed25519 (a second "
              "signature beside an RSA one).")
@click.option("--selector", default="", help="DNS selector (default ocg<yyyymm><r|e>).")
@shared.with_parts
async def generate(app: Parts, domain: str, algorithm: str,
                   selector: str) -> None:
    """Make a key for a tenant's sending domain and print its DNS record.

    The newest key of each algorithm signs (within seconds on running gateways): publish
    the record before mail goes out, or receivers see failing signatures."""
    info = await _keys(app).generate(domain, algorithm, selector, shared.actor())
    click.echo(info.dns_record())


@dkim.command(name="list")
@click.option("--tenant", "tenant_name", default=None, help="Only this tenant's keys.")
@click.option("--domain", default=None, help="Only this domain's keys.")
@shared.with_parts
async def list_keys(app: Parts, tenant_name: str | None,
                    domain: str | None) -> None:
    """Every key: domain, selector, algorithm, active or retired, created."""
    for k in await _keys(app).listing(tenant_name, domain):
        click.echo(_line(k))


@dkim.command(name="show-dns")
@click.argument("domain")
@shared.with_parts
async def show_dns(app: Parts, domain: str) -> None:
    """The TXT records to publish for a domain's active keys."""
    keys = [k for k in await _keys(app).listing(domain=domain) if not k.retired_at]
    if not keys:
        raise click.ClickException(f"No active DKIM key for {domain} (gateway dkim generate).")
    for k in keys:
        click.echo(k.dns_record())


@dkim.command()
@click.argument("domain")
@click.argument("selector")
@shared.with_parts
async def retire(app: Parts, domain: str, selector: str) -> None:
    """Stop signing with a key (its DNS record may go once mail signed with it is read)."""
    info = await _keys(app).retire(domain, selector, shared.actor())
    click.echo(_line(info))
