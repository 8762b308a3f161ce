"""`gateway report`: the evidence pack of a tenant and period (a signed JSON and its PDF),
and `gateway report verify`, which checks one against the keys and the audit trail."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from gateway.cli import shared
from gateway.errors import InvalidValue
from gateway.optout import receipts
from gateway.reports import pack as packs
from gateway.reports.pack_pdf import render
from gateway.reports.period import period

if TYPE_CHECKING:
    from gateway.app.parts import Parts


def _name(tenant: str, start: str, end: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", tenant)[:60]
    return f"evidence-{safe}-{start[:10]}-{end[:10]}"


@click.group(invoke_without_command=True)
@click.option("--tenant", "tenant_name", default=None, help="The tenant (required).")
@click.option("--from", "start", default=None, help="First day (2026-11-01) or ISO time; "
                                                    "default: 30 days before --to.")
@click.option("--to", "end", default=None, help="The day or time it stops before; "
                                                "default: now.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=".",
              help="Where to write the JSON and the PDF (default: here).")
@click.pass_context
def report(ctx: click.Context, tenant_name: str | None, start: str | None, end: str | None,
           out_dir: str) -> None:
    """The evidence pack of a tenant and period: opt-outs and their enforcement, copies
    after an opt-out, bounce and complaint rates by provider, breakers, held messages,
    lawful-basis decisions, data-subject requests, keys, policy versions and purges —
    from the audit trail alone, signed. Writes evidence-<tenant>-<from>-<to>.json and .pdf."""
    if ctx.invoked_subcommand is not None:
        return
    if not tenant_name:
        raise click.UsageError("--tenant is required (or a command: verify).")
    _make_pack(tenant_name=tenant_name, start=start, end=end, out_dir=out_dir)


@shared.with_parts
async def _make_pack(app: Parts, tenant_name: str, start: str | None, end: str | None,
                     out_dir: str) -> None:
    begin, stop = period(start, end)
    tenant = await app.directory_store.tenant(tenant_name)
    await app.purpose_keys.ensure(receipts.PURPOSE)
    async with app.engine.connect() as conn:
        document = await packs.generate(conn, tenant.id, tenant.name, begin, stop)
    pack = packs.signed(document, app.receipts)
    pdf = render(pack)
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        base = folder / _name(tenant.name, document["period"]["from"],
                              document["period"]["to"])
        json_path, pdf_path = base.with_suffix(".json"), base.with_suffix(".pdf")
        json_path.write_text(json.dumps(pack, indent=1, sort_keys=True) + "\n")
        pdf_path.write_bytes(pdf)
    except OSError as exc:
        raise shared.CliError(f"Cannot write the pack in {out_dir}: {exc.strerror}.",
                              InvalidValue.exit_code) from None
    click.echo(f"{json_path}\n{pdf_path}")
    click.echo(f"sha256 {pack['sha256']}  signed with receipt key {pack['signature']['key']}"
               + ("" if document["audit"]["settled"] else
                  "  (the period has not settled: generate it again 10 minutes after its end "
                  "for the final figures)"), err=True)


@report.command()
@click.argument("pack_file", type=click.File("r"))
@click.option("--keys", "keys_file", type=click.File("r"), default=None,
              help="A key document (`gateway receipt key`) to check the signature offline; "
                   "default: this gateway's keys.")
@click.option("--offline", is_flag=True,
              help="Check the hash and signature only; do not read the audit trail.")
def verify(pack_file: IO[str], keys_file: IO[str] | None, offline: bool) -> None:
    """Check an evidence pack (its JSON): the hash is the document's, the signature is the
    gateway's, and — unless --offline — every figure, recomputed from the audit trail up to
    the same chain heads, is the same. Exit 5 names what does not hold."""
    try:
        pack = packs.read(pack_file.read())
        keys = receipts.keys_from(json.loads(keys_file.read())) if keys_file else None
    except (packs.InvalidPack, receipts.InvalidReceipt, ValueError) as exc:
        raise shared.CliError(f"Not a valid evidence pack: {exc}.",
                              InvalidValue.exit_code) from None
    if keys is not None and offline:
        _check(pack, keys)
        click.echo("signature valid (figures not recomputed: --offline)", err=True)
        return
    _verify_with_gateway(pack=pack, keys=keys, offline=offline)


def _check(pack: dict[str, Any], keys: dict[int, bytes]) -> str:
    try:
        return packs.check(pack, keys)
    except packs.InvalidPack as exc:
        raise shared.CliError(f"Not a valid evidence pack: {exc}.",
                              InvalidValue.exit_code) from None


@shared.with_parts
async def _verify_with_gateway(app: Parts, pack: dict[str, Any],
                               keys: dict[int, bytes] | None, offline: bool) -> None:
    if keys is None:
        await app.purpose_keys.ensure(receipts.PURPOSE)
        keys = receipts.keys_from(app.receipts.key_document())
    sha = _check(pack, keys)
    click.echo(f"sha256 {sha}: the document's, signed by receipt key "
               f"{pack['signature']['key']}")
    if offline:
        return
    async with app.engine.connect() as conn:
        try:
            found = await packs.recheck(conn, pack["document"])
        except packs.InvalidPack as exc:
            raise shared.CliError(f"Not a valid evidence pack: {exc}.",
                                  InvalidValue.exit_code) from None
    for problem in found.problems:
        click.echo(f"trail: {problem}")
    for difference in found.differences:
        click.echo(f"differs: {difference}")
    if not found.holds:
        raise shared.CliError("The pack does not match the audit trail.",
                              InvalidValue.exit_code)
    click.echo("every figure recomputed from the audit trail: the same", err=True)
    sys.stdout.flush()
