"""The evidence pack: one tenant's compliance over a period, as a document a DPO can hand
over — computed from the audit trail alone, up to recorded chain heads (reports/heads.py).

Every figure is a function of audit rows, so `gateway report verify` recomputes it from the
trail and gets the same document, and the same period generated again (after the queue,
the held messages or the sent index were purged by retention) hashes the same. The rows it
reads:

- opt-outs, enforcement latency, copies after an opt-out: `optout.effective`,
  `suppression.removed`, `copy.delivered` (reports/optouts.py);
- copies by provider class: `copy.delivered`, `copy.refused`, `copy.expired`, each
  recording `provider` and upstream's answer; hard bounces (`5.1.x`) and policy blocks
  (`5.7.x`) among them, and bounce reports and complaints that suppressed
  (`optout.automatic`: one complaint per person and tenant);
- breaker events: `breaker.tripped`, `breaker.warned`, `breaker.resumed`;
- held, refused and kept, released, discarded, expired by check: `message.held`,
  `message.refused`, `held.released`, `held.discarded`, `held.expired`;
- lawful basis: the copies' `lawful` detail (decision x signal source); refusals of the
  `lawful-basis` and `recipient-statement` checks;
- data-subject requests: `subject.exported`, `subject.erased` (request, completion);
- keys: `key.*` (the gateway's purpose keys), `dkim.*` (the tenant's signing keys);
- policy versions: `policy.published` (the table in force at the start, and each one
  after), `tenant.setting` of `lawful_overrides`;
- retention purges: `retention.purged`.

The document is canonical JSON (sorted keys, no spaces); its SHA-256 is what is signed,
with the gateway's receipt key (optout/receipts.py), so the same keys that prove a receipt
prove a report.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.optout.receipts import canonical, iso
from gateway.reports.heads import ChainHead, up_to
from gateway.reports.optouts import optout_report, parse_time
from gateway.store.engine import aware
from gateway.store.schema import audit_events

FORMAT = "ocg-evidence-pack/1"
PROVIDERS = ("google", "microsoft", "yahoo", "apple", "other")
LAWFUL_CHECKS = ("lawful-basis", "recipient-statement")
_COPY_ROWS = ("copy.delivered", "copy.refused", "copy.expired")
_REVIEW_ROWS = ("message.held", "message.refused", "held.released", "held.discarded",
                "held.expired")
_BREAKER_ROWS = ("breaker.tripped", "breaker.warned", "breaker.resumed")
_DSR_ROWS = ("subject.exported", "subject.erased")


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def _at(value: Any) -> str:
    at = aware(value)
    assert at is not None
    return iso(at)


class _Rows:
    """Audit rows of one tenant (and the gateway's own, where a figure needs them), inside
    the period and the heads."""

    def __init__(self, conn: AsyncConnection, tenant_id: int, start: datetime,
                 end: datetime, heads: Sequence[ChainHead]) -> None:
        self.conn, self.tenant_id, self.start, self.end = conn, tenant_id, start, end
        self.bound = up_to(audit_events.c, heads)
        self.read = 0

    def where(self, *events: str, gateway_wide: bool = False,
              whole_trail: bool = False) -> list[sa.ColumnElement[bool]]:
        a = audit_events.c
        tenant = sa.or_(a.tenant_id == self.tenant_id, a.tenant_id.is_(None)) \
            if gateway_wide else a.tenant_id == self.tenant_id
        period = [a.at < self.end] if whole_trail else [a.at >= self.start, a.at < self.end]
        return [tenant, a.event.in_(events), *period, self.bound]

    async def fetch(self, *columns: Any, events: Sequence[str], gateway_wide: bool = False,
                    whole_trail: bool = False) -> list[Any]:
        rows = (await self.conn.execute(sa.select(*columns).where(
            *self.where(*events, gateway_wide=gateway_wide, whole_trail=whole_trail))
            .order_by(audit_events.c.at, audit_events.c.id))).all()
        self.read += len(rows)
        return list(rows)


async def evidence(conn: AsyncConnection, tenant_id: int, tenant_name: str,
                   start: datetime, end: datetime, heads: Sequence[ChainHead],
                   settled: bool) -> dict[str, Any]:
    """The document for `tenant_id` over [start, end), from the rows up to `heads`."""
    rows = _Rows(conn, tenant_id, start, end, heads)
    optouts = await optout_report(conn, tenant_id, start, end, heads=heads)
    figures = {
        "opt_outs": {
            "received": await _requested(rows), "honored": optouts.opt_outs,
            "by_channel": optouts.by_channel,
            "enforcement_ms": {"p50": optouts.latency.p50_ms, "p99": optouts.latency.p99_ms,
                               "max": optouts.latency.max_ms},
            "enforcement_ms_by_node": {
                node: {"count": v.count, "p50": v.p50_ms, "p99": v.p99_ms, "max": v.max_ms}
                for node, v in optouts.by_node.items()},
            "copies_relayed_after_opt_out": optouts.relayed_after,
            "copies_in_flight_at_opt_out": optouts.in_flight,
        },
        "delivery": await _delivery(rows),
        "breakers": await _breakers(rows),
        "review": await _review(rows),
        "lawful_basis": await _lawful(rows),
        "data_subject_requests": await _requests(rows),
        "keys": await _keys(rows),
        "policies": await _policies(rows),
        "retention_purges": await _purges(rows),
    }
    return {
        "format": FORMAT,
        "tenant": {"id": tenant_id, "name": tenant_name},
        "period": {"from": iso(start), "to": iso(end)},
        "audit": {"heads": [h.to_json() for h in heads], "settled": settled,
                  "rows_read": rows.read},
        "figures": figures,
    }


def digest(document: dict[str, Any]) -> str:
    """The document's SHA-256 over its canonical JSON: what is signed and compared."""
    return hashlib.sha256(canonical(document)).hexdigest()


# --- the figures ------------------------------------------------------------------------
async def _delivery(rows: _Rows) -> dict[str, Any]:
    """Copies by provider class: relayed (answered by upstream), delivered, refused; hard
    bounces and policy blocks among them, bounce reports and complaints that came back."""
    a = audit_events.c
    provider = sa.func.coalesce(a.detail["provider"].as_string(), "other")
    status = sa.func.substr(a.detail["reply"].as_string(), 5, 3)
    grouped = (await rows.conn.execute(sa.select(
        a.event, provider.label("provider"), status.label("status"),
        sa.func.count().label("n")).where(
        *rows.where(*_COPY_ROWS), a.check_name.is_(None))
        .group_by(a.event, provider, status))).all()
    counts: dict[str, Counter[str]] = {p: Counter() for p in PROVIDERS}
    for row in grouped:
        rows.read += int(row.n)
        kind = counts.setdefault(str(row.provider), Counter())
        n = int(row.n)
        if row.event == "copy.delivered":
            kind["delivered"] += n
        else:
            kind["refused" if row.event == "copy.refused" else "expired"] += n
            if row.status == "5.1":
                kind["hard_bounces"] += n
            elif row.status == "5.7":
                kind["policy_blocks"] += n
    # reports that came back: a bounce or complaint that suppressed, mapped to its copy
    reports = await rows.fetch(a.queue_id, a.recipient_digest, a.detail,
                               events=("optout.automatic",))
    copy_provider = await _providers_of(rows, {str(r.queue_id) for r in reports if r.queue_id})
    for r in reports:
        reason = r.detail.get("entry_reason")
        if reason not in ("bounce", "complaint") or ":soft-" in str(r.detail.get("rule")):
            continue  # soft bounces that added up to an entry are not hard bounces
        kind = counts.setdefault(
            copy_provider.get((str(r.queue_id), str(r.recipient_digest)), "other"), Counter())
        kind["bounce_reports" if reason == "bounce" else "complaints"] += 1
    out = {}
    for name in sorted(counts):
        c = counts[name]
        relayed = c["delivered"] + c["refused"]
        hard = c["hard_bounces"] + c["bounce_reports"]
        out[name] = {
            "relayed": relayed, "delivered": c["delivered"], "refused": c["refused"],
            "expired": c["expired"], "hard_bounces": hard, "policy_blocks": c["policy_blocks"],
            "complaints": c["complaints"], "hard_bounce_rate": _rate(hard, relayed),
            "policy_block_rate": _rate(c["policy_blocks"], relayed),
            "complaint_rate": _rate(c["complaints"], c["delivered"])}
    return out


async def _requested(rows: _Rows) -> int:
    """Opt-outs requested in the period (received-at inside it), whenever they took effect
    — up to a day after the end ("honored" counts those that took effect in the period)."""
    a = audit_events.c
    found = (await rows.conn.execute(sa.select(a.detail).where(
        a.tenant_id == rows.tenant_id, a.event == "optout.effective", a.at >= rows.start,
        a.at < rows.end + timedelta(days=1), rows.bound))).all()
    rows.read += len(found)
    return sum(1 for r in found
               if (at := parse_time(r.detail.get("received_at"))) is not None
               and rows.start <= at < rows.end)


async def _providers_of(rows: _Rows, queue_ids: set[str]) -> dict[tuple[str, str], str]:
    """The provider class of the delivered copies named (queue id, recipient digest), from
    their rows anywhere in the trail up to the heads (a report comes back after its copy,
    perhaps from before the period)."""
    a = audit_events.c
    found: dict[tuple[str, str], str] = {}
    ids = sorted(queue_ids)
    for n in range(0, len(ids), 500):
        for row in await rows.conn.execute(sa.select(
                a.queue_id, a.recipient_digest, a.detail).where(
                a.tenant_id == rows.tenant_id, a.event == "copy.delivered",
                a.queue_id.in_(ids[n:n + 500]), rows.bound)):
            found[(str(row.queue_id), str(row.recipient_digest))] = str(
                row.detail.get("provider") or "other")
    return found


async def _breakers(rows: _Rows) -> list[dict[str, Any]]:
    a = audit_events.c
    return [{"at": _at(r.at), "event": r.event.split(".", 1)[1],
             "scope": r.detail.get("scope"), "name": r.detail.get("name"),
             "metric": r.detail.get("metric"), "rate": r.detail.get("rate"),
             "window": r.detail.get("window"), "by": r.actor}
            for r in await rows.fetch(a.at, a.event, a.actor, a.detail,
                                      events=_BREAKER_ROWS)]


async def _review(rows: _Rows) -> dict[str, dict[str, int]]:
    """Messages held, refused and kept, released, discarded and expired, by the check that
    stopped them (a decision on a held message counts under the check that held it)."""
    a = audit_events.c
    found = await rows.fetch(a.event, a.queue_id, a.check_name, a.detail,
                             events=_REVIEW_ROWS)
    held_check = {str(r.queue_id): str(r.check_name or "") for r in found
                  if r.event == "message.held"}
    missing = {str(r.queue_id) for r in found if r.event.startswith("held.")} - set(held_check)
    if missing:  # decided in the period, held before it
        ids = sorted(missing)
        for n in range(0, len(ids), 500):
            for row in await rows.conn.execute(sa.select(a.queue_id, a.check_name).where(
                    a.tenant_id == rows.tenant_id, a.event == "message.held",
                    a.queue_id.in_(ids[n:n + 500]), rows.bound)):
                held_check[str(row.queue_id)] = str(row.check_name or "")
    by_check: dict[str, Counter[str]] = defaultdict(Counter)
    for r in found:
        if r.event == "message.held":
            by_check[str(r.check_name or "")]["held"] += 1
        elif r.event == "message.refused":
            if r.detail.get("kept"):
                by_check[str(r.check_name or "")]["refused_kept"] += 1
        else:
            check = str(r.detail.get("check") or held_check.get(str(r.queue_id), ""))
            by_check[check or "unknown"][r.event.split(".", 1)[1]] += 1
    keys = ("held", "refused_kept", "released", "discarded", "expired")
    return {check: {k: by_check[check][k] for k in keys} for check in sorted(by_check)}


async def _lawful(rows: _Rows) -> dict[str, Any]:
    """Copies sent by decision and signal source (and the table version), and recipients
    refused for want of a lawful basis."""
    a = audit_events.c
    decision = a.detail[("lawful", "decision")].as_string()
    source = a.detail[("lawful", "source")].as_string()
    policy = a.detail[("lawful", "policy")].as_string()
    sent = (await rows.conn.execute(sa.select(
        decision.label("decision"), source.label("source"), policy.label("policy"),
        sa.func.count().label("n")).where(
        *rows.where("copy.delivered"), decision.is_not(None))
        .group_by(decision, source, policy))).all()
    by_decision: dict[str, dict[str, int]] = defaultdict(dict)
    by_policy: Counter[str] = Counter()
    for r in sent:
        cell = by_decision[str(r.decision)]
        cell[str(r.source)] = cell.get(str(r.source), 0) + int(r.n)
        by_policy[str(r.policy)] += int(r.n)
    refused = await rows.fetch(a.event, a.detail, a.check_name, events=(
        "recipient.refused", "message.refused", "copy.refused"))
    refusals: Counter[str] = Counter()
    for r in refused:
        if r.check_name not in LAWFUL_CHECKS and not (
                r.event == "message.refused" and r.detail.get("lawful")):
            continue
        if r.event == "message.refused":  # the recipients without a basis in it
            refusals["at_send_time"] += sum(
                1 for d in r.detail.get("lawful") or [] if isinstance(d, dict) and (
                    d.get("decision") == "deny" or (d.get("decision") == "require-consent"
                                                    and d.get("consent") != "yes")))
        else:
            refusals["at_rcpt" if r.event == "recipient.refused" else "at_release"] += 1
    return {"sent": {d: dict(sorted(v.items())) for d, v in sorted(by_decision.items())},
            "sent_by_table": dict(sorted(by_policy.items())),
            "refused": {k: refusals[k] for k in ("at_rcpt", "at_send_time", "at_release")}}


async def _requests(rows: _Rows) -> list[dict[str, Any]]:
    """Data-subject requests: exports and erasures for this tenant or every tenant, with
    the time from request to completion. The person is a digest, shortened."""
    a = audit_events.c
    out = []
    for r in await rows.fetch(a.at, a.event, a.recipient_digest, a.detail,
                              events=_DSR_ROWS, gateway_wide=True):
        done = aware(r.at)
        assert done is not None
        asked = parse_time(r.detail.get("requested_at")) or done
        out.append({"kind": "export" if r.event == "subject.exported" else "erasure",
                    "subject": (r.recipient_digest or "")[:16],
                    "requested_at": iso(asked), "completed_at": iso(done),
                    "seconds": round(max((done - asked).total_seconds(), 0.0), 3)})
    return out


async def _keys(rows: _Rows) -> list[dict[str, Any]]:
    a = audit_events.c
    return [{"at": _at(r.at), "event": r.event, "purpose": r.detail.get("purpose"),
             "version": r.detail.get("version"), "domain": r.detail.get("domain"),
             "selector": r.detail.get("selector"), "by": r.actor}
            for r in await rows.fetch(
                a.at, a.event, a.actor, a.detail, gateway_wide=True,
                events=("key.created", "key.rotated", "key.retired", "dkim.generated",
                        "dkim.retired"))]


async def _policies(rows: _Rows) -> dict[str, Any]:
    """The lawful-basis table in force at the start and every version published in the
    period; the tenant's own rules as they changed."""
    a = audit_events.c
    tables = await rows.fetch(a.at, a.actor, a.detail, events=("policy.published",),
                              gateway_wide=True, whole_trail=True)
    start = aware(rows.start)
    assert start is not None
    before = [t for t in tables if (aware(t.at) or start) < start]
    shown = [(t, True) for t in before[-1:]] + [
        (t, False) for t in tables if (aware(t.at) or start) >= start]
    settings = await rows.fetch(a.at, a.actor, a.detail, events=("tenant.setting",),
                                whole_trail=True)
    rules = [s for s in settings if s.detail.get("key") == "lawful_overrides"]
    rules_before = [s for s in rules if (aware(s.at) or start) < start]
    return {
        "lawful_tables": [{"at": _at(t.at), "policy": t.detail.get("policy_id"),
                           "version": t.detail.get("version"),
                           "digest": t.detail.get("digest"), "by": t.actor,
                           "in_force_at_start": first} for t, first in shown],
        "tenant_rules": [{"at": _at(s.at), "rules": s.detail.get("new"), "by": s.actor,
                          "in_force_at_start": first}
                         for s, first in [(s, True) for s in rules_before[-1:]] + [
                             (s, False) for s in rules if (aware(s.at) or start) >= start]],
    }


async def _purges(rows: _Rows) -> list[dict[str, Any]]:
    a = audit_events.c
    return [{"at": _at(r.at), "counts": dict(sorted((r.detail.get("counts") or {}).items()))}
            for r in await rows.fetch(a.at, a.detail, events=("retention.purged",),
                                      gateway_wide=True)]
