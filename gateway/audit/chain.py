"""Tamper evidence for the audit trail: hash chains per writer, HMAC anchors, checkpoints.

Each call that writes audit rows (a group commit, an opt-out, a CLI action) is one *batch*.
A batch belongs to a *chain*, one per node (`[audit] chain`, the host name by default), so
nodes never wait for each other; within a node, batches take turns on the chain's row in
`audit_chains` for the rest of their transaction. Each row's hash covers the previous
row's hash and the row's content; the batch records its sequence number, the head it
extends and its own head. A rolled-back batch rolls its sequence number back too, so a
chain has no gaps unless someone deleted something.

Hashes alone stop nobody who can write the database: they recompute them. So every minute
the running gateway writes an *anchor*: an HMAC, under the vault's `audit-anchor` key, of
each chain's head and of the previous anchor. Recomputed hashes no longer match an anchor,
and an anchored batch that has gone is a deletion. What was written after the newest anchor
is protected only by the hashes until the next one.

Pruning by retention deletes whole batches from the start of each chain and writes a
*checkpoint* first: the heads it cut at, HMAC-signed, so `verify` starts from there.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.store.schema import audit_anchors, audit_batches, audit_chains, audit_checkpoints

ANCHOR_PURPOSE = "audit-anchor"
GENESIS = "0" * 64
FIELDS = ("at", "tenant_id", "queue_id", "actor", "event", "check_name", "action", "reason",
          "recipient_digest", "message_id", "detail")

_chain_name = socket.gethostname()[:60] or "gateway"


def set_chain_name(name: str, command: bool = False) -> None:
    """The chain this process writes: `[audit] chain` (default: the host name), and under
    `serve --workers` the worker's slot after it, so workers never wait for each other.
    A CLI command (`command`) writes `<name>/cli`: an erasure or an import never takes
    turns with the running gateway's group commits."""
    global _chain_name
    base = name or socket.gethostname()[:50] or "gateway"
    worker = os.environ.get("GATEWAY_WORKER", "")
    if command:
        _chain_name = f"{base[:50]}/cli"
    else:
        _chain_name = (f"{base[:50]}/w{worker}" if worker.isdigit() else base)[:60]


def chain_name() -> str:
    return _chain_name


def iso(value: datetime) -> str:
    """One spelling of a time for hashing: UTC, microseconds (SQLite hands it back naive)."""
    if value.tzinfo is None:
        return value.isoformat(timespec="microseconds")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           default=str).encode


def canonical_values(values: Sequence[Any]) -> bytes:
    """Content in `FIELDS` order (the time already `iso`), as the hash sees it."""
    return _encode(values).encode()


def canonical(row: Mapping[str, Any]) -> bytes:
    """A row's content as the hash sees it: every field, in a fixed order, as JSON."""
    return canonical_values([iso(row["at"]) if f == "at" else row.get(f) for f in FIELDS])


def row_hash(previous: str, row: Mapping[str, Any]) -> str:
    return hashlib.sha256(bytes.fromhex(previous) + canonical(row)).hexdigest()


def _normalise(row: dict[str, Any]) -> dict[str, Any]:
    """What the database will hand back: JSON detail round-tripped, defaults filled."""
    out = {f: row.get(f) for f in FIELDS}
    out["reason"] = out["reason"] or ""
    out["detail"] = json.loads(json.dumps(out["detail"] or {}, default=str))
    if out["at"] is None:
        out["at"] = datetime.now(UTC)
    return out


async def _take_turn(conn: AsyncConnection, chain: str) -> tuple[int, str]:
    """Lock this chain's row for the rest of the transaction; its next sequence and head
    (one statement: the update returns them)."""
    bump = audit_chains.update().where(audit_chains.c.chain == chain).values(
        seq=audit_chains.c.seq + 1).returning(audit_chains.c.seq, audit_chains.c.head)
    current = (await conn.execute(bump)).first()
    if current is None:  # this chain's first batch
        insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(
            audit_chains).values(chain=chain, seq=0, head=GENESIS)
        await conn.execute(insert.on_conflict_do_nothing(index_elements=["chain"]))
        current = (await conn.execute(bump)).one()
    return current.seq, current.head


class KnownHead:
    """The group-commit writer's memory of its chain's head: with it, a batch extends the
    chain by one compare-and-set (`UPDATE ... WHERE seq = known AND head = known`) instead
    of reading the head under a lock first. Another writer of the same chain (a review page
    releasing a message, in the same process) makes the swap miss; the batch then takes
    its turn the locking way and the memory is refreshed. The memory moves only when the
    batch's transaction has committed (`committed()`); a failed one forgets it."""

    def __init__(self) -> None:
        self._known: tuple[str, int, str] | None = None  # (chain, seq, head)
        self._pending: tuple[str, int, str] | None = None
        self.swaps = self.turns = 0  # batches each way, for the benchmark's report

    def expected(self, chain: str) -> tuple[int, str] | None:
        """(seq, head) this writer last committed on `chain`, if it knows them."""
        if self._known is None or self._known[0] != chain:
            return None
        return self._known[1], self._known[2]

    def extended(self, chain: str, seq: int, head: str) -> None:
        """The batch in flight ends the chain at (seq, head), once it commits."""
        self._pending = (chain, seq, head)

    def committed(self) -> None:
        self._known, self._pending = self._pending, None

    def forget(self) -> None:
        self._known = self._pending = None


async def _swap(conn: AsyncConnection, chain: str, expected: tuple[int, str],
                rows: Sequence[dict[str, Any]], now: datetime
                ) -> tuple[int, str, str, list[dict[str, Any]]] | None:
    seq, previous = expected
    sealed, head = _seal(rows, chain, seq + 1, previous)
    swapped = await conn.execute(audit_chains.update().where(
        audit_chains.c.chain == chain, audit_chains.c.seq == seq,
        audit_chains.c.head == previous).values(seq=seq + 1, head=head, updated_at=now))
    if swapped.rowcount != 1:
        return None
    return seq + 1, previous, head, sealed


def _seal(rows: Sequence[dict[str, Any]], chain: str, seq: int, previous: str
          ) -> tuple[list[dict[str, Any]], str]:
    sealed, head = [], previous
    for row in rows:
        content = _normalise(row)
        head = row_hash(head, content)
        sealed.append({**content, "chain": chain, "batch_seq": seq, "row_hash": head})
    return sealed, head


async def chain_rows(conn: AsyncConnection, rows: Sequence[dict[str, Any]],
                     known: KnownHead | None = None) -> list[dict[str, Any]]:
    """Seal `rows` as one batch of this node's chain, in the caller's transaction. Returns
    the rows to insert (in this order: the hashes follow it)."""
    chain = chain_name()
    now = datetime.now(UTC)
    expected = known.expected(chain) if known is not None else None
    swapped = await _swap(conn, chain, expected, rows, now) if expected is not None else None
    if swapped is not None:
        assert known is not None
        known.swaps += 1
        seq, previous, head, sealed = swapped
    else:
        seq, previous = await _take_turn(conn, chain)
        sealed, head = _seal(rows, chain, seq, previous)
        await conn.execute(audit_chains.update().where(audit_chains.c.chain == chain).values(
            head=head, updated_at=now))
        if known is not None:
            known.turns += 1
    await conn.execute(audit_batches.insert().values(
        chain=chain, seq=seq, prev_head=previous, head=head, row_count=len(sealed), at=now))
    if known is not None:
        known.extended(chain, seq, head)
    return sealed


def _mac(key: bytes, *parts: str) -> str:
    return hmac.new(key, "|".join(parts).encode(), hashlib.sha256).hexdigest()


def anchor_mac(key: bytes, prev_mac: str, at: datetime, heads: Mapping[str, Any]) -> str:
    return _mac(key, "anchor", prev_mac, iso(at), json.dumps(heads, sort_keys=True))


def checkpoint_mac(key: bytes, prev_mac: str, at: datetime, heads: Mapping[str, Any],
                   anchor: str) -> str:
    return _mac(key, "checkpoint", prev_mac, iso(at), json.dumps(heads, sort_keys=True),
                anchor)


async def write_anchor(engine: AsyncEngine, key: bytes) -> bool:
    """Anchor every chain's current head. False when nothing changed since the last anchor
    or another node anchored at the same moment (anchors form one chain by prev_mac)."""
    try:
        async with engine.begin() as conn:
            return await _anchor(conn, key)
    except IntegrityError:
        return False


async def _anchor(conn: AsyncConnection, key: bytes) -> bool:
    heads = {r.chain: [r.seq, r.head] for r in await conn.execute(
        sa.select(audit_chains.c.chain, audit_chains.c.seq, audit_chains.c.head))}
    last = (await conn.execute(sa.select(audit_anchors.c.mac, audit_anchors.c.heads).order_by(
        audit_anchors.c.id.desc()).limit(1))).first()
    if last is None:
        checkpoint = await latest_checkpoint(conn)
        prev_mac = checkpoint.anchor_mac if checkpoint is not None else ""
    else:
        prev_mac = last.mac
        if dict(last.heads) == heads:
            return False
    if not heads:
        return False
    at = datetime.now(UTC)
    await conn.execute(audit_anchors.insert().values(
        at=at, heads=heads, prev_mac=prev_mac, mac=anchor_mac(key, prev_mac, at, heads)))
    return True


async def latest_checkpoint(conn: AsyncConnection) -> Any:
    return (await conn.execute(sa.select(audit_checkpoints).order_by(
        audit_checkpoints.c.id.desc()).limit(1))).first()
