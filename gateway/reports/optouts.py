"""The opt-out report: per tenant and period, the opt-outs that took effect (by channel),
how long each took from request to enforcement, and the copies relayed after a person's
opt-out — computed from audit rows only, so anyone holding the trail can recompute it.

The rows it reads:

- `optout.effective` (optout/receipts.py): one per receipt — the person's audit digest,
  channel, received-at and effective-at (a time it was already enforced on every node), the
  node that wrote it (the row's chain) and, for an entry that lapses, its expiry;
- `suppression.removed` naming the same digest: the opt-out ends there (a person who asked
  to hear again);
- `copy.delivered`: each copy an upstream accepted, with when suppression was last looked
  at for it (`checked`; rows without one count as checked when they were written).

A copy *relayed after an opt-out* is one whose last look started after the person's
effective-at, inside the opt-out's window: the look would have seen the entry, so by
construction there are none. A copy *in flight* was looked at before effective-at and
accepted upstream after it (the opt-out landed while it was on the wire); it is counted
apart, never hidden.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.reports.heads import ChainHead, up_to
from gateway.store.engine import aware
from gateway.store.schema import audit_events

EFFECTIVE = "optout.effective"
REMOVED = "suppression.removed"
RELAYED = "copy.delivered"
# how far an audit row's own time may trail the effective-at it records (written just after)
_ROW_SLACK = timedelta(minutes=5)
_CHUNK = 2000  # digests per query


@dataclass(frozen=True, slots=True)
class Latency:
    """Request to enforcement, in milliseconds (nearest-rank percentiles)."""

    count: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0

    @classmethod
    def of(cls, values_ms: Sequence[float]) -> Latency:
        if not values_ms:
            return cls()
        ordered = sorted(values_ms)

        def rank(p: float) -> float:
            return round(ordered[max(math.ceil(p * len(ordered)) - 1, 0)], 1)

        return cls(len(ordered), rank(0.50), rank(0.99), round(ordered[-1], 1))


@dataclass(frozen=True, slots=True)
class OptOutReport:
    tenant_id: int
    start: datetime
    end: datetime  # exclusive
    opt_outs: int
    by_channel: dict[str, int]
    latency: Latency  # every node together
    by_node: dict[str, Latency]  # by the node that recorded the opt-out
    relayed_after: int  # copies looked at after the person's effective-at: 0 by construction
    relayed_after_queue_ids: list[str] = field(default_factory=list)
    in_flight: int = 0  # looked at before effective-at, accepted upstream after it

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["start"], doc["end"] = self.start.isoformat(), self.end.isoformat()
        return doc


@dataclass(frozen=True, slots=True)
class _OptOut:
    digest: str
    effective: datetime
    lapses: datetime | None


def parse_time(text: Any) -> datetime | None:
    """An ISO time an audit row recorded (aware), or None when it is not one."""
    if not isinstance(text, str):
        return None
    try:
        return aware(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


def _node(chain: str | None) -> str:
    """A node's chain, whichever of its worker processes wrote the row ("host/w2")."""
    base = (chain or "unknown").split("/", 1)[0]
    return base or "unknown"


async def optout_report(conn: AsyncConnection, tenant_id: int, start: datetime,
                        end: datetime, heads: Sequence[ChainHead] | None = None
                        ) -> OptOutReport:
    """The report of `tenant_id` for [start, end): opt-outs that took effect in it, and the
    copies relayed in it to anyone whose opt-out (of any date before) was in effect. With
    `heads`, only rows up to those chain heads count (reports/heads.py)."""
    a = audit_events.c
    effective_rows = (await conn.execute(sa.select(
        a.recipient_digest, a.detail, a.chain, a.at).where(
        a.tenant_id == tenant_id, a.event == EFFECTIVE, a.at < end + _ROW_SLACK,
        *_bound(a, heads)))).all()
    channels: Counter[str] = Counter()
    latencies: list[float] = []
    per_node: dict[str, list[float]] = defaultdict(list)
    opt_outs: dict[str, list[_OptOut]] = defaultdict(list)
    for row in effective_rows:
        effective = parse_time(row.detail.get("effective_at"))
        received = parse_time(row.detail.get("received_at"))
        if effective is None or received is None or not row.recipient_digest:
            continue
        if effective >= end:
            continue
        opt_outs[row.recipient_digest].append(
            _OptOut(row.recipient_digest, effective, parse_time(row.detail.get("expires_at"))))
        if effective >= start:
            channels[str(row.detail.get("channel", ""))] += 1
            ms = max((effective - received).total_seconds() * 1000, 0.0)
            latencies.append(ms)
            per_node[_node(row.chain)].append(ms)
    after, in_flight = await _copies_after(conn, tenant_id, start, end, opt_outs, heads)
    return OptOutReport(
        tenant_id, start, end, sum(channels.values()), dict(sorted(channels.items())),
        Latency.of(latencies), {n: Latency.of(v) for n, v in sorted(per_node.items())},
        len(after), sorted(after), in_flight)


def _bound(columns: Any, heads: Sequence[ChainHead] | None) -> list[sa.ColumnElement[bool]]:
    return [] if heads is None else [up_to(columns, heads)]


async def _copies_after(conn: AsyncConnection, tenant_id: int, start: datetime,
                        end: datetime, opt_outs: dict[str, list[_OptOut]],
                        heads: Sequence[ChainHead] | None = None) -> tuple[list[str], int]:
    """The queue ids of copies relayed in [start, end) after their person's opt-out, and
    how many were in flight when it took effect."""
    if not opt_outs:
        return [], 0
    c = audit_events.c
    people = sorted(opt_outs)
    relayed: list[Any] = []
    # the people as lists of values, not a subquery: a planner that has not seen the
    # table's statistics yet (just after a bulk load) chose a nested loop over a million
    # copies for the subquery, and ran for many minutes
    for n in range(0, len(people), _CHUNK):
        relayed += (await conn.execute(sa.select(
            c.recipient_digest, c.queue_id, c.at, c.detail).where(
            c.tenant_id == tenant_id, c.event == RELAYED, c.at >= start,
            c.at < end + _ROW_SLACK, c.recipient_digest.in_(people[n:n + _CHUNK]),
            *_bound(c, heads)))).all()
    if not relayed:
        return [], 0
    removals = await _removals(conn, tenant_id, {r.recipient_digest for r in relayed}, heads)
    after: list[str] = []
    in_flight = 0
    for row in relayed:
        at = aware(row.at)
        assert at is not None
        if at >= end:
            continue
        checked = parse_time(row.detail.get("checked")) or at
        for opt_out in opt_outs.get(row.recipient_digest, ()):
            ends = _window_end(opt_out, removals.get(row.recipient_digest, ()))
            if checked >= opt_out.effective and (ends is None or checked < ends):
                after.append(row.queue_id or "")
                break
            if checked < opt_out.effective <= at and (ends is None or opt_out.effective < ends):
                in_flight += 1
                break
    return after, in_flight


async def _removals(conn: AsyncConnection, tenant_id: int, digests: Iterable[str],
                    heads: Sequence[ChainHead] | None = None) -> dict[str, list[datetime]]:
    a = audit_events.c
    found: dict[str, list[datetime]] = defaultdict(list)
    for row in await conn.execute(sa.select(a.recipient_digest, a.at).where(
            a.tenant_id == tenant_id, a.event == REMOVED,
            a.recipient_digest.in_(list(digests)), *_bound(a, heads))):
        at = aware(row.at)
        assert at is not None
        found[row.recipient_digest].append(at)
    return found


def _window_end(opt_out: _OptOut, removals: Iterable[datetime]) -> datetime | None:
    """When the opt-out stopped binding: its first removal after it, or its lapse."""
    ends = [r for r in removals if r > opt_out.effective]
    if opt_out.lapses is not None:
        ends.append(opt_out.lapses)
    return min(ends) if ends else None


def render_text(report: OptOutReport, tenant: str) -> str:
    """The report as the CLI prints it."""
    def latency(label: str, value: Latency) -> str:
        return (f"{label:<36}{value.count:>7}   p50 {value.p50_ms:.1f} ms   "
                f"p99 {value.p99_ms:.1f} ms   max {value.max_ms:.1f} ms")

    lines = [f"Opt-out report of tenant {tenant}: {report.start.isoformat()} to "
             f"{report.end.isoformat()} (end excluded)",
             f"{'opt-outs that took effect':<36}{report.opt_outs:>7}"]
    lines += [f"  {channel or '(none)':<34}{count:>7}"
              for channel, count in report.by_channel.items()]
    lines.append(latency("request to enforcement", report.latency))
    lines += [latency(f"  recorded on {node}", value) for node, value in report.by_node.items()]
    lines.append(f"{'copies relayed after an opt-out':<36}{report.relayed_after:>7}")
    lines += [f"  queue {queue_id}" for queue_id in report.relayed_after_queue_ids]
    lines.append(f"{'copies in flight at effective-at':<36}{report.in_flight:>7}")
    return "\n".join(lines)
