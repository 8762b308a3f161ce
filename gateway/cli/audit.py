"""`gateway audit verify|anchor`: the audit trail's tamper evidence from the command line."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from gateway.audit import chain as audit_chain
from gateway.audit.verify import verify
from gateway.cli import shared
from gateway.errors import VaultError

if TYPE_CHECKING:
    from gateway.app.parts import Parts


async def anchor_key(app: Parts) -> bytes | None:
    """The audit-anchor key, or None if it does not exist yet (no gateway has started)."""
    keys = app.purpose_keys
    await keys.load()
    try:
        key: bytes = keys.current(audit_chain.ANCHOR_PURPOSE)[1]
    except VaultError:
        return None
    return key


@click.group()
def audit() -> None:
    """The audit trail: verify its hash chains and anchors, anchor it now."""


@audit.command("verify")
@shared.with_parts
async def audit_verify(app: Parts) -> None:
    """Check every row's hash, every chain's sequence and every anchor's HMAC. Exit 1 and
    name each problem (ids, never content) if anything was edited, deleted, reordered,
    truncated or rewritten."""
    report = await verify(app.engine, await anchor_key(app))
    last = f"{report.last_anchor_at:%Y-%m-%d %H:%M:%S}Z" if report.last_anchor_at else "never"
    click.echo(f"{report.rows} rows ({report.legacy_rows} from before chaining) in "
               f"{report.batches} batches on {report.chains} chains; {report.anchors} anchors "
               f"(newest {last}); {report.checkpoints} checkpoints")
    if report.ok:
        click.echo("ok: the audit trail is intact")
        return
    for problem in report.problems:
        click.echo(f"problem: {problem}")
    if report.problem_count > len(report.problems):
        click.echo(f"... and {report.problem_count - len(report.problems)} more")
    click.echo(f"FAILED: {report.problem_count} problems", err=True)
    sys.exit(1)


@audit.command("anchor")
@shared.with_parts
async def audit_anchor(app: Parts) -> None:
    """Anchor every chain's head now (a running gateway does this every minute)."""
    keys = app.purpose_keys
    await keys.ensure(audit_chain.ANCHOR_PURPOSE)
    _, key = keys.current(audit_chain.ANCHOR_PURPOSE)
    written = await audit_chain.write_anchor(app.engine, key)
    click.echo("anchored" if written else "nothing new to anchor")
