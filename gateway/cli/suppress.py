"""`gateway suppress ...`: the suppression lists from the command line.

A CLI operator is not bound to a tenant and may remove any entry (with a reason, and
evidence for opt-outs); every change is audited under the operator's login name.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from gateway.cli import shared
from gateway.directory.store import DirectoryStore
from gateway.errors import InvalidValue
from gateway.optout.suppressions import Actor
from suppression.bulk import Report
from suppression.entries import GLOBAL, Kind, Reason
from suppression.formats import OCG_HEADER, Format
from suppression.formats import export_row as ocg_row
from suppression.store import Filters

if TYPE_CHECKING:
    from gateway.app.parts import Parts

REASONS = click.Choice([r.value for r in Reason])


@click.group()
def suppress() -> None:
    """Suppression lists: per tenant (--tenant) or global (--global)."""


def scope_options(func: Any) -> Any:
    func = click.option("--global", "is_global", is_flag=True, help="The global list.")(func)
    return click.option("--tenant", "tenant_name", help="The tenant's list.")(func)


async def _scope(store: DirectoryStore, tenant_name: str | None, is_global: bool) -> int:
    if bool(tenant_name) == is_global:
        raise InvalidValue("Give exactly one of --tenant NAME or --global.")
    return GLOBAL if is_global else (await store.tenant(tenant_name or "")).id


def _operator() -> Actor:
    return Actor(shared.actor())


def _when(seconds: int | None) -> str:
    return "-" if seconds is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(seconds))


@suppress.command("add")
@click.argument("target")
@scope_options
@click.option("--reason", type=REASONS, default="manual", show_default=True,
              help="Why the address is suppressed.")
@click.option("--expires-days", type=click.IntRange(1, 3650), help="Default: never expires.")
@click.option("--note", default="", help="A note for reviewers (no personal data).")
@shared.with_parts
async def suppress_add(app: Parts, target: str,
                       tenant_name: str | None, is_global: bool, reason: str,
                       expires_days: int | None, note: str) -> None:
    """Suppress an address, a domain, or `*.domain` (the domain and its subdomains)."""
    scope = await _scope(app.directory_store, tenant_name, is_global)
    expires = int(time.time()) + expires_days * 86400 if expires_days else None
    suppressions = await app.open_suppressions()
    entry = await suppressions.add(_operator(), scope, target, Reason(reason), "cli", expires,
                                   note)
    click.echo(f"suppressed {entry.display} ({entry.kind.value}, {entry.reason.value}, "
               f"expires {_when(entry.expires_at)}) entry {entry.id}")


@suppress.command("remove")
@click.argument("target")
@scope_options
@click.option("--reason", "why", required=True, help="Why it is removed (audited).")
@click.option("--evidence", default="", help="Needed for unsubscribe, complaint and erasure "
              "entries: the request that allows it (ticket, message id).")
@shared.with_parts
async def suppress_remove(app: Parts, target: str,
                          tenant_name: str | None, is_global: bool, why: str,
                          evidence: str) -> None:
    """Remove an entry from a suppression list (audited; erasure entries stay)."""
    scope = await _scope(app.directory_store, tenant_name, is_global)
    suppressions = await app.open_suppressions()
    entry = await suppressions.remove(_operator(), scope, target, why, evidence)
    click.echo(f"removed entry {entry.id} ({entry.kind.value}, {entry.reason.value})")


@suppress.command("check")
@click.argument("address")
@click.option("--tenant", "tenant_name", required=True, help="Checked as this tenant sends.")
@shared.with_parts
async def suppress_check(app: Parts, address: str,
                         tenant_name: str) -> None:
    """Would ADDRESS be refused for TENANT? Exit 0 if not suppressed, 1 if it is."""
    tenant = await app.directory_store.tenant(tenant_name)
    suppressions = await app.open_suppressions()
    found = []
    for scope, label in ((tenant.id, tenant_name), (GLOBAL, "global")):
        for entry in await suppressions.lookup(_operator(), scope, address):
            found.append(entry)
            click.echo(f"suppressed\t{label}\t{entry.kind.value}\t{entry.reason.value}\t"
                       f"expires {_when(entry.expires_at)}\tentry {entry.id}")
    if not found:
        click.echo("not suppressed")
    sys.exit(1 if found else 0)


@suppress.command("list")
@scope_options
@click.option("--reason", type=REASONS, help="Only entries with this reason.")
@click.option("--kind", type=click.Choice([k.value for k in Kind]),
              help="Only entries of this kind (address, domain or *.domain).")
@click.option("--contains", help="Part of the address or domain.")
@click.option("--after", type=int, default=0, help="Entries after this id (paging).")
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True,
              help="At most this many entries.")
@shared.with_parts
async def suppress_list(app: Parts, tenant_name: str | None,
                        is_global: bool, reason: str | None, kind: str | None,
                        contains: str | None, after: int, limit: int) -> None:
    """List a suppression list's entries (searching a list is audited)."""
    scope = await _scope(app.directory_store, tenant_name, is_global)
    suppressions = await app.open_suppressions()
    filters = Filters(Reason(reason) if reason else None, Kind(kind) if kind else None,
                      contains=contains)
    for e in await suppressions.page(_operator(), scope, filters, after, limit):
        click.echo(f"{e.id}\t{e.display}\t{e.kind.value}\t{e.reason.value}\t{e.source}\t"
                   f"{_when(e.created_at)}\t{_when(e.expires_at)}")


@suppress.command("import")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True))
@scope_options
@click.option("--format", "fmt", type=click.Choice([f.value for f in Format]),
              help="Default: detected from the header row.")
@click.option("--reason", type=REASONS, default="manual", show_default=True,
              help="For rows that do not say (plain lists).")
@click.option("--strict", is_flag=True, help="Refuse the whole file if any row is bad.")
@click.option("--from-line", type=int, default=0, help="Resume an interrupted import here.")
@shared.with_parts
async def suppress_import(app: Parts, path: str,
                          tenant_name: str | None, is_global: bool, fmt: str | None,
                          reason: str, strict: bool, from_line: int) -> None:
    """Import a CSV or plain list; bad rows are reported by line and the good ones kept."""
    scope = await _scope(app.directory_store, tenant_name, is_global)
    suppressions = await app.open_suppressions()
    if strict and path == "-":
        raise InvalidValue("--strict reads the file twice; give a path, not stdin.")

    def open_file() -> BinaryIO:
        if path == "-":
            return open(sys.stdin.fileno(), "rb", closefd=False)
        return Path(path).open("rb")

    def progress(report: Report) -> None:
        if sys.stderr.isatty():
            click.echo(f"\r{report.rows} rows, {report.written} written, "
                       f"{report.bad_count} bad (line {report.last_line})", nl=False, err=True)

    report = await suppressions.import_file(_operator(), scope, open_file, Reason(reason),
                                            Format(fmt) if fmt else None, strict, from_line,
                                            progress)
    total = Path(path).stat().st_size if path != "-" else 0
    if sys.stderr.isatty():
        click.echo("", err=True)
    for item in report.bad:
        click.echo(f"line {item.line}: {item.message}", err=True)
    if report.bad_count > len(report.bad):
        click.echo(f"... and {report.bad_count - len(report.bad)} more bad rows", err=True)
    rate = report.rows / report.seconds if report.seconds else 0
    click.echo(f"imported {report.rows} rows ({total} bytes): {report.written} entries written, "
               f"{report.bad_count} bad, {report.skipped} skipped, {rate:,.0f} rows/s")
    if report.bad_count and not report.written:  # nothing usable: likely the wrong file
        raise InvalidValue(f"No entry written: all {report.bad_count} rows with an entry were "
                           "bad (is it the right file, or does it need --format?).")


@suppress.command("export")
@scope_options
@click.option("--output", "-o", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              help="Write the CSV here ('-': stdout).")
@shared.with_parts
async def suppress_export(app: Parts, tenant_name: str | None,
                          is_global: bool, output: str) -> None:
    """CSV that `suppress import` reads back into the same entries. Erased entries are
    digest-only: they go back only into an installation with the same digest key."""
    scope = await _scope(app.directory_store, tenant_name, is_global)
    suppressions = await app.open_suppressions()
    out = sys.stdout if output == "-" else Path(output).open("w", newline="")  # noqa: SIM115
    try:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(OCG_HEADER)
        async for entry in suppressions.stream(_operator(), scope, Filters()):
            writer.writerow(ocg_row(entry, suppressions.key_id))
    finally:
        if out is not sys.stdout:
            out.close()
