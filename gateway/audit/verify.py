"""`gateway audit verify` and retention pruning of the audit trail (see audit_chain.py).

Verification reads everything once, in id order, and reports what it cannot reconcile:
an edited row (its hash), a deleted row (the next row's hash, the batch's row count), a
deleted batch (a gap in the chain's sequence), reordering (hashes follow id order), a
truncated tail (the chain's head row, the newest anchor), and a rewrite with recomputed
hashes (the anchors' HMACs, which need the vault's key). Problems name ids and sequence
numbers, never content.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.audit.chain import (
    FIELDS,
    GENESIS,
    anchor_mac,
    canonical_values,
    checkpoint_mac,
    iso,
    latest_checkpoint,
)
from gateway.store.engine import aware
from gateway.store.schema import (
    audit_anchors,
    audit_batches,
    audit_chains,
    audit_checkpoints,
    audit_events,
)

MAX_PROBLEMS = 100
# id, the hashed fields in their order (audit_chain.FIELDS), then the chain's columns
_ROW_COLUMNS = [audit_events.c.id, *(audit_events.c[name] for name in FIELDS),
                audit_events.c.chain, audit_events.c.batch_seq, audit_events.c.row_hash]
_CONTENT = slice(1, 1 + len(FIELDS))


@dataclass
class VerifyReport:
    rows: int = 0
    legacy_rows: int = 0  # written before the chain existed (migration 0014)
    batches: int = 0
    chains: int = 0
    anchors: int = 0
    checkpoints: int = 0
    last_anchor_at: datetime | None = None
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)


@dataclass
class _Batch:
    prev_head: str
    head: str
    row_count: int
    seen: int = 0


@dataclass
class _Cursor:
    """Where the row walk stands in one chain."""

    seq: int | None = None
    head: str = ""
    batch: _Batch | None = None


async def verify(engine: AsyncEngine, key: bytes | None) -> VerifyReport:
    """Check the whole trail. `key` is the audit-anchor key (None: anchors cannot be
    checked, which is itself a problem when there are any)."""
    report = VerifyReport()
    async with engine.connect() as conn:
        start = await _checkpoints(conn, key, report)
        batches = await _batches(conn, start, report)
        await _chain_heads(conn, start, batches, report)
        await _rows(conn, batches, report)
        await _anchors(conn, key, start, batches, report)
    report.chains = len(batches)
    return report


async def _checkpoints(conn: AsyncConnection, key: bytes | None,
                       report: VerifyReport) -> dict[str, tuple[int, str]]:
    """Each checkpoint signed and following the one before; the newest is where chains
    start now."""
    prev_mac, heads = "", {}
    for cp in await conn.execute(sa.select(audit_checkpoints).order_by(audit_checkpoints.c.id)):
        report.checkpoints += 1
        if cp.prev_mac != prev_mac:
            report.problem(f"checkpoint {cp.id}: does not follow the checkpoint before it "
                           "(a checkpoint was deleted)")
        if key is None:
            report.problem(f"checkpoint {cp.id}: cannot be checked without the "
                           "audit-anchor key")
        elif cp.mac != checkpoint_mac(key, cp.prev_mac, cp.at, cp.heads, cp.anchor_mac):
            report.problem(f"checkpoint {cp.id}: signature does not match (forged or edited)")
        prev_mac, heads = cp.mac, dict(cp.heads)
    return {chain: (int(seq), head) for chain, (seq, head) in heads.items()}


async def _batches(conn: AsyncConnection, start: Mapping[str, tuple[int, str]],
                   report: VerifyReport) -> dict[str, dict[int, _Batch]]:
    """Every chain's batches, each following the one before without a gap."""
    chains: dict[str, dict[int, _Batch]] = {chain: {} for chain in start}
    result = await conn.stream(sa.select(
        audit_batches.c.chain, audit_batches.c.seq, audit_batches.c.prev_head,
        audit_batches.c.head, audit_batches.c.row_count).order_by(
        audit_batches.c.chain, audit_batches.c.seq))
    async for b in result:
        report.batches += 1
        chain = chains.setdefault(b.chain, {})
        if not chain:
            seq, head = start.get(b.chain, (0, GENESIS))
        else:
            seq = max(chain)
            head = chain[seq].head
        if b.seq <= seq:
            report.problem(f"chain {b.chain}: batch {b.seq} lies before the checkpoint")
        elif b.seq != seq + 1:
            gone = f"{seq + 1}" if b.seq == seq + 2 else f"{seq + 1}..{b.seq - 1}"
            report.problem(f"chain {b.chain}: batches {gone} are missing (deleted)")
        elif b.prev_head != head:
            report.problem(f"chain {b.chain}: batch {b.seq} does not extend batch {seq} "
                           "(edited or replaced)")
        chain[b.seq] = _Batch(b.prev_head, b.head, b.row_count)
    return chains


async def _chain_heads(conn: AsyncConnection, start: Mapping[str, tuple[int, str]],
                       chains: Mapping[str, dict[int, _Batch]], report: VerifyReport) -> None:
    """The head each node last wrote must be the newest batch there is (or, when pruning
    took every batch, where the checkpoint cut)."""
    for c in await conn.execute(sa.select(audit_chains)):
        batches = chains.get(c.chain, {})
        newest, head = start.get(c.chain, (0, GENESIS))
        if batches:
            newest = max(batches)
            head = batches[newest].head
        if newest < c.seq:
            report.problem(f"chain {c.chain}: the newest batches up to {c.seq} are gone "
                           "(tail truncated)")
        elif head != c.head:
            report.problem(f"chain {c.chain}: the newest batch {newest} is not the head the "
                           "writer recorded")


async def _rows(conn: AsyncConnection, chains: Mapping[str, dict[int, _Batch]],
                report: VerifyReport) -> None:
    """Every row's hash, in id order, following the row before it in its chain."""
    cursors: dict[str, _Cursor] = {}
    sha256 = hashlib.sha256
    result = await conn.stream(sa.select(*_ROW_COLUMNS).order_by(audit_events.c.id)
                               .execution_options(yield_per=5000))
    async for chunk in result.partitions():  # one hop to the driver per chunk, not per row
        for r in chunk:
            report.rows += 1
            if r.chain is None:
                report.legacy_rows += 1
                continue
            cursor = cursors.setdefault(r.chain, _Cursor())
            if r.batch_seq != cursor.seq:
                _close(r.chain, cursor, report)
                batch = chains.get(r.chain, {}).get(r.batch_seq)
                if batch is None:
                    report.problem(f"row {r.id}: its batch {r.chain}/{r.batch_seq} is not on "
                                   "record")
                elif cursor.seq is not None and r.batch_seq < cursor.seq:
                    report.problem(f"row {r.id}: batch {r.batch_seq} comes after batch "
                                   f"{cursor.seq} (reordered)")
                cursor.seq, cursor.batch = r.batch_seq, batch
                cursor.head = batch.prev_head if batch is not None else r.row_hash
            content = list(r[_CONTENT])
            content[0] = iso(content[0])
            computed = sha256(bytes.fromhex(cursor.head) + canonical_values(content)).hexdigest()
            if computed != r.row_hash:
                report.problem(f"row {r.id}: does not match its hash or does not follow the "
                               "row before it (edited, deleted or reordered)")
            cursor.head = r.row_hash
            if cursor.batch is not None:
                cursor.batch.seen += 1
    for chain, cursor in cursors.items():
        _close(chain, cursor, report)
    for chain, batches in chains.items():
        for seq, batch in batches.items():
            if batch.seen == 0 and batch.row_count:
                report.problem(f"chain {chain}: all {batch.row_count} rows of batch {seq} "
                               "are gone (deleted)")


def _close(chain: str, cursor: _Cursor, report: VerifyReport) -> None:
    batch = cursor.batch
    if batch is None or cursor.seq is None:
        return
    if batch.seen != batch.row_count:
        report.problem(f"chain {chain}: batch {cursor.seq} holds {batch.seen} of its "
                       f"{batch.row_count} rows (deleted or added)")
    elif cursor.head != batch.head:
        report.problem(f"chain {chain}: batch {cursor.seq} does not end at its recorded head")


async def _anchors(conn: AsyncConnection, key: bytes | None,
                   start: Mapping[str, tuple[int, str]],
                   chains: Mapping[str, dict[int, _Batch]], report: VerifyReport) -> None:
    """Each anchor signed, following the one before, naming heads that still exist."""
    checkpoint = await latest_checkpoint(conn)
    prev_mac = checkpoint.anchor_mac if checkpoint is not None else ""
    newest: dict[str, int] = {}
    for a in await conn.execute(sa.select(audit_anchors).order_by(audit_anchors.c.id)):
        report.anchors += 1
        report.last_anchor_at = aware(a.at)
        if a.prev_mac != prev_mac:
            report.problem(f"anchor {a.id}: does not follow the anchor before it (an anchor "
                           "was deleted or reordered)")
        if key is None:
            report.problem(f"anchor {a.id}: cannot be checked without the audit-anchor key")
        elif a.mac != anchor_mac(key, a.prev_mac, a.at, a.heads):
            report.problem(f"anchor {a.id}: HMAC does not match (forged or edited)")
        prev_mac = a.mac
        for chain, (seq, head) in dict(a.heads).items():
            newest[chain] = max(newest.get(chain, 0), seq)
            if seq <= start.get(chain, (0, GENESIS))[0]:
                continue  # pruned under a checkpoint
            batch = chains.get(chain, {}).get(seq)
            if batch is None:
                report.problem(f"anchor {a.id}: chain {chain} batch {seq} is gone "
                               "(deleted or tail truncated)")
            elif batch.head != head:
                report.problem(f"anchor {a.id}: chain {chain} batch {seq} differs from what "
                               "was anchored (rewritten)")


async def prune(engine: AsyncEngine, key: bytes, before: datetime) -> int:
    """Delete whole batches written before `before` from the start of every chain (and rows
    from before the chain existed), after a signed checkpoint of where each chain now
    starts. Returns the number of audit rows deleted."""
    async with engine.begin() as conn:
        previous = await latest_checkpoint(conn)
        heads: dict[str, Any] = dict(previous.heads) if previous is not None else {}
        cuts: dict[str, int] = {}
        for chain in (await conn.execute(sa.select(audit_batches.c.chain).distinct())).scalars():
            first_kept = (await conn.execute(sa.select(sa.func.min(audit_batches.c.seq)).where(
                audit_batches.c.chain == chain, audit_batches.c.at >= before))).scalar()
            last_cut = (await conn.execute(sa.select(sa.func.max(audit_batches.c.seq)).where(
                audit_batches.c.chain == chain,
                *([audit_batches.c.seq < first_kept] if first_kept is not None else []))
            )).scalar()
            if last_cut is None:
                continue
            head = (await conn.execute(sa.select(audit_batches.c.head).where(
                audit_batches.c.chain == chain, audit_batches.c.seq == last_cut))).scalar_one()
            heads[chain], cuts[chain] = [last_cut, head], last_cut
        old_anchors = audit_anchors.c.at < before
        last_anchor = (await conn.execute(sa.select(audit_anchors.c.id, audit_anchors.c.mac)
                                          .where(old_anchors).order_by(audit_anchors.c.id.desc())
                                          .limit(1))).first()
        legacy = (audit_events.c.chain.is_(None)) & (audit_events.c.at < before)
        if not cuts and last_anchor is None and (await conn.execute(
                sa.select(sa.func.count()).where(legacy))).scalar() == 0:
            return 0
        deleted = (await conn.execute(audit_events.delete().where(legacy))).rowcount
        for chain, seq in cuts.items():
            deleted += (await conn.execute(audit_events.delete().where(
                audit_events.c.chain == chain, audit_events.c.batch_seq <= seq))).rowcount
            await conn.execute(audit_batches.delete().where(
                audit_batches.c.chain == chain, audit_batches.c.seq <= seq))
        anchor = previous.anchor_mac if previous is not None else ""
        if last_anchor is not None:
            anchor = last_anchor.mac
            await conn.execute(audit_anchors.delete().where(
                audit_anchors.c.id <= last_anchor.id))
        prev_mac = previous.mac if previous is not None else ""
        now = datetime.now(UTC)
        await conn.execute(audit_checkpoints.insert().values(
            at=now, heads=heads, anchor_mac=anchor, rows_pruned=deleted, prev_mac=prev_mac,
            mac=checkpoint_mac(key, prev_mac, now, heads, anchor)))
    return deleted
