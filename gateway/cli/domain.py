"""`gateway domain ...`: a tenant's sending domains, their proof and checks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from gateway.cli import shared

if TYPE_CHECKING:
    from gateway.app.parts import Parts


@click.group()
def domain() -> None:
    """A tenant's sending domains."""


@domain.command("add")
@click.argument("tenant_name")
@click.argument("name")
@shared.with_parts
async def domain_add(app: Parts, tenant_name: str, name: str) -> None:
    """Add a sending domain to a tenant (then 'gateway domain verify')."""
    added = await app.directory_store.add_domain(tenant_name, name, shared.actor())
    click.echo(f"domain {added} added to {tenant_name}")


@domain.command("list")
@click.option("--tenant", "tenant_name", help="Only this tenant's domains.")
@shared.with_parts
async def domain_list(app: Parts, tenant_name: str | None) -> None:
    """List domains, their tenant and whether they are verified."""
    for owner, name in await app.directory_store.list_domains(tenant_name):
        click.echo(f"{owner}\t{name}")


@domain.command("verify")
@click.argument("name")
@shared.with_parts
async def domain_verify(app: Parts, name: str) -> None:
    """Prove a domain: prints the TXT record to publish, then (run again) checks it."""
    from gateway.directory.domain_check import DnsLookup, DomainChecks, Level

    checks = DomainChecks(app.engine, app.config)
    finding = await checks.verify(name.strip().lower().rstrip("."), DnsLookup(app.config.dns),
                                  shared.actor())
    click.echo(finding.line())
    if finding.level is Level.FAIL:
        raise SystemExit(1)


@domain.command("check")
@click.argument("name")
@shared.with_parts
async def domain_check(app: Parts, name: str) -> None:
    """Report SPF, DKIM, DMARC, MX and the link-domain CNAME as receivers see them.

    One line per finding (ok / warn / fail); exit status 1 if any fails."""
    from gateway.directory.domain_check import DnsLookup, DomainChecks, Level

    findings = await DomainChecks(app.engine, app.config).report(
        name.strip().lower().rstrip("."), DnsLookup(app.config.dns), app.dkim, shared.actor())
    for finding in findings:
        click.echo(finding.line())
    if any(f.level is Level.FAIL for f in findings):
        raise SystemExit(1)
