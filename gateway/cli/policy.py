"""`gateway policy ...`: the lawful-basis table (docs/lawful-basis.md) — show the version in
force (unverified rows marked), list the versions, publish counsel's table. Not legal
advice: the gateway ships a default for counsel to confirm or replace."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from gateway.cli import shared
from gateway.lawful.table import Kind, Row

if TYPE_CHECKING:
    from gateway.app.parts import Parts


def _line(name: str, row: Row) -> str:
    decisions = "  ".join(f"{k.value}={row.decisions[k].value}" for k in Kind)
    mark = "" if row.verified else "  [UNVERIFIED]"
    note = f"  ({row.note})" if row.note else ""
    return f"{name:<8}{decisions}  source: {row.source}{note}{mark}"


@click.group()
def policy() -> None:
    """The lawful-basis table: show, versions, load (not legal advice)."""


@policy.command()
@click.option("--version", "number", type=int, default=None,
              help="An earlier version (default: the one in force).")
@shared.with_parts
async def show(app: Parts, number: int | None) -> None:
    """The table in force: one line per country, unverified rows marked."""
    found = await app.policies.get(number)
    table = found.table
    click.echo(f"{found.name}: {table.title}  (published {found.created_at:%Y-%m-%d %H:%M} "
               f"UTC by {found.created_by}; not legal advice)")
    for code, row in table.countries.items():
        click.echo(_line(code, row))
    click.echo(_line("other", table.default))


@policy.command()
@shared.with_parts
async def versions(app: Parts) -> None:
    """Every version: number, table id, when, by whom."""
    for found in await app.policies.versions():
        click.echo(f"{found.version}\t{found.table.policy_id}\t"
                   f"{found.created_at:%Y-%m-%d %H:%M}\t{found.created_by}")


@policy.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@shared.with_parts
async def load(app: Parts, path: Path) -> None:
    """Publish a table (TOML, as deploy/lawful-basis.toml): a new version, audited, in
    force on every node within seconds. The same document as the newest changes nothing."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise shared.CliError(f"Cannot read {path} ({type(exc).__name__}).", 5) from None
    found, new = await app.policies.publish(text, shared.actor(), path.name)
    click.echo(f"{found.name} {'published' if new else 'is already in force'}")
